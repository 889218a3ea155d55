//! A sprite's workspace: file tree, editor, terminals, and on the right
//! the preview, the checkpoint history or the settings, in panes whose
//! sizes the person drags.

mod editor;
mod files;
mod history;
mod preview;
mod settings;
mod terminal;
mod watch;

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use sprites_wire::api::Sprite;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::dashboard::EventStream;
use super::{ago, resumed_words, status_words, ErrorBanner, TopBar};
use crate::api;

/// What the panes of one workspace share.
#[derive(Clone, Copy)]
pub struct Ws {
    pub name: StoredValue<String>,
    pub sprite: RwSignal<Option<Sprite>>,
    pub error: RwSignal<Option<String>>,
    /// A file the editor should open (the tree or the history asks).
    pub open: RwSignal<Option<String>>,
    /// Moves on whenever files may have changed behind the tree's back
    /// (a restore, an upload).
    pub files_changed: RwSignal<u64>,
    /// Moves on after every save (the preview may reload).
    pub saved: RwSignal<u64>,
    /// The organization has no such sprite (or it was deleted).
    pub missing: RwSignal<bool>,
    /// A path the file tree renamed (to the second) or deleted (`None`):
    /// the editor's tabs under it follow.
    pub moved: RwSignal<Option<(String, Option<String>)>>,
    /// The folder the file tree shows (and watches, with all below it).
    pub tree_root: RwSignal<String>,
    /// The files open in the editor (watched too).
    pub open_files: RwSignal<Vec<String>>,
    /// Changes on the sprite's disk as they happen.
    pub changes: watch::Changes,
    /// The last restore of the sprite (from this page or anyone else's):
    /// the preview reloads and the editor's tabs load what it brought back.
    pub restored: RwSignal<Option<Restored>>,
}

/// A restore the workspace has seen.
#[derive(Clone, Debug, PartialEq)]
pub struct Restored {
    /// The checkpoint the sprite went back to.
    pub checkpoint: String,
    /// When the page learnt of it (milliseconds, the browser's clock).
    pub at: f64,
}

impl Ws {
    fn new(name: String) -> Ws {
        Ws {
            name: StoredValue::new(name),
            sprite: RwSignal::new(None),
            error: RwSignal::new(None),
            open: RwSignal::new(None),
            files_changed: RwSignal::new(0),
            saved: RwSignal::new(0),
            missing: RwSignal::new(false),
            moved: RwSignal::new(None),
            restored: RwSignal::new(None),
            tree_root: RwSignal::new("/root".to_string()),
            open_files: RwSignal::new(Vec::new()),
            changes: watch::Changes::new(),
        }
    }

    /// Live state from the server's event stream, while the workspace is
    /// open: the sprite's status, restores, files others saved, its end.
    fn follow_events(self) {
        let ws = self;
        let me = expect_context::<crate::Session>()
            .profile()
            .map(|p| p.handle)
            .unwrap_or_default();
        let stream = StoredValue::new_local(EventStream::open(move |ev| {
            if ev.sprite != ws.name.get_value() {
                return;
            }
            match ev.kind.as_str() {
                "sprite.status" => ws.sprite.update(|s| {
                    if let (Some(s), Some(status)) = (s, &ev.status) {
                        s.status = status.clone();
                        s.last_active_at = Some(ev.at.clone());
                    }
                }),
                "checkpoint.restored" => ws.note_restore(ev.checkpoint.clone().unwrap_or_default()),
                // Someone sharing the sprite saved a file: open tabs look again.
                "file.written" if ev.by.as_deref() != Some(me.as_str()) => {
                    ws.files_changed.update(|n| *n += 1)
                }
                "sprite.destroyed" => ws.missing.set(true),
                _ => {}
            }
        }));
        on_cleanup(move || stream.set_value(None));
    }

    /// `/v1/sprites/{name}` followed by `rest`.
    pub fn path(&self, rest: &str) -> String {
        format!("/v1/sprites/{}{rest}", api::enc(&self.name.get_value()))
    }

    /// The URL of a file's bytes in the sprite (what downloads fetch); as
    /// it was at checkpoint `at` when given.
    pub fn file_url_at(&self, path: &str, at: Option<&str>) -> String {
        sprites_wire::client::read_file(&self.name.get_value(), path, at).path
    }

    pub fn file_url(&self, path: &str) -> String {
        self.file_url_at(path, None)
    }

    /// Writes `bytes` to the file at `path` in the sprite.
    pub async fn write_file(&self, path: &str, bytes: &[u8]) -> api::Result<()> {
        let call = sprites_wire::client::write_file(&self.name.get_value(), path);
        api::call(call.method.as_str(), &call.path, api::Body::Bytes(bytes))
            .await
            .map(|_| ())
    }

