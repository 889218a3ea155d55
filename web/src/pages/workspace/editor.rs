//! The editor: Monaco with a tab per open file, syntax by file type, save
//! with Ctrl/Cmd+S, a marker on unsaved tabs, and a warning when the file
//! changed on the sprite's disk since it was opened. "Changed" compares
//! the file's bytes with those the tab last read or wrote (a fingerprint
//! of them): modification times count whole seconds, and a change within
//! the second a file was opened would go unseen.

use leptos::prelude::*;
use sprites_wire::client;
use wasm_bindgen::prelude::*;

use super::Ws;
use crate::{api, js};

#[derive(Clone, PartialEq, Eq)]
struct Tab {
    path: String,
    /// A fingerprint of the file's bytes when it was read or last saved.
    base: u64,
    dirty: bool,
    /// It changed on disk since then.
    stale: bool,
    /// A restore brought the file back to this checkpoint while the tab
    /// had unsaved changes: the person chooses which to keep.
    restored: Option<String>,
}

/// A fingerprint of a file's bytes (FNV-1a): equal bytes, equal prints.
fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The fingerprint of the file on the sprite now (`None` when it is gone).
/// Whether it is there is asked of its folder first: a file removed on
/// the sprite is an ordinary answer, not a failed request.
async fn on_disk(ws: Ws, path: &str) -> api::Result<Option<u64>> {
    let folder = super::watch::parent(path);
    let name = path.rsplit('/').next().unwrap_or_default();
    match api::run(client::list_files(&ws.name.get_value(), folder)).await {
        Ok(l) if l.entries.iter().any(|e| e.name == name) => {}
        Ok(_) => return Ok(None),
        Err(e) if e.status == 404 => return Ok(None),
        Err(e) => return Err(e),
    }
    match api::get_bytes(&ws.file_url(path)).await {
        Ok(b) => Ok(Some(fingerprint(&b))),
        Err(e) if e.status == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// The editor's tabs and what acts on them; a copyable handle, so the
/// pane, its effects and its parts share one.
#[derive(Clone, Copy)]
struct Tabs {
    ws: Ws,
    tabs: RwSignal<Vec<Tab>>,
    active: RwSignal<Option<String>>,
    loading: RwSignal<bool>,
    saving: RwSignal<bool>,
    editor: StoredValue<Option<js::Editor>, LocalStorage>,
}

impl Tabs {
    fn new(ws: Ws) -> Tabs {
        Tabs {
            ws,
            tabs: RwSignal::new(Vec::new()),
            active: RwSignal::new(None),
            loading: RwSignal::new(true),
            saving: RwSignal::new(false),
            editor: StoredValue::new_local(None),
        }
    }

    /// Runs `f` on Monaco, once it is loaded.
    fn with_editor(self, f: impl FnOnce(&js::Editor)) {
        self.editor.with_value(|e| {
            if let Some(e) = e {
                f(e)
            }
        });
    }

    /// Changes the tab of `path`, if it is open.
    fn update(self, path: &str, f: impl FnOnce(&mut Tab)) {
        self.tabs.update(|ts| {
            if let Some(t) = ts.iter_mut().find(|t| t.path == path) {
                f(t)
            }
        });
    }

    fn get(self, path: &str) -> Option<Tab> {
        self.tabs
            .get_untracked()
            .into_iter()
            .find(|t| t.path == path)
    }

    /// The tab shown now.
    fn current(self) -> Option<Tab> {
        let a = self.active.get()?;
        self.tabs.get().into_iter().find(|t| t.path == a)
    }

    /// Saves the tab of `path`; unless `force`, not over a file that
    /// changed on the sprite since the tab read it (the tab says so).
    fn save(self, path: String, force: bool) {
        let mut text = None;
        self.with_editor(|e| text = Some(e.value(&path)));
        let (Some(text), Some(tab)) = (text, self.get(&path)) else {
            return;
        };
        let (ws, saving) = (self.ws, self.saving);
        saving.set(true);
        leptos::task::spawn_local(async move {
            if !force {
                match on_disk(ws, &path).await {
                    Ok(Some(now)) if now != tab.base => {
                        self.update(&path, |t| t.stale = true);
                        saving.set(false);
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        ws.fail(e);
                        saving.set(false);
                        return;
                    }
                }
            }
            match ws.write_file(&path, text.as_bytes()).await {
                Ok(_) => {
                    let now = fingerprint(text.as_bytes());
                    self.update(&path, |t| {
                        t.dirty = false;
                        t.stale = false;
                        t.base = now;
                    });
                    ws.saved.update(|n| *n += 1);
                }
                Err(e) => ws.fail(e),
            }
            saving.set(false);
        });
    }

    /// Opens `path`: a new tab, or the one it already has.
    fn open(self, path: String) {
        if self.get(&path).is_some() {
            self.switch(path);
            return;
        }
        let ws = self.ws;
        leptos::task::spawn_local(async move {
            let bytes = match api::get_bytes(&ws.file_url(&path)).await {
                Ok(b) => b,
                Err(e) => return ws.fail(e),
            };
            let Ok(text) = String::from_utf8(bytes) else {
                ws.error.set(Some(format!(
                    "{path} is not a text file; download it from the file tree instead."
                )));
                return;
            };
            let base = fingerprint(text.as_bytes());
            self.with_editor(|e| e.open(&path, &text));
            self.tabs.update(|ts| {
                ts.push(Tab {
                    path: path.clone(),
                    base,
                    dirty: false,
                    stale: false,
                    restored: None,
                })
            });
            self.active.set(Some(path));
        });
    }

    fn switch(self, path: String) {
        self.with_editor(|e| e.open(&path, ""));
        self.active.set(Some(path));
    }

    /// Closes the tab of `path` (asking first when it has unsaved changes).
    fn close(self, path: String) {
        let dirty = self.get(&path).is_some_and(|t| t.dirty);
        if dirty && !crate::pages::confirm(&format!("{path} has unsaved changes. Close it anyway?"))
        {
            return;
        }
        self.with_editor(|e| e.close(&path));
        self.tabs.update(|ts| ts.retain(|t| t.path != path));
        if self.active.get_untracked().as_deref() == Some(&path) {
            let next = self.tabs.get_untracked().last().map(|t| t.path.clone());
            if let Some(n) = &next {
                self.switch(n.clone());
            }
            self.active.set(next);
        }
        if self.ws.open.get_untracked().as_deref() == Some(&path) {
            self.ws.open.set(None);
        }
    }

    /// The tree renamed `from` to `to`, or deleted it (`None`): tabs under
    /// it move along, or close (an unsaved one stays, to be saved again
    /// where it was).
    fn moved(self, from: &str, to: Option<&str>) {
        let under = |p: &str| p == from || p.starts_with(&format!("{from}/"));
        for tab in self
            .tabs
            .get_untracked()
            .into_iter()
            .filter(|t| under(&t.path))
        {
            match to {
                Some(to) => {
                    let new_path = format!("{to}{}", &tab.path[from.len()..]);
                    self.with_editor(|e| e.rename(&tab.path, &new_path));
                    self.update(&tab.path, |t| t.path = new_path.clone());
                    if self.active.get_untracked().as_deref() == Some(&tab.path) {
                        self.active.set(Some(new_path));
                    }
                }
                // Not dirty, so closing asks nothing.
                None if !tab.dirty => self.close(tab.path.clone()),
                None => {}
            }
        }
    }

    /// Loads `path` again from the sprite, dropping what the tab had.
    fn reload(self, path: String) {
        let ws = self.ws;
        leptos::task::spawn_local(async move {
            match api::get_bytes(&ws.file_url(&path)).await {
                Ok(bytes) => {
                    let base = fingerprint(&bytes);
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    self.with_editor(|e| e.replace(&path, &text));
                    self.update(&path, |t| {
                        t.dirty = false;
                        t.stale = false;
                        t.restored = None;
                        t.base = base;
                    });
                }
                Err(e) => ws.fail(e),
            }
        });
    }

    /// Every tab asks whether its file changed on the sprite.
    fn look_again(self) {
        for tab in self.tabs.get_untracked() {
            leptos::task::spawn_local(async move {
                let Ok(now) = on_disk(self.ws, &tab.path).await else {
                    return;
                };
                // A save of this page changes the file too: what counts is
                // what the tab knows after it, not before. (The answer may
                // come after the workspace was left: then nothing is there.)
                if self.saving.try_get_untracked().unwrap_or(true) {
                    return;
                }
                let differs = |t: &Tab| t.path == tab.path && now != Some(t.base) && !t.stale;
                if self
                    .tabs
                    .try_with_untracked(|ts| ts.iter().any(differs))
                    .unwrap_or(false)
                {
                    self.tabs.update(|ts| {
                        if let Some(t) = ts.iter_mut().find(|t| differs(t)) {
                            t.stale = true;
                        }
                    });
                }
            });
        }
    }

    /// A restore to `checkpoint`: a tab whose file it changed shows what
    /// came back, and one with unsaved changes asks, naming the checkpoint;
    /// a file the restore removed closes its tab (an unsaved one stays).
    fn restored(self, checkpoint: &str) {
        for tab in self.tabs.get_untracked() {
            let checkpoint = checkpoint.to_string();
            leptos::task::spawn_local(async move {
                let Ok(now) = on_disk(self.ws, &tab.path).await else {
                    return;
                };
                if now == Some(tab.base) {
                    return;
                }
                let dirty = self
                    .tabs
                    .try_with_untracked(|ts| ts.iter().any(|t| t.path == tab.path && t.dirty))
                    .unwrap_or(false);
                if dirty {
                    self.update(&tab.path, |t| {
                        t.restored = Some(checkpoint);
                        t.stale = false;
                    });
                } else if now.is_none() {
                    self.close(tab.path);
                } else {
                    self.reload(tab.path);
                }
            });
        }
    }

    /// "Keep my changes" after a restore: the next save writes them over
    /// what the restore brought back, without asking again.
    fn keep_mine(self, path: String) {
        leptos::task::spawn_local(async move {
            let Ok(now) = on_disk(self.ws, &path).await else {
                return;
            };
            self.update(&path, |t| {
                t.restored = None;
                t.stale = false;
                t.base = now.unwrap_or_default();
            });
        });
    }
}

/// What Monaco calls back: a save, and a change of a tab's text. Kept for
/// as long as the editor lives.
type Callbacks =
    StoredValue<Option<(Closure<dyn FnMut(String)>, Closure<dyn FnMut(String)>)>, LocalStorage>;

/// Loads Monaco into `el`, wired to save and to mark tabs unsaved.
fn start_monaco(tabs: Tabs, el: web_sys::HtmlDivElement, callbacks: Callbacks) {
    let ws = tabs.ws;
    leptos::task::spawn_local(async move {
        let monaco = match js::load_monaco().await {
            Ok(m) => m,
            Err(_) => {
                ws.error.set(Some(
                    "The editor could not be loaded. Reload the page to try again.".into(),
                ));
                return;
            }
        };
        let on_save = Closure::<dyn FnMut(String)>::new(move |path: String| tabs.save(path, false));
        let on_change = Closure::<dyn FnMut(String)>::new(move |path: String| {
            tabs.tabs.update(|ts| {
                if let Some(t) = ts.iter_mut().find(|t| t.path == path && !t.dirty) {
                    t.dirty = true;
                }
            })
        });
        let e = js::Editor::new(&el, &monaco, &on_save, &on_change);
        tabs.editor.set_value(Some(e));
        callbacks.set_value(Some((on_save, on_change)));
        tabs.loading.set(false);
        // A file asked for while the editor loaded.
        if let Some(p) = ws.open.try_get_untracked().flatten() {
            ws.open.set(Some(p));
        }
    });
}

/// Keeps the tabs in step with the workspace: files it asks to open, the
/// files it watches, changes on the sprite, renames in the tree, restores.
fn follow_workspace(tabs: Tabs) {
    let ws = tabs.ws;
    Effect::new(move |_| {
        let Some(path) = ws.open.get() else { return };
        if !tabs.loading.get_untracked() {
            tabs.open(path);
        }
    });
    // The files the workspace watches: those open here.
    Effect::new(move |_| {
        let open: Vec<String> = tabs
            .tabs
            .with(|ts| ts.iter().map(|t| t.path.clone()).collect());
        if ws.open_files.with_untracked(|o| *o != open) {
            ws.open_files.set(open);
        }
    });
    // Files restored or changed elsewhere (or the person comes back from
    // another window, maybe another editor): open tabs look again.
    let look_again = RwSignal::new(0u32);
    // A change on the sprite to an open file: its tab looks again.
    let seen = StoredValue::new(ws.changes.tick.get_untracked());
    Effect::new(move |_| {
        ws.changes.tick.track();
        let (changes, now) = ws.changes.since(seen.get_value());
        seen.set_value(now);
        let open = tabs.tabs.with_untracked(|ts| {
            changes
                .iter()
                .any(|c| c.event != "chmod" && ts.iter().any(|t| t.path == c.path))
        });
        if open {
            look_again.update(|n| *n += 1);
        }
    });
    let focus = window_event_listener(leptos::ev::focus, move |_| look_again.update(|n| *n += 1));
    on_cleanup(move || focus.remove());
    Effect::new(move |prev: Option<()>| {
        ws.files_changed.track();
        look_again.track();
        if prev.is_some() {
            tabs.look_again();
        }
    });
    Effect::new(move |_| {
        if let Some((from, to)) = ws.moved.get() {
            tabs.moved(&from, to.as_deref());
        }
    });
    Effect::new(move |_| {
        if let Some(restore) = ws.restored.get() {
            tabs.restored(&restore.checkpoint);
        }
    });
}

#[component]
pub fn EditorPane() -> impl IntoView {
    let tabs = Tabs::new(expect_context::<Ws>());
    let host: NodeRef<leptos::html::Div> = NodeRef::new();
    let callbacks = StoredValue::new_local(None);
    // Monaco loads once the pane is in the page.
    Effect::new(move |_| {
        if let Some(el) = host.get() {
            start_monaco(tabs, el, callbacks);
        }
    });
    on_cleanup(move || {
        tabs.editor.update_value(|e| {
            if let Some(e) = e.take() {
                e.dispose();
            }
        });
        callbacks.set_value(None);
    });
    follow_workspace(tabs);
    let (loading, list) = (tabs.loading, tabs.tabs);
    view! {
        <TabBar tabs=tabs />
        <Warnings tabs=tabs />
        <Show when=move || loading.get()>
            <p class="loading">"Loading the editor…"</p>
        </Show>
        <Show when=move || !loading.get() && list.get().is_empty()>
            <p class="hint">"Open a file from the tree on the left, or make a new one with “+ File”."</p>
        </Show>
        <div class="monaco" node_ref=host class:hidden=move || list.get().is_empty()></div>
    }
}

/// A tab per open file (a dot on unsaved ones), and Save.
#[component]
fn TabBar(tabs: Tabs) -> impl IntoView {
    let (active, saving) = (tabs.active, tabs.saving);
    view! {
        <div class="tabs files" role="toolbar" aria-label="Open files">
            <For
                each=move || tabs.tabs.get()
                key=|t| (t.path.clone(), t.dirty)
                children=move |t| {
                    let path = t.path.clone();
                    let name = path.rsplit('/').next().unwrap_or("").to_string();
                    let p1 = path.clone();
                    let p2 = path.clone();
                    let p3 = path.clone();
                    let p4 = path.clone();
                    view! {
                        <span
                            class="tab"
                            class:active=move || active.get().as_deref() == Some(&p3)
                            class:dirty=t.dirty
                            title=path.clone()
                        >
                            <button
                                class="link"
                                aria-pressed=move || (active.get().as_deref() == Some(&p4)).to_string()
                                on:click=move |_| tabs.switch(p1.clone())
                            >
                                {name}
                                {t.dirty.then(|| view! { <span class="dot" aria-label="unsaved">" ●"</span> })}
                            </button>
                            <button
                                class="link close"
                                aria-label=format!("Close {path}")
                                on:click=move |_| tabs.close(p2.clone())
                            >
                                "×"
                            </button>
                        </span>
                    }
                }
            />
            <span class="spacer"></span>
            {move || {
                tabs.current()
                    .map(|t| {
                        let p = t.path.clone();
                        view! {
                            <button
                                class="primary small"
                                disabled=move || saving.get()
                                title="Save (Ctrl+S)"
                                on:click=move |_| tabs.save(p.clone(), false)
                            >
                                {move || if saving.get() { "Saving…" } else { "Save" }}
                            </button>
                        }
                    })
            }}
        </div>
    }
}

/// What the shown tab must decide: a restore over unsaved changes, or a
/// file that changed on the sprite since it was read.
#[component]
fn Warnings(tabs: Tabs) -> impl IntoView {
    view! {
        {move || {
            tabs.current()
                .and_then(|t| t.restored.clone().map(|c| (t.path, c)))
                .map(|(path, checkpoint)| {
                    let (p1, p2) = (path.clone(), path.clone());
                    view! {
                        <div class="warning" role="alert">
                            {format!(
                                "A restore brought {path} back to checkpoint {checkpoint}; your unsaved changes are not in it."
                            )}
                            <button on:click=move |_| tabs.reload(p1.clone())>
                                {format!("Load it as in {checkpoint}")}
                            </button>
                            <button on:click=move |_| tabs.keep_mine(p2.clone())>"Keep my changes"</button>
                        </div>
                    }
                })
        }}
        {move || {
            tabs.current()
                .filter(|t| t.stale && t.restored.is_none())
                .map(|t| {
                    let (p1, p2) = (t.path.clone(), t.path.clone());
                    view! {
                        <div class="warning" role="alert">
                            {format!("{} changed on the sprite since you opened it.", t.path)}
                            <button on:click=move |_| tabs.reload(p1.clone())>"Load the new version"</button>
                            <button on:click=move |_| tabs.save(p2.clone(), true)>"Keep mine and save"</button>
                        </div>
                    }
                })
        }}
    }
}
