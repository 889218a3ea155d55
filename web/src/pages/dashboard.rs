//! The dashboard: the organization's sprites as cards with their live
//! state, creating (blank, from a checkpoint or from a template of the
//! gallery) and deleting them.

use std::collections::{HashMap, HashSet};

use leptos::prelude::*;
use sprites_wire::api::{
    CreateSprite, Fork, Replication, ReplicationState, Sprite, SpriteEvent, SpriteLocation,
};
use sprites_wire::client;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{ago, resumed_words, status_words, ErrorBanner, TopBar};
use crate::{api, Session};

/// Follows the server's event stream while the returned handle lives:
/// `on_event` gets every event of the caller's organization.
pub struct EventStream {
    source: web_sys::EventSource,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
}

impl EventStream {
    pub fn open(mut on_event: impl FnMut(SpriteEvent) + 'static) -> Option<EventStream> {
        let source = web_sys::EventSource::new("/v1/events").ok()?;
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                if let Some(text) = ev.data().as_string() {
                    if let Ok(event) = serde_json::from_str::<SpriteEvent>(&text) {
                        on_event(event);
                    }
                }
            });
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Some(EventStream {
            source,
            _on_message: on_message,
        })
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.source.close();
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let session = expect_context::<Session>();
    let sprites = RwSignal::new(None::<Vec<Sprite>>);
    let disk = RwSignal::new(HashMap::<String, u64>::new());
    let error = RwSignal::new(None::<String>);
    // The sprite whose deletion awaits its confirmation, and those being
    // deleted: kept here, as a card is made again whenever its sprite
    // changes (a backup shipped, say) while the person decides.
    let asked = RwSignal::new(None::<String>);
    let deleting = RwSignal::new(HashSet::<String>::new());
    let reload = move || {
        leptos::task::spawn_local(async move {
            match api::run(client::sprites(None).query("max_results", "500")).await {
                Ok(list) => sprites.set(Some(list.sprites)),
                Err(e) => error.set(Some(e.message)),
            }
            if let Ok(usage) = api::run(client::usage_all()).await {
                disk.set(
                    usage
                        .sprites
                        .into_iter()
                        .map(|u| (u.name, u.disk_bytes))
                        .collect(),
                );
            }
        });
    };
    // Again whenever the organization changes.
    Effect::new(move |_| {
        session.0.with(|p| {
            p.as_ref()
                .map(|p| p.as_ref().map(|p| p.organization.clone()))
        });
        reload();
    });
    follow_events(session, sprites, reload);

    view! {
        <TopBar />
        <ErrorBanner error=error />
        <main class="dashboard">
            <div class="heading">
                <h1>"Your sprites"</h1>
            </div>
            {move || {
                session
                    .current_org()
                    .filter(|o| o.class)
                    .map(|org| {
                        view! { <super::class::ClassPanel org=org sprites=sprites on_started=move |_| reload() /> }
                    })
            }}
            <NewSprite sprites=sprites on_created=move |_| reload() />
            <super::class::JoinOrTeach />
            {move || match sprites.get() {
                None => view! { <p class="loading">"Loading your sprites…"</p> }.into_any(),
                Some(list) if list.is_empty() => {
                    view! {
                        <p class="empty">
                            "No sprites yet. Give your first one a name above: it is a whole Linux computer, ready in a moment."
                        </p>
                    }
                        .into_any()
                }
                Some(_) => {
                    view! {
                        <ul class="cards">
                            <For
                                each=move || sprites.get().unwrap_or_default()
                                key=|s| {
                                    (
                                        s.name.clone(),
                                        s.status.clone(),
                                        s.last_active_at.clone(),
                                        s.replication.state,
                                        s.replication.location,
                                        s.replication.last_shipped_checkpoint.clone(),
                                        s.replication.fetched_bytes,
                                    )
                                }
                                children=move |s| {
                                    view! { <Card sprite=s disk=disk error=error sprites=sprites asked=asked deleting=deleting /> }
                                }
                            />
                        </ul>
                    }
                        .into_any()
                }
            }}
            // Below the person's own sprites: what a new one can start from.
            <super::gallery::Gallery sprites=sprites />
        </main>
    }
}

