//! The pages, and the pieces they share.

pub mod admin;
pub mod auth;
pub mod checkpoints;
pub mod class;
pub mod dashboard;
pub mod gallery;
pub mod tokens;
pub mod workspace;

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api;
use crate::Session;

/// `/`: the dashboard for a signed-in person, else the sign-in page. A
/// `next` that goes on to the server (the private sprite URL hand-off)
/// is followed once signed in.
#[component]
pub fn Home() -> impl IntoView {
    let session = expect_context::<Session>();
    let query = use_query_map();
    move || match session.0.get() {
        None => view! { <p class="loading">"Loading…"</p> }.into_any(),
        Some(None) => view! { <auth::SignIn /> }.into_any(),
        Some(Some(_)) => {
            if let Some(next) = query.read().get("next").filter(|n| server_path(n)) {
                let _ = web_sys::window().unwrap().location().replace(&next);
                view! { <p class="loading">"Opening the sprite…"</p> }.into_any()
            } else {
                view! { <dashboard::Dashboard /> }.into_any()
            }
        }
    }
}

/// Whether `next` is one of the server's own pages that a sign-in goes
/// on to (never another host).
pub fn server_path(next: &str) -> bool {
    let join = next.strip_prefix("/join/").is_some_and(|code| {
        !code.is_empty() && code.len() <= 16 && code.chars().all(|c| c.is_ascii_alphanumeric())
    });
    join || (next.starts_with("/v1/url-auth?") && !next.contains(['\\', '\r', '\n']))
}

#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <main class="narrow">
            <h1>"Nothing here"</h1>
            <p>"This page does not exist. " <a href="/">"Back to your sprites"</a></p>
        </main>
    }
}

/// The bar on top of every signed-in page: home, organization switcher,
/// tokens, the person and sign-out.
#[component]
pub fn TopBar(#[prop(optional, into)] title: Option<Signal<String>>) -> impl IntoView {
    let session = expect_context::<Session>();
    let navigate = use_navigate();
    let error = RwSignal::new(None::<String>);
    let switch = move |slug: String| {
        leptos::task::spawn_local(async move {
            match api::run(sprites_wire::client::switch_organization(&slug)).await {
                Ok(p) => session.signed_in(p),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let sign_out = move |_| {
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            let _ = api::run(sprites_wire::client::sign_out()).await;
            session.0.set(Some(None));
            navigate("/", Default::default());
        });
    };
    view! {
        <header class="topbar">
            <a class="brand" href="/">"Sprites"</a>
            {move || title.map(|t| view! { <span class="crumb">{t.get()}</span> })}
            <span class="spacer"></span>
            {move || {
                session
                    .profile()
                    .map(|p| {
                        let current = p.organization.clone();
                        view! {
                            <label class="org">
                                <span class="sr-only">"Organization"</span>
                                <select
                                    aria-label="Organization"
                                    on:change=move |ev| switch(event_target_value(&ev))
                                >
                                    {p
                                        .organizations
                                        .iter()
                                        .map(|o| {
                                            let label = if o.personal {
                                                format!("{} (personal)", o.slug)
                                            } else {
                                                o.name.clone()
                                            };
                                            view! {
                                                <option
                                                    value=o.slug.clone()
                                                    selected=o.slug == current
                                                >
                                                    {label}
                                                </option>
                                            }
                                        })
                                        .collect_view()}
                                </select>
                            </label>
                            {p.is_admin.then(|| view! { <a href="/admin">"Admin"</a> })}
                            <a href="/tokens">"API tokens"</a>
                            <span class="who" title=p.email.clone()>{p.handle.clone()}</span>
                        }
                    })
            }}
            <button class="link" on:click=sign_out>"Sign out"</button>
        </header>
        <ErrorBanner error=error />
    }
}

/// A read-only text (a link to share) with a button that copies it.
#[component]
pub fn CopyField(
    /// What the field is, for screen readers.
    label: &'static str,
    #[prop(into)] text: Signal<String>,
) -> impl IntoView {
    let copied = RwSignal::new(None::<bool>);
    let copy = move |_| {
        let t = text.get_untracked();
        leptos::task::spawn_local(async move {
            copied.set(Some(crate::js::copy(&t).await));
        });
    };
    Effect::new(move |_| {
        text.track();
        copied.set(None);
    });
    let select_all =
        |ev: leptos::ev::FocusEvent| event_target::<web_sys::HtmlInputElement>(&ev).select();
    view! {
        <span class="copy-field">
            <input
                readonly
                aria-label=label
                prop:value=move || text.get()
                on:focus=select_all
            />
            <button type="button" class="small" on:click=copy>
                {move || copy_label(copied.get())}
            </button>
        </span>
    }
}

/// A dismissible error message, when there is one.
#[component]
pub fn ErrorBanner(error: RwSignal<Option<String>>) -> impl IntoView {
    move || {
        error.get().map(|e| {
            view! {
                <div class="error" role="alert">
                    <span>{e}</span>
                    <button class="link" aria-label="Dismiss" on:click=move |_| error.set(None)>
                        "×"
                    </button>
                </div>
            }
        })
    }
}

/// A time in milliseconds since the epoch, in the reader's way: the date,
/// with `with_time` the time of day too.
/// A form's submit handler: the page stays, and a submit while the last
/// one is still on its way (`busy`) does nothing.
pub fn on_submit(
    busy: Memo<bool>,
    go: impl Fn() + Copy + 'static,
) -> impl Fn(leptos::ev::SubmitEvent) + Copy + 'static {
    move |ev| {
        ev.prevent_default();
        if !busy.get_untracked() {
            go();
        }
    }
}

/// Asks the browser's own yes-or-no question; no means no, as does a
/// page that may not ask.
pub fn confirm(question: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.confirm_with_message(question).ok())
        .unwrap_or(false)
}