    pub fn fail(&self, e: api::ApiError) {
        self.error.set(Some(e.message));
    }

    /// The sprite was restored to `checkpoint`: its own answer and the
    /// event stream both say so, and the second of them within a few
    /// seconds is the same restore.
    pub fn note_restore(&self, checkpoint: String) {
        let now = js_sys::Date::now();
        let seen = self.restored.with_untracked(|r| {
            r.as_ref()
                .is_some_and(|r| r.checkpoint == checkpoint && now - r.at < 3000.0)
        });
        if !seen {
            self.restored.set(Some(Restored {
                checkpoint,
                at: now,
            }));
        }
    }

    pub fn reload_sprite(&self) {
        let ws = *self;
        leptos::task::spawn_local(async move {
            match api::run(sprites_wire::client::sprite(&ws.name.get_value())).await {
                Ok(s) => ws.sprite.set(Some(s)),
                Err(e) if e.status == 404 => ws.missing.set(true),
                Err(e) => ws.fail(e),
            }
        });
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Preview,
    History,
    Settings,
}

#[component]
pub fn Workspace() -> impl IntoView {
    let params = use_params_map();
    let name = params.read_untracked().get("name").unwrap_or_default();
    let ws = Ws::new(name);
    provide_context(ws);
    ws.reload_sprite();
    // A new sprite from a template opens with its note (`?open=PATH`).
    if let Some(path) = use_query_map().read_untracked().get("open") {
        ws.open.set(Some(path));
    }
    ws.follow_events();
    // Live changes of the files shown.
    watch::follow(ws);

    let side = RwSignal::new(Side::Preview);
    let tree_width = RwSignal::new(240.0);
    let side_width = RwSignal::new(440.0);
    let term_height = RwSignal::new(260.0);
    let title = Signal::derive(move || ws.name.get_value());
    let state = move || {
        ws.sprite.get().map(|s| {
            let last = s.last_active_at.as_deref().map(ago).unwrap_or_default();
            view! {
                <span class=format!("state {}", s.status) title=last>
                    {status_words(&s.status)}
                </span>
            }
        })
    };
    let style = move || {
        format!(
            "--tree: {}px; --side: {}px; --term: {}px",
            tree_width.get(),
            side_width.get(),
            term_height.get()
        )
    };
    let tab = move |which: Side, label: &'static str| {
        view! {
            <button
                role="tab"
                class:active=move || side.get() == which
                aria-selected=move || (side.get() == which).to_string()
                on:click=move |_| side.set(which)
            >
                {label}
            </button>
        }
    };
    let missing = move || {
        view! {
            <TopBar title=title />
            <main class="narrow">
                <h1>"No such sprite"</h1>
                <p>
                    "This organization has no sprite called “" {ws.name.get_value()}
                    "”. It may have been deleted, or it belongs to another organization. "
                    <a href="/">"Back to your sprites"</a>
                </p>
            </main>
        }
    };
    view! {
        <Show when=move || !ws.missing.get() fallback=missing>
        <Show
            when=move || ws.sprite.with(Option::is_some)
            fallback=|| view! { <p class="loading">"Opening the sprite…"</p> }
        >
        <TopBar title=title />
        <ErrorBanner error=ws.error />
        <div class="workspace" style=style>
            <div class="ws-bar">
                <a href="/">"← All sprites"</a>
                <strong>{ws.name.get_value()}</strong>
                {state}
                <ResumedNote />
                <RestartButton />
            </div>
            <aside class="pane tree-pane">
                <files::FileTree />
            </aside>
            <Splitter value=tree_width axis=Axis::X min=140.0 max=600.0 invert=false label="Resize the file tree" name="tree-splitter" />
            <section class="pane center">
                <div class="editor-pane">
                    <editor::EditorPane />
                </div>
                <Splitter value=term_height axis=Axis::Y min=80.0 max=900.0 invert=true label="Resize the terminal" name="term-splitter" />
                <div class="terminal-pane">
                    <terminal::Terminals />
                </div>
            </section>
            <Splitter value=side_width axis=Axis::X min=220.0 max=1200.0 invert=true label="Resize the side pane" name="side-splitter" />
            <aside class="pane side-pane">
                <div class="tabs" role="tablist">
                    {tab(Side::Preview, "Preview")}
                    {tab(Side::History, "History")}
                    {tab(Side::Settings, "Settings")}
                </div>
                <div class="side-body" class:hidden=move || side.get() != Side::Preview>
                    <preview::Preview />
                </div>
                // Kept while hidden: its slider position and the undo of the
                // last restore stay when the person looks at another tab.
                <div class="side-body" class:hidden=move || side.get() != Side::History>
                    <history::History />
                </div>
                <Show when=move || side.get() == Side::Settings>
                    <div class="side-body">
                        <settings::Settings />
                    </div>
                </Show>
            </aside>
        </div>
        </Show>
        </Show>
    }
}

