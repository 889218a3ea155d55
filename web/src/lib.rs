//! The browser IDE: Leptos, rendered in the browser, built with Trunk and
//! served by the server on the API's own origin.
//!
//! - [`api`]: calls to the REST API (session cookie plus CSRF token).
//! - [`js`]: the thin bindings to the terminal (xterm.js) and the editor
//!   (Monaco) in `web/js/ide.js`.
//! - [`pages`]: sign-in and sign-up, the dashboard, a sprite's workspace.

pub mod api;
pub mod js;
pub mod pages;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;
use sprites_wire::SpriteName;

/// The label the dashboard shows for a sprite's URL host name.
pub fn url_host(sprite: &SpriteName, org: &str, base_domain: &str) -> String {
    format!(
        "{}.{base_domain}",
        sprites_wire::url_label(sprite.as_str(), org)
    )
}

/// Who is signed in: `None` before the first answer, then `Some(None)` for
/// nobody. Every page reads it from the context, with whether this server
/// lets anyone sign up.
#[derive(Clone, Copy)]
pub struct Session(
    pub RwSignal<Option<Option<api::Profile>>>,
    pub RwSignal<bool>,
);

impl Session {
    pub fn signed_in(&self, profile: api::Profile) {
        api::set_csrf(profile.csrf_token.as_deref().unwrap_or_default());
        self.0.set(Some(Some(profile)));
    }

    pub fn profile(&self) -> Option<api::Profile> {
        self.0.get().flatten()
    }

    /// The organization the person acts in now.
    pub fn current_org(&self) -> Option<api::Organization> {
        let p = self.profile()?;
        p.organizations
            .into_iter()
            .find(|o| o.slug == p.organization)
    }
}

/// Reads who is signed in from the server. A request that did not get an
/// answer (the network, a server error) is tried again before the page
/// says "signed out": only the server's own "nobody" means that.
pub fn refresh_session(session: Session) {
    leptos::task::spawn_local(async move {
        let mut tries = 0;
        loop {
            tries += 1;
            match api::run(sprites_wire::client::session()).await {
                Ok(state) => {
                    session.1.set(state.signup_open);
                    match state.profile {
                        Some(p) => session.signed_in(p),
                        None => session.0.set(Some(None)),
                    }
                    return;
                }
                Err(e) if (e.status == 0 || e.status >= 500) && tries < 4 => {
                    api::sleep_ms(250 * tries).await;
                }
                Err(_) => {
                    session.0.set(Some(None));
                    return;
                }
            }
        }
    });
}

#[component]
pub fn App() -> impl IntoView {
    let session = Session(RwSignal::new(None), RwSignal::new(false));
    provide_context(session);
    refresh_session(session);
    view! {
        <Router>
            <Routes fallback=|| view! { <pages::NotFound /> }>
                <Route path=path!("/") view=pages::Home />
                <Route path=path!("/signin") view=pages::auth::SignIn />
                <Route path=path!("/signup") view=pages::auth::SignUp />
                <Route path=path!("/tokens") view=pages::tokens::Tokens />
                <Route path=path!("/admin") view=pages::admin::Admin />
                <Route path=path!("/s/:name") view=pages::workspace::Workspace />
                <Route path=path!("/class/:slug/:assignment") view=pages::class::AssignmentPage />
                <Route path=path!("/join/:code") view=pages::class::JoinPage />
            </Routes>
        </Router>
    }
}

/// Where the page starts in the browser.
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    // A fault in the app says where it happened in the console, instead of
    // the bare "unreachable" of a WebAssembly trap.
    std::panic::set_hook(Box::new(|info| {
        let here = js_sys::Error::new("");
        let stack = js_sys::Reflect::get(&here, &"stack".into())
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default();
        web_sys::console::error_1(&format!("the app stopped: {info}\n{stack}").into());
    }));
    leptos::mount::mount_to_body(App);
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
