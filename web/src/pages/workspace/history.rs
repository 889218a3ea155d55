//! The checkpoint history: a slider over the sprite's checkpoints, oldest
//! to now. A position shows which files differ from now; a file opens in
//! a side-by-side diff. Checkpoint now, restore (the state before is kept,
//! so a restore can be undone).

use leptos::prelude::*;
use sprites_wire::api::{NewCheckpoint, Progress, SaveTemplate};
use sprites_wire::client;

use super::Ws;
use crate::pages::checkpoints::label as checkpoint_label;
use crate::{api, js};

async fn text_at(ws: Ws, checkpoint: Option<&str>, path: &str) -> api::Result<String> {
    match api::get_bytes(&ws.file_url_at(path, checkpoint)).await {
        Ok(bytes) => Ok(match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => format!("(a binary file of {} bytes)", e.as_bytes().len()),
        }),
        Err(e) if e.status == 404 => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// The history's state and what acts on it, shared by its parts.
#[derive(Clone, Copy)]
struct Timeline {
    ws: Ws,
    /// Oldest first.
    checkpoints: RwSignal<Option<Vec<api::Checkpoint>>>,
    /// Where the slider is: an index, or the list's length for now.
    position: RwSignal<usize>,
    diff: RwSignal<Option<api::Result<Vec<api::PathChange>>>>,
    busy: RwSignal<Option<&'static str>>,
    /// The last restore made here, to undo: (the state before, the target).
    undo: RwSignal<Option<(String, String)>>,
    /// The file shown in the diff view.
    viewing: RwSignal<Option<String>>,
    diff_host: NodeRef<leptos::html::Div>,
    diff_view: StoredValue<Option<js::DiffView>, LocalStorage>,
}

impl Timeline {
    fn new(ws: Ws) -> Timeline {
        Timeline {
            ws,
            checkpoints: RwSignal::new(None),
            position: RwSignal::new(0),
            diff: RwSignal::new(None),
            busy: RwSignal::new(None),
            undo: RwSignal::new(None),
            viewing: RwSignal::new(None),
            diff_host: NodeRef::new(),
            diff_view: StoredValue::new_local(None),
        }
    }

    /// The checkpoint the slider is on (none: now).
    fn selected(self) -> Option<api::Checkpoint> {
        let list = self.checkpoints.get()?;
        list.get(self.position.get()).cloned()
    }

    /// The list again; the slider goes to checkpoint `select`, or to now.
    fn reload(self, select: Option<String>) {
        let ws = self.ws;
        leptos::task::spawn_local(async move {
            match api::run(client::checkpoints(&ws.name.get_value())).await {
                Ok(mut list) => {
                    list.reverse();
                    let at = select
                        .and_then(|id| list.iter().position(|c| c.id == id))
                        .unwrap_or(list.len());
                    self.checkpoints.set(Some(list));
                    self.position.set(at);
                }
                Err(e) => ws.fail(e),
            }
        });
    }

    /// Which files differ between the selected checkpoint and now.
    fn load_diff(self) {
        let Some(c) = self.selected() else {
            self.diff.set(None);
            return;
        };
        self.viewing.set(None);
        self.diff.set(None);
        let ws = self.ws;
        leptos::task::spawn_local(async move {
            let r = api::run(client::diff(&ws.name.get_value(), &c.id, None))
                .await
                .map(|d| d.changes);
            self.diff.set(Some(r));
        });
    }

    /// `path` side by side, at the checkpoint and now. `change` is how the
    /// file went from one to the other: the side where it does not exist
    /// is empty, not asked for.
    fn show_file(self, path: String, change: api::ChangeKind) {
        let Some(c) = self.selected() else { return };
        self.viewing.set(Some(path.clone()));
        let ws = self.ws;
        leptos::task::spawn_local(async move {
            let before = match change {
                api::ChangeKind::Added => Ok(String::new()),
                _ => text_at(ws, Some(&c.id), &path).await,
            };
            let after = match change {
                api::ChangeKind::Deleted => Ok(String::new()),
                _ => text_at(ws, None, &path).await,
            };
            let (before, after) = match (before, after) {
                (Ok(b), Ok(a)) => (b, a),
                (Err(e), _) | (_, Err(e)) => return ws.fail(e),
            };
            let monaco = match js::load_monaco().await {
                Ok(m) => m,
                Err(_) => {
                    return ws
                        .error
                        .set(Some("The diff view could not be loaded.".into()))
                }
            };
            // Left meanwhile: nothing to show it in.
            let Some(el) = self.diff_host.try_get_untracked().flatten() else {
                return;
            };
            self.diff_view.try_update_value(|d| {
                let d = d.get_or_insert_with(|| js::DiffView::new(&el, &monaco));
                d.show(&path, &before, &after);
            });
        });
    }

    /// A checkpoint now, with `comment`; the slider goes to it.
    fn checkpoint_now(self, comment: RwSignal<String>) {
        self.busy.set(Some("Saving a checkpoint…"));
        let (ws, c) = (self.ws, comment.get_untracked());
        leptos::task::spawn_local(async move {
            let req = NewCheckpoint { comment: c };
            match api::progress(client::checkpoint(&ws.name.get_value(), &req)).await {
                Ok(lines) => {
                    comment.set(String::new());
                    // The new checkpoint, selected: the person sees it made.
                    let made = lines.into_iter().find_map(|l| match l {
                        Progress::Info { id, .. } => id,
                        _ => None,
                    });
                    self.reload(made);
                }
                Err(e) => ws.fail(e),
            }
            self.busy.set(None);
        });
    }

    /// Restores checkpoint `id` (asking first with `confirm`, which also
    /// offers the undo).
    fn restore(self, id: String, confirm: bool) {
        let question = format!(
            "Restore the whole sprite to {id}? Its processes restart; the state now is kept as a checkpoint, so you can undo."
        );
        if confirm && !crate::pages::confirm(&question) {
            return;
        }
        self.busy.set(Some("Restoring…"));
        let ws = self.ws;
        leptos::task::spawn_local(async move {
            match api::progress(client::restore(&ws.name.get_value(), &id)).await {
                Ok(lines) => {
                    let backup = lines.into_iter().find_map(|l| match l {
                        Progress::Info { backup, .. } => backup,
                        _ => None,
                    });
                    ws.note_restore(id.clone());
                    // Undoing an undo is a plain restore again.
                    self.undo.set(if confirm {
                        backup.map(|b| (b, id))
                    } else {
                        None
                    });
                    ws.reload_sprite();
                    self.reload(None);
                }
                Err(e) => ws.fail(e),
            }
            self.busy.set(None);
        });
    }
}

#[component]
pub fn History() -> impl IntoView {
    let t = Timeline::new(expect_context::<Ws>());
    t.reload(None);
    Effect::new(move |_| t.load_diff());
    on_cleanup(move || {
        t.diff_view.update_value(|d| {
            if let Some(d) = d.take() {
                d.dispose();
            }
        })
    });
    let comment = RwSignal::new(String::new());
    let checkpoint_now = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        t.checkpoint_now(comment);
    };
    let (busy, undo, viewing) = (t.busy, t.undo, t.viewing);
    view! {
        <div class="history">
            <form class="inline" on:submit=checkpoint_now>
                <label>
                    <span class="sr-only">"Comment"</span>
                    <input
                        name="comment"
                        placeholder="What is this state? (optional)"
                        bind:value=comment
                    />
                </label>
                <button type="submit" class="primary" disabled=move || busy.get().is_some()>
                    "Checkpoint now"
                </button>
            </form>
            {move || busy.get().map(|b| view! { <p class="progress" role="status">{b}</p> })}
            {move || {
                undo.get()
                    .map(|(backup, restored)| {
                        let b = backup.clone();
                        view! {
                            <div class="notice" role="status">
                                {format!("Restored {restored}. The state before is {backup}.")}
                                <button on:click=move |_| t.restore(b.clone(), false)>"Undo the restore"</button>
                            </div>
                        }
                    })
            }}
            <Slider t=t />
            <AtCheckpoint t=t />
            <Changes t=t />
            <div class="diff-head" class:hidden=move || viewing.get().is_none()>
                {move || viewing.get().map(|p| format!("{p}: at the checkpoint (left) and now (right)"))}
                <button class="link" on:click=move |_| viewing.set(None)>"Close"</button>
            </div>
            <div class="diff" node_ref=t.diff_host class:hidden=move || viewing.get().is_none()></div>
        </div>
    }
}

