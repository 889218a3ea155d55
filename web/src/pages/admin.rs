//! `/admin`, for the server's admins: invite people by email (a link that
//! signs them up, shown once to copy and send), withdraw an invitation,
//! and see everyone with an account, disabling or enabling one.

use leptos::prelude::*;
use sprites_wire::accounts::{Invitation, NewInvitation, UserSummary};
use sprites_wire::client;

use super::{CopyField, ErrorBanner, TopBar};
use crate::{api, Session};

fn date(ms: i64) -> String {
    super::local_time(ms, false)
}

#[component]
pub fn Admin() -> impl IntoView {
    let session = expect_context::<Session>();
    let admin = move || session.profile().is_some_and(|p| p.is_admin);
    view! {
        <TopBar title=Signal::derive(|| "Admin".to_string()) />
        <main class="narrow admin">
            <h1>"People on this server"</h1>
            <Show
                when=admin
                fallback=move || match session.0.get() {
                    None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                    Some(_) => view! {
                        <p>"Only the server's admins see this page. " <a href="/">"Back to your sprites"</a></p>
                    }.into_any(),
                }
            >
                <AdminPanels />
            </Show>
        </main>
    }
}

#[component]
fn AdminPanels() -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let invitations = RwSignal::new(None::<Vec<Invitation>>);
    let users = RwSignal::new(None::<Vec<UserSummary>>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            match api::run(client::invitations()).await {
                Ok(l) => invitations.set(Some(l.invitations)),
                Err(e) => error.set(Some(e.message)),
            }
            match api::run(client::users()).await {
                Ok(l) => users.set(Some(l.users)),
                Err(e) => error.set(Some(e.message)),
            }
        })
    };
    reload();
    view! {
        <ErrorBanner error=error />
        <Invite error=error on_invited=reload />
        <section class="invitations">
            <h2>"Invitations not used yet"</h2>
            {move || match invitations.get() {
                None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                Some(list) if list.is_empty() => view! { <p class="muted">"None."</p> }.into_any(),
                Some(list) => view! {
                    <ul class="invitation-list">
                        {list.into_iter().map(|i| {
                            let id = i.id.clone();
                            let who = i.email.clone().unwrap_or_else(|| "anyone with the link".into());
                            let withdraw = move |_| {
                                let id = id.clone();
                                leptos::task::spawn_local(async move {
                                    match api::run(client::withdraw_invitation(&id)).await {
                                        Ok(()) => reload(),
                                        Err(e) => error.set(Some(e.message)),
                                    }
                                });
                            };
                            view! {
                                <li data-invitation=i.email.clone().unwrap_or_default()>
                                    <span>{who}</span>
                                    <span class="muted">{format!("until {}", date(i.expires_at))}</span>
                                    <button class="small" on:click=withdraw>"Withdraw"</button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            }}
        </section>
        <section class="users">
            <h2>"Accounts"</h2>
            {move || users.get().map(|list| view! {
                <table class="list">
                    <thead>
                        <tr><th>"User name"</th><th>"Email"</th><th>"Since"</th><th>"Status"</th><th></th></tr>
                    </thead>
                    <tbody>
                        {list.into_iter().map(|u| view! { <UserRow user=u error=error on_changed=reload /> }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
    }
}

/// The form that makes an invitation, and the link it made.
#[component]
fn Invite(
    error: RwSignal<Option<String>>,
    on_invited: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let email = RwSignal::new(String::new());
    let made = RwSignal::new(None::<(String, String)>);
    let invite = Action::new_local(move |req: &NewInvitation| {
        let call = client::invite(req);
        async move {
            match api::run(call).await {
                Ok(i) => {
                    let origin = web_sys::window()
                        .and_then(|w| w.location().origin().ok())
                        .unwrap_or_default();
                    let link = Invitation::link(&origin, i.token.as_deref().unwrap_or_default());
                    let who = i.email.unwrap_or_else(|| "the person you invite".into());
                    made.set(Some((who, link)));
                    email.set(String::new());
                    on_invited();
                }
                Err(e) => error.set(Some(e.message)),
            }
        }
    });
    let busy = invite.pending();
    let submit = crate::pages::on_submit(busy, move || {
        let address = email.get_untracked().trim().to_string();
        invite.dispatch_local(NewInvitation {
            email: Some(address).filter(|a| !a.is_empty()),
        });
    });
    view! {
        <section class="invite">
            <h2>"Invite someone"</h2>
            <form class="inline" on:submit=submit>
                <label>
                    "Email address to invite"
                    <input type="email" placeholder="name@example.com" bind:value=email />
                </label>
                <button type="submit" class="primary" disabled=move || busy.get()>"Invite"</button>
            </form>
            {move || made.get().map(|(who, link)| view! {
                <div class="invited-link" role="status">
                    <p>{format!("Send this link to {who}: it signs them up, once, within 14 days.")}</p>
                    <CopyField label="Invitation link" text=link />
                </div>
            })}
        </section>
    }
}

#[component]
fn UserRow(
    user: UserSummary,
    error: RwSignal<Option<String>>,
    on_changed: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let session = expect_context::<Session>();
    let me = session.profile().map(|p| p.handle).unwrap_or_default();
    let handle = user.handle.clone();
    let disabled = user.disabled;
    let toggle = move |_| {
        let handle = handle.clone();
        leptos::task::spawn_local(async move {
            match api::run(client::set_disabled(&handle, !disabled)).await {
                Ok(_) => on_changed(),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let status = match (user.disabled, user.is_admin) {
        (true, _) => "Disabled",
        (false, true) => "Admin",
        (false, false) => "Active",
    };
    let label = if disabled { "Enable" } else { "Disable" };
    view! {
        <tr data-user=user.handle.clone() class:disabled=user.disabled>
            <td>{user.handle.clone()}</td>
            <td>{user.email.clone()}</td>
            <td>{date(user.created_at)}</td>
            <td class="status">{status}</td>
            <td>
                {(user.handle != me).then(|| view! {
                    <button class="small" aria-label=format!("{label} {}", user.handle) on:click=toggle>{label}</button>
                })}
            </td>
        </tr>
    }
}
