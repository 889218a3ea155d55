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

#[component]
pub fn EditorPane() -> impl IntoView {
    let ws = expect_context::<Ws>();
    let tabs = RwSignal::new(Vec::<Tab>::new());
    let active = RwSignal::new(None::<String>);
    let loading = RwSignal::new(true);
    let saving = RwSignal::new(false);
    let host: NodeRef<leptos::html::Div> = NodeRef::new();
    let editor = StoredValue::new_local(None::<js::Editor>);
    let callbacks =
        StoredValue::new_local(None::<(Closure<dyn FnMut(String)>, Closure<dyn FnMut(String)>)>);

    let save = move |path: String, force: bool| {
        let text = editor.with_value(|e| e.as_ref().map(|e| e.value(&path)));
        let Some(text) = text else { return };
        let Some(tab) = tabs.get_untracked().into_iter().find(|t| t.path == path) else {
            return;
        };
        saving.set(true);
        leptos::task::spawn_local(async move {
            if !force {
                match on_disk(ws, &path).await {
                    Ok(Some(now)) if now != tab.base => {
                        tabs.update(|ts| {
                            if let Some(t) = ts.iter_mut().find(|t| t.path == path) {
                                t.stale = true;
                            }
                        });
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
                    tabs.update(|ts| {
                        if let Some(t) = ts.iter_mut().find(|t| t.path == path) {
                            t.dirty = false;
                            t.stale = false;
                            t.base = now;
                        }
                    });
                    ws.saved.update(|n| *n += 1);
                }
                Err(e) => ws.fail(e),
            }
            saving.set(false);
        });
    };

    // Monaco loads once the pane is in the page.
    Effect::new(move |_| {
        let Some(el) = host.get() else { return };
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
            let on_save = Closure::<dyn FnMut(String)>::new(move |path: String| save(path, false));
            let on_change = Closure::<dyn FnMut(String)>::new(move |path: String| {
                tabs.update(|ts| {
                    if let Some(t) = ts.iter_mut().find(|t| t.path == path && !t.dirty) {
                        t.dirty = true;
                    }
                })
            });
            let e = js::Editor::new(&el, &monaco, &on_save, &on_change);
            editor.set_value(Some(e));
            callbacks.set_value(Some((on_save, on_change)));
            loading.set(false);
            // A file asked for while the editor loaded.
            if let Some(p) = ws.open.try_get_untracked().flatten() {
                ws.open.set(Some(p));
            }
        });
    });
    on_cleanup(move || {
        editor.update_value(|e| {
            if let Some(e) = e.take() {
                e.dispose();
            }
        });
        callbacks.set_value(None);
    });

    // Opening a file: a new tab, or the one it already has.
    Effect::new(move |_| {
        let Some(path) = ws.open.get() else { return };
        if loading.get_untracked() {
            return;
        }
        if tabs.get_untracked().iter().any(|t| t.path == path) {
            editor.with_value(|e| {
                if let Some(e) = e {
                    e.open(&path, "");
                }
            });
            active.set(Some(path));
            return;
        }
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
            editor.with_value(|e| {
                if let Some(e) = e {
                    e.open(&path, &text);
                }
            });
            tabs.update(|ts| {
                ts.push(Tab {
                    path: path.clone(),
                    base,
                    dirty: false,
                    stale: false,
                    restored: None,
                })
            });
            active.set(Some(path));
        });
    });

    // The files the workspace watches: those open here.
    Effect::new(move |_| {
        let open: Vec<String> = tabs.with(|ts| ts.iter().map(|t| t.path.clone()).collect());
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
        let open = tabs.with_untracked(|ts| {
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
        if prev.is_none() {
            return;
        }
        for tab in tabs.get_untracked() {
            leptos::task::spawn_local(async move {
                let Ok(now) = on_disk(ws, &tab.path).await else {
                    return;
                };
                // A save of this page changes the file too: what counts is
                // what the tab knows after it, not before. (The answer may
                // come after the workspace was left: then nothing is there.)
                if saving.try_get_untracked().unwrap_or(true) {
                    return;
                }
                let differs = |t: &Tab| t.path == tab.path && now != Some(t.base) && !t.stale;
                if tabs
                    .try_with_untracked(|ts| ts.iter().any(differs))
                    .unwrap_or(false)
                {
                    tabs.update(|ts| {
                        if let Some(t) = ts.iter_mut().find(|t| differs(t)) {
                            t.stale = true;
                        }
                    });
                }
            });
        }
    });

    let switch = move |path: String| {
        editor.with_value(|e| {
            if let Some(e) = e {
                e.open(&path, "");
            }
        });
        active.set(Some(path));
    };
    let close = move |path: String| {
        let tab = tabs.get_untracked().into_iter().find(|t| t.path == path);
        if tab.is_some_and(|t| t.dirty) {
            let ok = web_sys::window()
                .unwrap()
                .confirm_with_message(&format!("{path} has unsaved changes. Close it anyway?"))
                .unwrap_or(false);
            if !ok {
                return;
            }
        }
        editor.with_value(|e| {
            if let Some(e) = e {
                e.close(&path);
            }
        });
        tabs.update(|ts| ts.retain(|t| t.path != path));
        if active.get_untracked().as_deref() == Some(&path) {
            let next = tabs.get_untracked().last().map(|t| t.path.clone());
            if let Some(n) = &next {
                switch(n.clone());
            }
            active.set(next);
        }
        if ws.open.get_untracked().as_deref() == Some(&path) {
            ws.open.set(None);
        }
    };
    // The tree renamed or deleted a path: tabs under it move along, or
    // close (an unsaved one stays, to be saved again where it was).
    Effect::new(move |_| {
        let Some((from, to)) = ws.moved.get() else {
            return;
        };
        let under = |p: &str| p == from || p.starts_with(&format!("{from}/"));
        for tab in tabs.get_untracked().into_iter().filter(|t| under(&t.path)) {
            match &to {
                Some(to) => {
                    let new_path = format!("{to}{}", &tab.path[from.len()..]);
                    editor.with_value(|e| {
                        if let Some(e) = e {
                            e.rename(&tab.path, &new_path);
                        }
                    });
                    tabs.update(|ts| {
                        if let Some(t) = ts.iter_mut().find(|t| t.path == tab.path) {
                            t.path = new_path.clone();
                        }
                    });
                    if active.get_untracked().as_deref() == Some(&tab.path) {
                        active.set(Some(new_path));
                    }
                }
                // Not dirty, so closing asks nothing.
                None if !tab.dirty => close(tab.path.clone()),
                None => {}
            }
        }
    });

    let reload = move |path: String| {
        leptos::task::spawn_local(async move {
            let bytes = api::get_bytes(&ws.file_url(&path)).await;
            match bytes {
                Ok(bytes) => {
                    let base = fingerprint(&bytes);
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    editor.with_value(|e| {
                        if let Some(e) = e {
                            e.replace(&path, &text);
                        }
                    });
                    tabs.update(|ts| {
                        if let Some(t) = ts.iter_mut().find(|t| t.path == path) {
                            t.dirty = false;
                            t.stale = false;
                            t.restored = None;
                            t.base = base;
                        }
                    });
                }
                Err(e) => ws.fail(e),
            }
        });
    };
    // A restore: a tab whose file it changed shows what came back, and one
    // with unsaved changes asks, naming the checkpoint; a file the restore
    // removed closes its tab (an unsaved one stays, to be saved again).
    Effect::new(move |_| {
        let Some(restore) = ws.restored.get() else {
            return;
        };
        for tab in tabs.get_untracked() {
            let checkpoint = restore.checkpoint.clone();
            leptos::task::spawn_local(async move {
                let Ok(now) = on_disk(ws, &tab.path).await else {
                    return;
                };
                if now == Some(tab.base) {
                    return;
                }
                let dirty = tabs
                    .try_with_untracked(|ts| ts.iter().any(|t| t.path == tab.path && t.dirty))
                    .unwrap_or(false);
                if dirty {
                    tabs.update(|ts| {
                        if let Some(t) = ts.iter_mut().find(|t| t.path == tab.path) {
                            t.restored = Some(checkpoint);
                            t.stale = false;
                        }
                    });
                } else if now.is_none() {
                    close(tab.path);
                } else {
                    reload(tab.path);
                }
            });
        }
    });
    // "Keep my changes" after a restore: the next save writes them over
    // what the restore brought back, without asking again.
    let keep_mine = move |path: String| {
        leptos::task::spawn_local(async move {
            let Ok(now) = on_disk(ws, &path).await else {
                return;
            };
            tabs.update(|ts| {
                if let Some(t) = ts.iter_mut().find(|t| t.path == path) {
                    t.restored = None;
                    t.stale = false;
                    t.base = now.unwrap_or_default();
                }
            });
        });
    };
    let current = move || {
        let a = active.get()?;
        tabs.get().into_iter().find(|t| t.path == a)
    };

    view! {
        <div class="tabs files" role="toolbar" aria-label="Open files">
            <For
                each=move || tabs.get()
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
                                on:click=move |_| switch(p1.clone())
                            >
                                {name}
                                {t.dirty.then(|| view! { <span class="dot" aria-label="unsaved">" ●"</span> })}
                            </button>
                            <button
                                class="link close"
                                aria-label=format!("Close {path}")
                                on:click=move |_| close(p2.clone())
                            >
                                "×"
                            </button>
                        </span>
                    }
                }
            />
            <span class="spacer"></span>
            {move || {
                current()
                    .map(|t| {
                        let p = t.path.clone();
                        view! {
                            <button
                                class="primary small"
                                disabled=move || saving.get()
                                title="Save (Ctrl+S)"
                                on:click=move |_| save(p.clone(), false)
                            >
                                {move || if saving.get() { "Saving…" } else { "Save" }}
                            </button>
                        }
                    })
            }}
        </div>
        {move || {
            current()
                .and_then(|t| t.restored.clone().map(|c| (t.path, c)))
                .map(|(path, checkpoint)| {
                    let (p1, p2) = (path.clone(), path.clone());
                    view! {
                        <div class="warning" role="alert">
                            {format!(
                                "A restore brought {path} back to checkpoint {checkpoint}; your unsaved changes are not in it."
                            )}
                            <button on:click=move |_| reload(p1.clone())>
                                {format!("Load it as in {checkpoint}")}
                            </button>
                            <button on:click=move |_| keep_mine(p2.clone())>"Keep my changes"</button>
                        </div>
                    }
                })
        }}
        {move || {
            current()
                .filter(|t| t.stale && t.restored.is_none())
                .map(|t| {
                    let (p1, p2) = (t.path.clone(), t.path.clone());
                    view! {
                        <div class="warning" role="alert">
                            {format!("{} changed on the sprite since you opened it.", t.path)}
                            <button on:click=move |_| reload(p1.clone())>"Load the new version"</button>
                            <button on:click=move |_| save(p2.clone(), true)>"Keep mine and save"</button>
                        </div>
                    }
                })
        }}
        <Show when=move || loading.get()>
            <p class="loading">"Loading the editor…"</p>
        </Show>
        <Show when=move || !loading.get() && tabs.get().is_empty()>
            <p class="hint">"Open a file from the tree on the left, or make a new one with “+ File”."</p>
        </Show>
        <div class="monaco" node_ref=host class:hidden=move || tabs.get().is_empty()></div>
    }
}