/// The slider over the checkpoints, oldest to now, with a mark for each.
#[component]
fn Slider(t: Timeline) -> impl IntoView {
    let position = t.position;
    move || {
        match t.checkpoints.get() {
        None => view! { <p class="loading">"Loading checkpoints…"</p> }.into_any(),
        Some(list) if list.is_empty() => {
            view! {
                <p class="empty">
                    "No checkpoints yet. A checkpoint saves the whole sprite, files and installed software, so you can come back to it."
                </p>
            }
                .into_any()
        }
        Some(list) => {
            let n = list.len();
            let marks = list
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let left = format!("left: {}%", i as f64 * 100.0 / n as f64);
                    view! {
                        <span
                            class="mark"
                            class:auto=c.auto
                            style=left
                            title=checkpoint_label(c)
                        ></span>
                    }
                })
                .collect_view();
            view! {
                <div class="timeline">
                    <input
                        type="range"
                        aria-label="Checkpoint"
                        min="0"
                        max=n.to_string()
                        step="1"
                        prop:value=move || position.get().to_string()
                        on:input=move |ev| {
                            position.set(event_target_value(&ev).parse().unwrap_or(n))
                        }
                    />
                    <div class="marks">{marks}<span class="mark now" style="left: 100%" title="Now"></span></div>
                    <div class="ends"><span>"oldest"</span><span>"now"</span></div>
                </div>
            }
                .into_any()
        }
    }
    }
}

