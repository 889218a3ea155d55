//! Sign in and sign up.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use serde_json::json;

use super::server_path;
use crate::{api, Session};

/// After signing in: on to the server's `next` page, or the dashboard.
fn go_on(next: Option<String>) {
    let location = web_sys::window().unwrap().location();
    match next.filter(|n| server_path(n)) {
        Some(next) => {
            let _ = location.replace(&next);
        }
        None => {
            let path = location.pathname().unwrap_or_default();
            if path != "/" {
                let _ = location.replace("/");
            }
        }
    }
}

#[component]
pub fn SignIn() -> impl IntoView {
    let session = expect_context::<Session>();
    let query = use_query_map();
    let login = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let next = query.read_untracked().get("next");
        let body =
            json!({ "login": login.get_untracked().trim(), "password": password.get_untracked() });
        leptos::task::spawn_local(async move {
            match api::send::<api::Profile>("POST", "/v1/auth/signin", body).await {
                Ok(p) => {
                    session.signed_in(p);
                    go_on(next);
                }
                Err(e) => error.set(Some(if e.status == 401 {
                    "That email or user name and password do not match.".into()
                } else {
                    e.message
                })),
            }
            busy.set(false);
        });
    };
    let signup_href = move || match query.read().get("next") {
        Some(n) => format!("/signup?next={}", api::enc(&n)),
        None => "/signup".into(),
    };
    view! {
        <main class="narrow auth">
            <h1>"Sign in to Sprites"</h1>
            <form on:submit=submit>
                <label>
                    "Email or user name"
                    <input
                        name="login"
                        autocomplete="username"
                        required
                        autofocus
                        bind:value=login
                    />
                </label>
                <label>
                    "Password"
                    <input
                        name="password"
                        type="password"
                        autocomplete="current-password"
                        required
                        bind:value=password
                    />
                </label>
                {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <button type="submit" class="primary" disabled=move || busy.get()>
                    {move || if busy.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
            <Show when=move || session.1.get()>
                <p>"New here? " <a href=signup_href>"Create an account"</a></p>
            </Show>
            <Show when=move || !session.1.get()>
                <p class="muted">"New here? Ask the admin of this server for an account."</p>
            </Show>
        </main>
    }
}

#[component]
pub fn SignUp() -> impl IntoView {
    let session = expect_context::<Session>();
    let query = use_query_map();
    let navigate = use_navigate();
    let email = RwSignal::new(String::new());
    let handle = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        if password.get_untracked().chars().count() < 8 {
            error.set(Some("Choose a password of at least 8 characters.".into()));
            return;
        }
        busy.set(true);
        error.set(None);
        let next = query.read_untracked().get("next");
        let body = json!({
            "email": email.get_untracked().trim(),
            "handle": handle.get_untracked().trim().to_lowercase(),
            "password": password.get_untracked(),
        });
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::send::<api::Profile>("POST", "/v1/auth/signup", body).await {
                Ok(p) => {
                    session.signed_in(p);
                    if next.as_deref().is_some_and(server_path) {
                        go_on(next);
                    } else {
                        navigate("/", Default::default());
                    }
                }
                Err(e) => error.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    view! {
        <main class="narrow auth">
            <h1>"Create your Sprites account"</h1>
            <form on:submit=submit>
                <label>
                    "Email"
                    <input
                        name="email"
                        type="email"
                        autocomplete="email"
                        required
                        autofocus
                        bind:value=email
                    />
                </label>
                <label>
                    "User name"
                    <input
                        name="handle"
                        autocomplete="username"
                        required
                        pattern="[a-zA-Z0-9][a-zA-Z0-9\\-]*"
                        title="Letters, digits and hyphens"
                        bind:value=handle
                    />
                    <small>"Part of your sprites' addresses: letters, digits and hyphens."</small>
                </label>
                <label>
                    "Password"
                    <input
                        name="password"
                        type="password"
                        autocomplete="new-password"
                        required
                        bind:value=password
                    />
                    <small>"At least 8 characters."</small>
                </label>
                {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <button type="submit" class="primary" disabled=move || busy.get()>
                    {move || if busy.get() { "Creating…" } else { "Create account" }}
                </button>
            </form>
            <p>"Already have an account? " <a href="/signin">"Sign in"</a></p>
        </main>
    }
}
