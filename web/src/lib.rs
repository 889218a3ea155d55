//! The browser IDE (Leptos, client-side rendered, built with Trunk).
//!
//! The pages arrive with the IDE; what is here compiles to
//! `wasm32-unknown-unknown` and shares the wire types with the server.

use sprites_wire::SpriteName;

/// The label the dashboard shows for a sprite's URL host name.
pub fn url_host(sprite: &SpriteName, org: &str, base_domain: &str) -> String {
    format!("{sprite}-{org}.{base_domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_host_is_sprite_then_org() {
        let s = SpriteName::parse("blog").unwrap();
        assert_eq!(url_host(&s, "alice", "localhost"), "blog-alice.localhost");
    }
}
