//! Sign in and sign up.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use serde_json::json;
use sprites_wire::accounts::{InvitationCheck, SignUp as SignUpBody};

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
    // A class's join link lets a newcomer sign up, whatever the server's setting.
    let may_sign_up =
        move || session.1.get() || join_code(query.read().get("next").as_deref()).is_some();
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
            <Show when=may_sign_up>
                <p>"New here? " <a href=signup_href>"Create an account"</a></p>
            </Show>
            <Show when=move || !may_sign_up()>
                <p class="muted">
                    "New here? Ask the admin of this server for an invitation link, or your teacher for your class's join link."
                </p>
            </Show>
        </main>
    }
}

/// What lets this person sign up here: an invitation link, a class's
/// join link (`next` is `/join/CODE`), or the server's open sign-up.
#[derive(Clone, PartialEq)]
enum Pass {
    Invitation(String),
    Class(String),
    Open,
    /// None of them, on a server whose sign-up is by invitation.
    Closed,
}

/// The class code a `next` of `/join/CODE` names.
fn join_code(next: Option<&str>) -> Option<String> {
    next.filter(|n| server_path(n))?
        .strip_prefix("/join/")
        .map(str::to_string)
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
    // The address an invitation was made for: the account must use it.
    let invited_email = RwSignal::new(None::<String>);
    let pass = Memo::new(move |_| {
        let q = query.read();
        if let Some(token) = q.get("invite").filter(|t| !t.is_empty()) {
            Pass::Invitation(token)
        } else if let Some(code) = join_code(q.get("next").as_deref()) {
            Pass::Class(code)
        } else if session.1.get() {
            Pass::Open
        } else {
            Pass::Closed
        }
    });
    // An invitation link says what it is for before anything is typed.
    Effect::new(move |_| {
        let Pass::Invitation(token) = pass.get() else {
            return;
        };
        leptos::task::spawn_local(async move {
            let path = format!("/v1/auth/invitations/{}", api::enc(&token));
            match api::get::<InvitationCheck>(&path).await {
                Ok(check) => {
                    if let Some(e) = &check.email {
                        email.set(e.clone());
                    }
                    invited_email.set(check.email);
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    });
    // The first field a person can type in has the focus.
    let email_field: NodeRef<leptos::html::Input> = NodeRef::new();
    let handle_field: NodeRef<leptos::html::Input> = NodeRef::new();
    Effect::new(move |_| {
        let field = if invited_email.with(Option::is_some) {
            handle_field.get()
        } else {
            email_field.get()
        };
        if let Some(f) = field {
            let _ = f.focus();
        }
    });
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
        let (invite, join_code) = match pass.get_untracked() {
            Pass::Invitation(t) => (Some(t), None),
            Pass::Class(c) => (None, Some(c)),
            Pass::Open | Pass::Closed => (None, None),
        };
        let body = SignUpBody {
            email: email.get_untracked().trim().to_string(),
            handle: handle.get_untracked().trim().to_lowercase(),
            password: password.get_untracked(),
            invite,
            join_code,
        };
        let body = serde_json::to_value(&body).unwrap_or_default();
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
    let why = move || match pass.get() {
        Pass::Invitation(_) => Some(match invited_email.get() {
            Some(e) => format!("You are invited to Sprites as {e}."),
            None => "You are invited to Sprites.".to_string(),
        }),
        Pass::Class(_) => {
            Some("You are joining a class: your account starts as one of its students.".to_string())
        }
        Pass::Open | Pass::Closed => None,
    };
    let form = move || {
        let submit = submit.clone();
        view! {
            {move || why().map(|w| view! { <p class="invited">{w}</p> })}
            <form on:submit=submit>
                <label>
                    "Email"
                    <input
                        name="email"
                        type="email"
                        autocomplete="email"
                        required
                        node_ref=email_field
                        readonly=move || invited_email.with(Option::is_some)
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
                        node_ref=handle_field
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
        }
    };
    let closed = || {
        view! {
            <p class="notice" role="status">
                "Sign-up on this server is by invitation. Ask its admin for an invitation link, "
                "or your teacher for your class's join link."
            </p>
        }
    };
    view! {
        <main class="narrow auth">
            <h1>"Create your Sprites account"</h1>
            <Show when=move || pass.get() != Pass::Closed fallback=closed>
                {form.clone()}
            </Show>
            <p>"Already have an account? " <a href="/signin">"Sign in"</a></p>
        </main>
    }
}
