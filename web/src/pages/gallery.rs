//! The template gallery on the dashboard: one card a template, one button
//! a card. The button makes a sprite from it and opens its workspace with
//! the template's "what to edit first" note in the editor.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use sprites_wire::api::{CreateSprite, Sprite, Template};
use sprites_wire::client;

use crate::api;

/// How often the gallery looks again while a template is being built.
const WHILE_BUILDING: std::time::Duration = std::time::Duration::from_secs(2);

/// `base`, or `base-2`, `base-3`... whichever no sprite has.
fn free_name(base: &str, taken: &[Sprite]) -> String {
    let base: String = base.chars().take(50).collect();
    let used = |n: &str| taken.iter().any(|s| s.name == n);
    if !used(&base) {
        return base;
    }
    (2..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| !used(n))
        .expect("some number is free")
}

#[component]
pub fn Gallery(sprites: RwSignal<Option<Vec<Sprite>>>) -> impl IntoView {
    let templates = RwSignal::new(None::<Vec<Template>>);
    let error = RwSignal::new(None::<String>);
    let creating = RwSignal::new(None::<String>);
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::run(client::templates()).await {
                Ok(list) => templates.set(Some(list.templates)),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    load();
    let building = move || {
        templates.with_untracked(|ts| {
            ts.iter()
                .flatten()
                .any(|t| t.state == "queued" || t.state == "building")
        })
    };
    if let Ok(handle) = set_interval_with_handle(
        move || {
            if building() {
                load()
            }
        },
        WHILE_BUILDING,
    ) {
        on_cleanup(move || handle.clear());
    }

    let navigate = use_navigate();
    let create = move |t: Template| {
        let name = free_name(&t.name, &sprites.get_untracked().unwrap_or_default());
        creating.set(Some(t.name.clone()));
        error.set(None);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            let mut req = CreateSprite::named(name);
            req.template = Some(t.name.clone());
            let made = api::run(client::create_sprite(&req)).await;
            creating.set(None);
            match made {
                Ok(s) => {
                    let mut to = format!("/s/{}", api::enc(&s.name));
                    if let Some(open) = &t.open {
                        to.push_str(&format!("?open={}", api::enc(open)));
                    }
                    navigate(&to, Default::default());
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let remove = move |name: String| {
        if !crate::pages::confirm(&format!(
            "Delete the template {name}? Sprites made from it stay."
        )) {
            return;
        }
        leptos::task::spawn_local(async move {
            match api::run(client::delete_template(&name)).await {
                Ok(()) => load(),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };

    view! {
        <section class="gallery" aria-labelledby="gallery-title">
            <h2 id="gallery-title">"Templates"</h2>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <ul class="templates">
                <For
                    each=move || templates.get().unwrap_or_default()
                    key=|t| (t.name.clone(), t.state.clone(), t.progress.clone())
                    children=move |t| {
                        let (create, remove) = (create.clone(), remove);
                        view! { <TemplateCard t=t creating=creating on_create=create on_remove=remove /> }
                    }
                />
            </ul>
        </section>
    }
}

/// One template: its picture, what it is, whose, and Use (or Delete).
#[component]
fn TemplateCard(
    t: Template,
    creating: RwSignal<Option<String>>,
    on_create: impl Fn(Template) + Clone + 'static,
    on_remove: impl Fn(String) + Clone + 'static,
) -> impl IntoView {
    let name = t.name.clone();
    let ready = t.state == "ready";
    let picture = match &t.picture {
        Some(src) => view! { <img src=src.clone() alt="" /> }.into_any(),
        None => {
            let initial = t
                .title
                .chars()
                .next()
                .unwrap_or('?')
                .to_uppercase()
                .to_string();
            view! { <div class="initial" aria-hidden="true">{initial}</div> }.into_any()
        }
    };
    let whose = match t.scope.as_str() {
        "owner" => Some("Only you".to_string()),
        "organization" => Some(format!(
            "Your organization · by {}",
            t.created_by.clone().unwrap_or_default()
        )),
        _ if t.kind == "image" => Some("From the server's operator".to_string()),
        _ => None,
    };
    let label = {
        let name = name.clone();
        let state = t.state.clone();
        move || {
            if creating.get().as_deref() == Some(name.as_str()) {
                return "Creating…".to_string();
            }
            match state.as_str() {
                "ready" => "Use this template".into(),
                "failed" => "Unavailable".into(),
                "queued" => "Waiting to be prepared…".into(),
                _ => "Preparing…".into(),
            }
        }
    };
    let removable = t.kind != "gallery" && t.scope != "everyone";
    let t2 = t.clone();
    let n2 = name.clone();
    view! {
        <li class="template" data-template=name.clone() data-state=t.state.clone()>
            {picture}
            <h3>{t.title.clone()}</h3>
            <p>{t.description.clone()}</p>
            {whose.map(|w| view! { <p class="muted">{w}</p> })}
            {t.error.clone().map(|e| view! { <p class="error">{e}</p> })}
            // The build's latest step, in a line of its own that wraps
            // inside the card.
            {(t.state == "building")
                .then(|| t.progress.clone())
                .flatten()
                .map(|p| view! { <p class="progress muted" title=p.clone()>{p.clone()}</p> })}
            <div class="actions">
                <button
                    class="primary"
                    disabled=move || !ready || creating.get().is_some()
                    on:click=move |_| on_create(t2.clone())
                >
                    {label}
                </button>
                {removable.then(|| view! {
                    <button class="link" on:click=move |_| on_remove(n2.clone())>"Delete"</button>
                })}
            </div>
        </li>
    }
}