/// Keeps `sprites` following the server's event stream of the signed-in
/// person's organization (opened again when the session changes), for as
/// long as the calling component lives.
fn follow_events(
    session: Session,
    sprites: RwSignal<Option<Vec<Sprite>>>,
    reload: impl Fn() + Copy + Send + Sync + 'static,
) {
    let stream = StoredValue::new_local(None::<EventStream>);
    Effect::new(move |_| {
        session.0.track();
        stream.set_value(EventStream::open(move |ev| match ev.kind.as_str() {
            "sprite.status" => sprites.update(|list| {
                if let Some(s) = list.iter_mut().flatten().find(|s| s.name == ev.sprite) {
                    if let Some(status) = &ev.status {
                        s.status = status.clone();
                    }
                    s.last_active_at = Some(ev.at.clone());
                }
            }),
            "sprite.replication" => sprites.update(|list| {
                if let (Some(s), Some(now)) = (
                    list.iter_mut().flatten().find(|s| s.name == ev.sprite),
                    ev.replication.clone(),
                ) {
                    s.replication = now;
                }
            }),
            "sprite.destroyed" => sprites.update(|list| {
                if let Some(list) = list {
                    list.retain(|s| s.name != ev.sprite);
                }
            }),
            _ => reload(),
        }));
    });
    on_cleanup(move || stream.set_value(None));
}

#[component]
fn Card(
    sprite: Sprite,
    disk: RwSignal<HashMap<String, u64>>,
    error: RwSignal<Option<String>>,
    sprites: RwSignal<Option<Vec<Sprite>>>,
    asked: RwSignal<Option<String>>,
    deleting: RwSignal<HashSet<String>>,
) -> impl IntoView {
    let name = sprite.name.clone();
    let (me, me2, me3) = (name.clone(), name.clone(), name.clone());
    let confirming = move || asked.with(|a| a.as_deref() == Some(me.as_str()));
    let busy = move || deleting.with(|d| d.contains(&me2));
    let delete = {
        let name = name.clone();
        move |_| {
            let name = name.clone();
            deleting.update(|d| {
                d.insert(name.clone());
            });
            leptos::task::spawn_local(async move {
                match api::run(client::destroy_sprite(&name)).await {
                    Ok(()) => sprites.update(|l| {
                        if let Some(l) = l {
                            l.retain(|s| s.name != name)
                        }
                    }),
                    Err(e) => error.set(Some(e.message)),
                }
                // Settled either way: the question is answered.
                deleting.update(|d| {
                    d.remove(&name);
                });
                asked.update(|a| {
                    if a.as_deref() == Some(name.as_str()) {
                        *a = None;
                    }
                });
            });
        }
    };
    let disk_name = name.clone();
    let used = move || disk.get().get(&disk_name).map(|b| api::human_bytes(*b));
    let status = sprite.status.clone();
    let last = sprite.last_active_at.clone().map(|t| ago(&t));
    let private = sprite.url_settings.auth.as_deref() != Some("public");
    view! {
        <li class="card" data-sprite=name.clone()>
            <div class="card-head">
                <a class="name" href=format!("/s/{}", name)>{name.clone()}</a>
                <span class=format!("state {status}") title=status_words(&status)>
                    {status_words(&status)}
                </span>
            </div>
            <a class="url" href=sprite.url.clone() target="_blank" rel="noopener">
                {sprite.url.clone()}
            </a>
            <dl>
                <dt>"Visibility"</dt>
                <dd>{if private { "Private (your organization)" } else { "Public" }}</dd>
                <dt>"Last active"</dt>
                <dd>{last.unwrap_or_else(|| "never".into())}</dd>
                <dt>"Disk used"</dt>
                <dd>{move || used().unwrap_or_else(|| "…".into())}</dd>
                {sprite
                    .resumed
                    .as_ref()
                    .map(|r| {
                        view! {
                            <dt>"Recovered"</dt>
                            <dd class="resumed">{resumed_words(r)}</dd>
                        }
                    })}
                {backup_words(&sprite.replication)
                    .map(|(words, detail)| {
                        view! {
                            <dt>"Backup"</dt>
                            <dd class="backup" title=detail>
                                {words}
                            </dd>
                        }
                    })}
            </dl>
            <div class="actions">
                <a class="button primary" href=format!("/s/{}", name)>"Open"</a>
                <Show
                    when=confirming
                    fallback=move || {
                        let me = me3.clone();
                        view! {
                            <button on:click=move |_| asked.set(Some(me.clone()))>"Delete…"</button>
                        }
                    }
                >
                    <span class="confirm">
                        "Delete it and all its checkpoints? "
                        <button
                            class="danger"
                            disabled=busy.clone()
                            on:click=delete.clone()
                        >
                            {let busy = busy.clone(); move || if busy() { "Deleting…" } else { "Delete" }}
                        </button>
                        <button on:click=move |_| asked.set(None)>"Keep"</button>
                    </span>
                </Show>
            </div>
        </li>
    }
}

