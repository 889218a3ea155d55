//! API tokens: for the `sprite` command and the SDKs. A new token's secret
//! is shown once.

use leptos::prelude::*;
use sprites_wire::client;
use sprites_wire::orgs::NewToken;

use super::{ErrorBanner, TopBar};
use crate::api;

fn date(ms: i64) -> String {
    super::local_time(ms, true)
}

#[component]
pub fn Tokens() -> impl IntoView {
    let tokens = RwSignal::new(None::<Vec<api::Token>>);
    let error = RwSignal::new(None::<String>);
    let name = RwSignal::new(String::new());
    let secret = RwSignal::new(None::<String>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            match api::run(client::tokens()).await {
                Ok(l) => tokens.set(Some(l.tokens)),
                Err(e) => error.set(Some(e.message)),
            }
        })
    };
    reload();
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked().trim().to_string();
        if n.is_empty() {
            return;
        }
        leptos::task::spawn_local(async move {
            let req = NewToken {
                name: n,
                organization: None,
            };
            match api::run(client::create_token(&req)).await {
                Ok(t) => {
                    secret.set(Some(t.token));
                    name.set(String::new());
                    reload();
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let revoke = move |id: String| {
        leptos::task::spawn_local(async move {
            match api::run(client::revoke_token(&id)).await {
                Ok(()) => reload(),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        <TopBar title=Signal::derive(|| "API tokens".to_string()) />
        <ErrorBanner error=error />
        <main class="narrow">
            <h1>"API tokens"</h1>
            <p>
                "A token lets the " <code>"sprite"</code>
                " command or a program act for you in this organization. Keep it secret."
            </p>
            <form class="inline" on:submit=create>
                <label>
                    "Name"
                    <input name="token-name" placeholder="laptop" required bind:value=name />
                </label>
                <button type="submit" class="primary">"Create token"</button>
            </form>
            {move || {
                secret
                    .get()
                    .map(|t| {
                        view! {
                            <div class="notice" role="status">
                                <p>"Copy it now: it is not shown again."</p>
                                <code class="secret">{t}</code>
                            </div>
                        }
                    })
            }}
            {move || match tokens.get() {
                None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                Some(list) if list.is_empty() => {
                    view! { <p class="empty">"No tokens yet."</p> }.into_any()
                }
                Some(list) => {
                    view! {
                        <table class="list">
                            <thead>
                                <tr>
                                    <th>"Name"</th>
                                    <th>"Created"</th>
                                    <th>"Last used"</th>
                                    <th></th>
                                </tr>
                            </thead>
                            <tbody>
                                {list
                                    .into_iter()
                                    .map(|t| {
                                        let id = t.id.clone();
                                        view! {
                                            <tr>
                                                <td>{t.name.clone()}</td>
                                                <td>{date(t.created_at)}</td>
                                                <td>{t.last_used_at.map(date).unwrap_or_else(|| "never".into())}</td>
                                                <td>
                                                    <button
                                                        class="danger"
                                                        on:click=move |_| revoke(id.clone())
                                                    >
                                                        "Revoke"
                                                    </button>
                                                </td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    }
                        .into_any()
                }
            }}
        </main>
    }
}
