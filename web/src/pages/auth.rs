//! Sign in and sign up.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use sprites_wire::accounts::{SignIn as SignInBody, SignUp as SignUpBody};
use sprites_wire::client;

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
    let sign_in = Action::new_local(move |req: &SignInBody| {
        let call = client::sign_in(req);
        async move {
            match api::run(call).await {
                Ok(p) => {
                    session.signed_in(p);
                    go_on(query.read_untracked().get("next"));
                }
                Err(e) => error.set(Some(if e.status == 401 {
                    "That email or user name and password do not match.".into()
                } else {
                    e.message
                })),
            }
        }
    });
    let busy = sign_in.pending();
    let submit = crate::pages::on_submit(busy, move || {
        error.set(None);
        sign_in.dispatch_local(SignInBody {
            login: login.get_untracked().trim().to_string(),
            password: password.get_untracked(),
        });
    });
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

/// What the sign-up page's address lets this person do, on a server that
/// does or does not let anyone sign up.
fn pass_of(query: &leptos_router::params::ParamsMap, open: bool) -> Pass {
    if let Some(token) = query.get("invite").filter(|t| !t.is_empty()) {
        Pass::Invitation(token)
    } else if let Some(code) = join_code(query.get("next").as_deref()) {
        Pass::Class(code)
    } else if open {
        Pass::Open
    } else {
        Pass::Closed
    }
}

impl Pass {
    /// What the page says of it (an invitation for `invited`, maybe).
    fn why(&self, invited: Option<String>) -> Option<String> {
        match self {
            Pass::Invitation(_) => Some(match invited {
                Some(e) => format!("You are invited to Sprites as {e}."),
                None => "You are invited to Sprites.".to_string(),
            }),
            Pass::Class(_) => Some(
                "You are joining a class: your account starts as one of its students.".to_string(),
            ),
            Pass::Open | Pass::Closed => None,
        }
    }
}

/// An invitation link says what it is for before anything is typed: the
/// address it is for fills `email` and `invited`.
fn check_invitation(
    pass: Memo<Pass>,
    email: RwSignal<String>,
    invited: RwSignal<Option<String>>,
    error: RwSignal<Option<String>>,
) {
    Effect::new(move |_| {
        let Pass::Invitation(token) = pass.get() else {
            return;
        };
        leptos::task::spawn_local(async move {
            match api::run(client::invitation_check(&token)).await {
                Ok(check) => {
                    if let Some(e) = &check.email {
                        email.set(e.clone());
                    }
                    invited.set(check.email);
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    });
}

/// Focus on the first field a person can type in: the user name when an
/// invitation fixed the address.
fn focus_first(
    invited: RwSignal<Option<String>>,
    email_field: NodeRef<leptos::html::Input>,
    handle_field: NodeRef<leptos::html::Input>,
) {
    Effect::new(move |_| {
        let field = if invited.with(Option::is_some) {
            handle_field.get()
        } else {
            email_field.get()
        };
        if let Some(f) = field {
            let _ = f.focus();
        }
    });
}

/// What the sign-up page says on a server whose sign-up is by invitation,
/// to someone without one.
#[component]
fn ByInvitation() -> impl IntoView {
    view! {
        <p class="notice" role="status">
            "Sign-up on this server is by invitation. Ask its admin for an invitation link, "
            "or your teacher for your class's join link."
        </p>
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
    let pass = Memo::new(move |_| pass_of(&query.read(), session.1.get()));
    // The address an invitation was made for: the account must use it.
    let invited_email = RwSignal::new(None::<String>);
    check_invitation(pass, email, invited_email, error);
    // The first field a person can type in has the focus.
    let email_field: NodeRef<leptos::html::Input> = NodeRef::new();
    let handle_field: NodeRef<leptos::html::Input> = NodeRef::new();
    focus_first(invited_email, email_field, handle_field);
    let sign_up = Action::new_local(move |req: &SignUpBody| {
        let call = client::sign_up(req);
        let navigate = navigate.clone();
        async move {
            match api::run(call).await {
                Ok(p) => {
                    session.signed_in(p);
                    let next = query.read_untracked().get("next");
                    if next.as_deref().is_some_and(server_path) {
                        go_on(next);
                    } else {
                        navigate("/", Default::default());
                    }
                }
                Err(e) => error.set(Some(e.message)),
            }
        }
    });
    let busy = sign_up.pending();
    let submit = crate::pages::on_submit(busy, move || {
        if password.get_untracked().chars().count() < 8 {
            error.set(Some("Choose a password of at least 8 characters.".into()));
            return;
        }
        error.set(None);
        let (invite, join_code) = match pass.get_untracked() {
            Pass::Invitation(t) => (Some(t), None),
            Pass::Class(c) => (None, Some(c)),
            Pass::Open | Pass::Closed => (None, None),
        };
        sign_up.dispatch_local(SignUpBody {
            email: email.get_untracked().trim().to_string(),
            handle: handle.get_untracked().trim().to_lowercase(),
            password: password.get_untracked(),
            invite,
            join_code,
        });
    });
    let why = move || pass.get().why(invited_email.get());
    let form = move || {
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
    view! {
        <main class="narrow auth">
            <h1>"Create your Sprites account"</h1>
            <Show when=move || pass.get() != Pass::Closed fallback=|| view! { <ByInvitation /> }>
                {form}
            </Show>
            <p>"Already have an account? " <a href="/signin">"Sign in"</a></p>
        </main>
    }
}
