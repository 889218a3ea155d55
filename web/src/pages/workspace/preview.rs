//! The preview: the sprite's own URL in a frame. A private sprite goes
//! through the sign-in hand-off like any visit; a sprite whose app is not
//! listening shows the server's friendly page. It can reload after saves.

use leptos::prelude::*;

use super::Ws;

#[component]
pub fn Preview() -> impl IntoView {
    let ws = expect_context::<Ws>();
    let nonce = RwSignal::new(0u32);
    let on_save = RwSignal::new(true);
    let path = RwSignal::new("/".to_string());
    let path_input = RwSignal::new("/".to_string());
    let url = move || ws.sprite.get().map(|s| s.url);
    Effect::new(move |prev: Option<u64>| {
        let n = ws.saved.get();
        if prev.is_some_and(|p| p != n) && on_save.get_untracked() {
            nonce.update(|v| *v += 1);
        }
        n
    });
    let full = move || {
        url().map(|u| {
            let p = path.get();
            let p = if p.starts_with('/') {
                p
            } else {
                format!("/{p}")
            };
            format!("{}{p}", u.trim_end_matches('/'))
        })
    };
    // A reload must fetch the page again: the browser would otherwise take
    // the same address from its cache. The count goes in the query.
    let framed = move || {
        let n = nonce.get();
        full().map(|u| {
            if n == 0 {
                return u;
            }
            let sep = if u.contains('?') { '&' } else { '?' };
            format!("{u}{sep}sprites-preview={n}")
        })
    };
    view! {
        <div class="preview">
            <div class="preview-bar">
                <button class="small" title="Reload the preview" on:click=move |_| nonce.update(|v| *v += 1)>
                    "Reload"
                </button>
                <form
                    class="preview-path"
                    on:submit=move |ev: leptos::ev::SubmitEvent| {
                        ev.prevent_default();
                        path.set(path_input.get_untracked());
                        nonce.update(|v| *v += 1);
                    }
                >
                    <input aria-label="Path in the sprite's site" bind:value=path_input />
                </form>
                {move || {
                    full()
                        .map(|u| {
                            view! {
                                <a class="button small" href=u target="_blank" rel="noopener">
                                    "Open in a new tab"
                                </a>
                            }
                        })
                }}
                <label class="check" title="Reload the preview whenever a file is saved">
                    <input type="checkbox" bind:checked=on_save />
                    "Reload on save"
                </label>
            </div>
            {move || {
                match framed() {
                    None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                    Some(u) => {
                        view! { <iframe title="Preview of the sprite's site" src=u></iframe> }
                            .into_any()
                    }
                }
            }}
            <p class="hint">
                "The preview shows what the sprite serves on port 8080 (or its HTTP service's port). Start a web server from the terminal, for example "
                <code>"python3 -m http.server 8080"</code> "."
            </p>
        </div>
    }
}