/// The checkpoint the slider is on: restore it, or save it as a template.
#[component]
fn AtCheckpoint(t: Timeline) -> impl IntoView {
    let busy = t.busy;
    move || match t.selected() {
        None => {
            view! { <p class="muted">"Now. Move the slider back to compare with a checkpoint."</p> }
                .into_any()
        }
        Some(c) => {
            let id = c.id.clone();
            view! {
                <div class="at-checkpoint">
                    <p>
                        <strong>{checkpoint_label(&c)}</strong>
                        {c.auto.then(|| view! { <span class="badge">"automatic"</span> })}
                    </p>
                    <button class="danger" disabled=move || busy.get().is_some() on:click=move |_| t.restore(id.clone(), true)>
                        "Restore this checkpoint…"
                    </button>
                    <SaveAsTemplate checkpoint=c.id.clone() />
                </div>
            }
                .into_any()
        }
    }
}

/// The paths that differ between the checkpoint and now; a file's opens in
/// the diff view.
#[component]
fn Changes(t: Timeline) -> impl IntoView {
    move || {
        match t.diff.get() {
        None => None,
        Some(Err(e)) => Some(view! { <p class="error">{e.message}</p> }.into_any()),
        Some(Ok(changes)) if changes.is_empty() => {
            Some(view! { <p class="muted">"No file differs from now."</p> }.into_any())
        }
        Some(Ok(changes)) => Some(
            view! {
                <p class="muted">{format!("{} paths differ from now:", changes.len())}</p>
                <ul class="changes">
                    {changes
                        .into_iter()
                        .map(|ch| {
                            let p = ch.path.clone();
                            let how = ch.change;
                            let verb = match how {
                                api::ChangeKind::Added => "new since then",
                                api::ChangeKind::Deleted => "deleted since then",
                                api::ChangeKind::Modified => "changed since then",
                            };
                            let is_file = ch.kind == api::EntryKind::File;
                            view! {
                                <li class=format!("change {}", how.as_str()) data-path=ch.path.clone()>
                                    <button class="link" disabled=!is_file on:click=move |_| t.show_file(p.clone(), how)>
                                        {ch.path.clone()}
                                    </button>
                                    <span class="muted">{format!(" {verb}")}</span>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            }
            .into_any(),
        ),
    }
    }
}

/// "Save as template…": this checkpoint becomes a template for its maker
/// or (for the organization's owners and admins) the whole organization.
#[component]
fn SaveAsTemplate(checkpoint: String) -> impl IntoView {
    let ws = expect_context::<Ws>();
    let open = RwSignal::new(false);
    let name = RwSignal::new(String::new());
    let title = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let scope = RwSignal::new("owner".to_string());
    let done = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let checkpoint = StoredValue::new(checkpoint);
    let save = Action::new_local(move |req: &SaveTemplate| {
        let call = client::save_template(req);
        async move {
            match api::run(call).await {
                Ok(t) => {
                    done.set(Some(format!(
                        "Saved as the template {}: it is on your dashboard.",
                        t.title
                    )));
                    open.set(false);
                }
                Err(e) => error.set(Some(e.message)),
            }
        }
    });
    let busy = save.pending();
    let submit = crate::pages::on_submit(busy, move || {
        error.set(None);
        save.dispatch_local(SaveTemplate {
            name: name.get_untracked().trim().to_lowercase(),
            sprite: ws.name.get_value(),
            checkpoint: checkpoint.get_value(),
            title: Some(title.get_untracked()),
            description: Some(description.get_untracked()),
            scope: Some(scope.get_untracked()),
            open: None,
        });
    });
    view! {
        {move || done.get().map(|d| view! { <p class="notice" role="status">{d}</p> })}
        <Show
            when=move || open.get()
            fallback=move || view! { <button on:click=move |_| open.set(true)>"Save as template…"</button> }
        >
            <form class="save-template" on:submit=submit>
                <label>
                    "Template name"
                    <input
                        name="template-name"
                        required
                        pattern="[a-z0-9][a-z0-9\\-]*"
                        title="Lower-case letters, digits and hyphens"
                        bind:value=name
                    />
                </label>
                <label>"Title" <input name="template-title" bind:value=title /></label>
                <label>
                    "Description"
                    <input name="template-description" bind:value=description />
                </label>
                <label>
                    "Who can use it"
                    <select name="template-scope" on:change=move |ev| scope.set(event_target_value(&ev))>
                        <option value="owner">"Only me"</option>
                        <option value="organization">"Everyone in the organization"</option>
                    </select>
                </label>
                <button type="submit" class="primary" disabled=move || busy.get()>
                    {move || if busy.get() { "Saving…" } else { "Save template" }}
                </button>
                <button type="button" on:click=move |_| open.set(false)>"Cancel"</button>
                {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            </form>
        </Show>
    }
}