pub fn local_time(ms: i64, with_time: bool) -> String {
    let d = js_sys::Date::new(&(ms as f64).into());
    let locale = wasm_bindgen::JsValue::UNDEFINED;
    if with_time {
        d.to_locale_string("default", &locale).into()
    } else {
        d.to_locale_date_string("default", &locale).into()
    }
}

/// What a copy button says: before, after a copy, after a refused one.
pub fn copy_label(copied: Option<bool>) -> &'static str {
    match copied {
        Some(true) => "Copied",
        Some(false) => "Select and copy",
        None => "Copy",
    }
}

/// What happened to a sprite brought back after its host was lost, in a
/// sentence: which checkpoint it resumed from, and that later changes
/// were lost.
pub fn resumed_words(r: &sprites_wire::api::Resumed) -> String {
    let from = match (&r.checkpoint, &r.shipped_at) {
        (Some(c), Some(at)) => format!("checkpoint {c}, copied {}", ago(at)),
        (Some(c), None) => format!("checkpoint {c}"),
        _ => "its last copy".into(),
    };
    format!(
        "Its machine ({}) was lost; it was brought back on another {}, from {from}. \
         Changes made after that copy were lost with the machine.",
        r.host,
        ago(&r.at)
    )
}

/// "3 minutes ago" for an RFC 3339 time.
pub fn ago(rfc3339: &str) -> String {
    let then = js_sys::Date::parse(rfc3339);
    if then.is_nan() {
        return String::new();
    }
    let secs = ((js_sys::Date::now() - then) / 1000.0).max(0.0) as u64;
    match secs {
        0..=9 => "just now".into(),
        10..=59 => format!("{secs} seconds ago"),
        60..=119 => "a minute ago".into(),
        120..=3599 => format!("{} minutes ago", secs / 60),
        3600..=7199 => "an hour ago".into(),
        7200..=86_399 => format!("{} hours ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// What a sprite's status means, in words.
pub fn status_words(status: &str) -> &'static str {
    match status {
        "running" => "Running",
        "warm" => "Asleep (wakes instantly)",
        "cold" => "Asleep (wakes in a moment)",
        "destroyed" => "Deleted",
        _ => "Unknown",
    }
}