/// How a sprite's copy in the object store stands, in words and with the
/// detail behind them; nothing when the server has no object store.
fn backup_words(r: &Replication) -> Option<(String, String)> {
    let behind = |secs: u64| match secs {
        0..=1 => "a moment".to_string(),
        2..=119 => format!("{secs} s"),
        _ => format!("{} min", secs / 60),
    };
    let last = r
        .last_shipped_checkpoint
        .as_deref()
        .map(|c| format!("last copy: checkpoint {c}"))
        .unwrap_or_else(|| "no copy yet".into());
    Some(match (r.state, r.location) {
        (ReplicationState::Off, _) => return None,
        (ReplicationState::Fetching, _) => {
            let (done, total) = (
                r.fetched_bytes.unwrap_or(0),
                r.fetch_total_bytes.unwrap_or(0),
            );
            (
                format!(
                    "Coming back from object storage: {} of {}",
                    api::human_bytes(done),
                    api::human_bytes(total)
                ),
                last,
            )
        }
        (_, SpriteLocation::Bucket) => (
            "Kept in object storage; comes back when opened".into(),
            last,
        ),
        (ReplicationState::Current, _) => ("Backed up".into(), last),
        (ReplicationState::Behind, _) => (
            format!("Backing up ({} behind)", behind(r.lag_seconds)),
            last,
        ),
        (ReplicationState::Failing, _) => (
            format!(
                "Backup failing, retrying ({} behind)",
                behind(r.lag_seconds)
            ),
            r.error.clone().unwrap_or(last),
        ),
    })
}

/// The form that makes a sprite: a name, and optionally a checkpoint of
/// another sprite to start from.
#[component]
fn NewSprite(
    sprites: RwSignal<Option<Vec<Sprite>>>,
    on_created: impl Fn(()) + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let from = RwSignal::new(String::new());
    let checkpoints = RwSignal::new(Vec::<api::Checkpoint>::new());
    let checkpoint = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    super::checkpoints::follow(from, checkpoints, checkpoint, error, false);
    // A blank sprite, or a fork of `source` (at a checkpoint).
    let create = Action::new_local(move |(n, source, cp): &(String, String, String)| {
        let call = if source.is_empty() {
            client::create_sprite(&CreateSprite::named(n.clone()))
        } else {
            let fork = Fork {
                name: n.clone(),
                checkpoint: Some(cp.clone()).filter(|c| !c.is_empty()),
            };
            client::fork(source, &fork)
        };
        let on_created = on_created.clone();
        async move {
            match api::run(call).await {
                Ok(_) => {
                    name.set(String::new());
                    from.set(String::new());
                    on_created(());
                }
                Err(e) => error.set(Some(e.message)),
            }
        }
    });
    let busy = create.pending();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked().trim().to_lowercase();
        if n.is_empty() || busy.get_untracked() {
            return;
        }
        error.set(None);
        create.dispatch_local((n, from.get_untracked(), checkpoint.get_untracked()));
    };
    view! {
        <form class="new-sprite" on:submit=submit>
            <label>
                "New sprite"
                <input
                    name="sprite-name"
                    placeholder="my-site"
                    required
                    pattern="[a-z0-9][a-z0-9\\-]*"
                    title="Lower-case letters, digits and hyphens"
                    bind:value=name
                />
            </label>
            <label>
                "Start from"
                <select name="from" on:change=move |ev| from.set(event_target_value(&ev))>
                    <option value="" selected=move || from.get().is_empty()>
                        "A fresh Debian computer"
                    </option>
                    {move || {
                        sprites
                            .get()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|s| {
                                let n = s.name.clone();
                                view! { <option value=n.clone()>{format!("A copy of {n}")}</option> }
                            })
                            .collect_view()
                    }}
                </select>
            </label>
            <Show when=move || !from.get().is_empty()>
                <label>
                    "As it was at"
                    <select
                        name="checkpoint"
                        on:change=move |ev| checkpoint.set(event_target_value(&ev))
                    >
                        <option value="">"Now"</option>
                        {move || {
                            checkpoints
                                .get()
                                .into_iter()
                                .map(|c| {
                                    let label = super::checkpoints::label(&c);
                                    view! { <option value=c.id.clone()>{label}</option> }
                                })
                                .collect_view()
                        }}
                    </select>
                </label>
            </Show>
            <button type="submit" class="primary" disabled=move || busy.get()>
                {move || if busy.get() { "Creating…" } else { "Create sprite" }}
            </button>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </form>
    }
}