/// Restarts the sprite, asking first: the way back for a sprite whose
/// processes took all it may have.
/// Said in the bar when the sprite was brought back after its machine
/// was lost: the checkpoint, and in full on hover.
#[component]
fn ResumedNote() -> impl IntoView {
    let ws = expect_context::<Ws>();
    move || {
        ws.sprite.get().and_then(|s| s.resumed).map(|r| {
            let words = resumed_words(&r);
            let short = match &r.checkpoint {
                Some(c) => format!("Recovered from {c}"),
                None => "Recovered".to_string(),
            };
            view! {
                <span class="resumed-note" role="note" title=words.clone() aria-label=words>
                    {short}
                </span>
            }
        })
    }
}

#[component]
fn RestartButton() -> impl IntoView {
    let ws = expect_context::<Ws>();
    let restarting = RwSignal::new(false);
    let restart = move |_| {
        let name = ws.name.get_value();
        if !super::confirm(&format!(
            "Restart {name}? Every process stops and starts again (terminals too); its files stay."
        )) {
            return;
        }
        restarting.set(true);
        leptos::task::spawn_local(async move {
            match api::run(sprites_wire::client::restart(&name)).await {
                Ok(_) => {
                    ws.error.set(None);
                    ws.reload_sprite();
                }
                Err(e) => ws.fail(e),
            }
            restarting.set(false);
        });
    };
    view! {
        <button
            class="small"
            title="Every process stops and starts again; the files stay"
            disabled=move || restarting.get()
            on:click=restart
        >
            {move || if restarting.get() { "Restarting…" } else { "Restart" }}
        </button>
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    X,
    Y,
}

/// A handle between two panes: dragging it (or the arrow keys) changes
/// `value`, a size in pixels; `invert` when the pane grows the other way.
#[component]
fn Splitter(
    value: RwSignal<f64>,
    axis: Axis,
    min: f64,
    max: f64,
    invert: bool,
    label: &'static str,
    /// A class naming which panes it is between.
    name: &'static str,
) -> impl IntoView {
    let clamp = move |v: f64| v.clamp(min, max);
    let on_down = move |ev: web_sys::PointerEvent| {
        ev.prevent_default();
        let start = match axis {
            Axis::X => ev.client_x(),
            Axis::Y => ev.client_y(),
        } as f64;
        let from = value.get_untracked();
        let window = web_sys::window().unwrap();
        let body = window.document().unwrap().body().unwrap();
        let _ = body.class_list().add_1("dragging");
        let on_move =
            Closure::<dyn FnMut(web_sys::PointerEvent)>::new(move |ev: web_sys::PointerEvent| {
                let at = match axis {
                    Axis::X => ev.client_x(),
                    Axis::Y => ev.client_y(),
                } as f64;
                let delta = if invert { start - at } else { at - start };
                value.set(clamp(from + delta));
            });
        let on_move_fn: js_sys::Function =
            on_move.as_ref().unchecked_ref::<js_sys::Function>().clone();
        let _ = window.add_event_listener_with_callback("pointermove", &on_move_fn);
        let w = window.clone();
        let on_up = Closure::once_into_js(move |_: web_sys::PointerEvent| {
            let _ = w.remove_event_listener_with_callback("pointermove", &on_move_fn);
            let _ = body.class_list().remove_1("dragging");
            drop(on_move);
        });
        let opts = web_sys::AddEventListenerOptions::new();
        opts.set_once(true);
        let _ = window.add_event_listener_with_callback_and_add_event_listener_options(
            "pointerup",
            on_up.unchecked_ref(),
            &opts,
        );
    };
    let on_key = move |ev: web_sys::KeyboardEvent| {
        let step = if invert { -20.0 } else { 20.0 };
        let delta = match (axis, ev.key().as_str()) {
            (Axis::X, "ArrowRight") | (Axis::Y, "ArrowDown") => step,
            (Axis::X, "ArrowLeft") | (Axis::Y, "ArrowUp") => -step,
            _ => return,
        };
        ev.prevent_default();
        value.update(|v| *v = clamp(*v + delta));
    };
    view! {
        <div
            class=match axis {
                Axis::X => format!("splitter x {name}"),
                Axis::Y => format!("splitter y {name}"),
            }
            role="separator"
            tabindex="0"
            aria-label=label
            aria-valuenow=move || value.get().round().to_string()
            aria-valuemin=min.to_string()
            aria-valuemax=max.to_string()
            aria-orientation=match axis {
                Axis::X => "vertical",
                Axis::Y => "horizontal",
            }
            on:pointerdown=on_down
            on:keydown=on_key
        ></div>
    }
}
