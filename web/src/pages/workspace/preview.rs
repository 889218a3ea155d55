//! The preview: the sprite's own URL in a frame. A private sprite goes
//! through the sign-in hand-off like any visit; a sprite whose app is
//! still starting is waited for (the server holds the request while the
//! app's service starts), with a calm "starting" note over the frame. The
//! bar shows the whole address to share, with a copy button and whether
//! it is public or private. It reloads after saves and after restores.

use leptos::prelude::*;

use super::Ws;
use crate::js;

/// The path part of what the person typed in the address box: a path, or
/// a whole address under the sprite's URL `base`.
fn typed_path(typed: &str, base: &str) -> String {
    let typed = typed.trim();
    let base = base.trim_end_matches('/');
    let rest = typed.strip_prefix(base).unwrap_or(typed);
    if rest.starts_with('/') {
        rest.to_string()
    } else {
        format!("/{rest}")
    }
}

/// The preview loads again (`nonce` moves on) after a save, when the
/// person asked for that (`on_save`), and after every restore, which
/// changes what the site serves.
fn reload_after_changes(ws: Ws, nonce: RwSignal<u32>, on_save: RwSignal<bool>) {
    Effect::new(move |prev: Option<u64>| {
        let n = ws.saved.get();
        if prev.is_some_and(|p| p != n) && on_save.get_untracked() {
            nonce.update(|v| *v += 1);
        }
        n
    });
    Effect::new(move |prev: Option<()>| {
        ws.restored.track();
        if prev.is_some() {
            nonce.update(|v| *v += 1);
        }
    });
}

/// Who may open the sprite's address: a badge.
#[component]
fn Access(public: Signal<bool>) -> impl IntoView {
    view! {
        <span
            class="badge access"
            class:public=public
            title=move || {
                if public.get() {
                    "Anyone with the address can open it (change in Settings)"
                } else {
                    "Only members of the organization who are signed in can open it (change in Settings)"
                }
            }
        >
            {move || if public.get() { "Public" } else { "Private" }}
        </span>
    }
}

#[component]
pub fn Preview() -> impl IntoView {
    let ws = expect_context::<Ws>();
    let nonce = RwSignal::new(0u32);
    let on_save = RwSignal::new(true);
    let path = RwSignal::new("/".to_string());
    let typed = RwSignal::new(String::new());
    let loaded = RwSignal::new(false);
    let copied = RwSignal::new(None::<bool>);
    let url = move || ws.sprite.get().map(|s| s.url);
    let public = move || {
        ws.sprite
            .get()
            .is_some_and(|s| s.url_settings.auth.as_deref() == Some("public"))
    };
    reload_after_changes(ws, nonce, on_save);
    let full = move || {
        url().map(|u| {
            let p = path.get();
            format!("{}{p}", u.trim_end_matches('/'))
        })
    };
    // The box shows the whole address; typing in it changes only the path.
    Effect::new(move |_| {
        if let Some(f) = full() {
            typed.set(f);
        }
    });
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
    Effect::new(move |_| {
        framed();
        loaded.set(false);
        copied.set(None);
    });
    let copy = move |_| {
        let Some(u) = full() else { return };
        leptos::task::spawn_local(async move { copied.set(Some(js::copy(&u).await)) });
    };
    view! {
        <div class="preview">
            <div class="preview-bar">
                <form
                    class="preview-path"
                    on:submit=move |ev: leptos::ev::SubmitEvent| {
                        ev.prevent_default();
                        let base = url().unwrap_or_default();
                        path.set(typed_path(&typed.get_untracked(), &base));
                        nonce.update(|v| *v += 1);
                    }
                >
                    <input aria-label="The sprite's address" bind:value=typed />
                </form>
                <button class="small" title="Copy the address to share" on:click=copy>
                    {move || crate::pages::copy_label(copied.get())}
                </button>
                <Access public=Signal::derive(public) />
                <button class="small" title="Reload the preview" on:click=move |_| nonce.update(|v| *v += 1)>
                    "Reload"
                </button>
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
            <div class="frame">
                {move || {
                    match framed() {
                        None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                        Some(u) => {
                            view! {
                                <iframe
                                    title="Preview of the sprite's site"
                                    src=u
                                    on:load=move |_| loaded.set(true)
                                ></iframe>
                            }
                                .into_any()
                        }
                    }
                }}
                <p class="loading starting" role="status" class:hidden=move || loaded.get()>
                    "Waiting for the sprite's app to answer…"
                </p>
            </div>
            <p class="hint">
                "The preview shows what the sprite serves on port 8080 (or its HTTP service's port). Start a web server from the terminal, for example "
                <code>"python3 -m http.server 8080"</code> "."
            </p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::typed_path;

    #[test]
    fn the_address_box_takes_a_path_or_a_whole_address() {
        let base = "http://web-ann.localhost:8080/";
        assert_eq!(typed_path("/about", base), "/about");
        assert_eq!(typed_path("about", base), "/about");
        assert_eq!(
            typed_path("http://web-ann.localhost:8080/a?b=1", base),
            "/a?b=1"
        );
        assert_eq!(typed_path("http://web-ann.localhost:8080", base), "/");
    }
}
