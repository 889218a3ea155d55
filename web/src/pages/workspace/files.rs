//! The file tree: browse folders as they open, create, rename, delete,
//! upload and download files.

use leptos::prelude::*;
use sprites_wire::client;
use sprites_wire::fs::{Mkdir, Move};
use wasm_bindgen_futures::JsFuture;

use super::Ws;
use crate::api;

/// Where the tree starts: the sprite's home.
const HOME: &str = "/root";

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn parent(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((p, _)) => p.into(),
    }
}

/// Makes what `what` names, called `name`, in `dir` (a rename: of the
/// path it names, in its folder).
async fn make(ws: Ws, what: Naming, dir: String, name: String) -> api::Result<()> {
    let sprite = ws.name.get_value();
    match what {
        Naming::File => {
            let path = join(&dir, &name);
            ws.write_file(&path, b"").await?;
            ws.open.set(Some(path));
        }
        Naming::Folder => {
            let req = Mkdir {
                path: join(&dir, &name),
                working_dir: None,
                parents: true,
            };
            api::done(client::mkdir(&sprite, &req)).await?;
        }
        Naming::Rename(from) => {
            let to = join(&parent(&from), &name);
            let req = Move {
                source: from.clone(),
                dest: to.clone(),
                working_dir: None,
                recursive: None,
                preserve_attrs: None,
            };
            api::done(client::rename(&sprite, &req)).await?;
            ws.moved.set(Some((from, Some(to))));
        }
    }
    Ok(())
}

/// Deletes `path` (a folder with everything in it), once the person said so.
fn delete(ws: Ws, path: String, is_dir: bool, selected: RwSignal<Option<(String, bool)>>) {
    let what = if is_dir {
        "folder and everything in it"
    } else {
        "file"
    };
    if !crate::pages::confirm(&format!("Delete the {what} {path}?")) {
        return;
    }
    leptos::task::spawn_local(async move {
        match api::done(client::delete_file(&ws.name.get_value(), &path, true)).await {
            Ok(()) => {
                selected.set(None);
                ws.moved.set(Some((path, None)));
                ws.files_changed.update(|n| *n += 1);
            }
            Err(e) => ws.fail(e),
        }
    });
}

/// Writes the files picked in `input` into `dir`.
fn upload(ws: Ws, input: web_sys::HtmlInputElement, dir: String) {
    let Some(files) = input.files() else { return };
    let picked: Vec<web_sys::File> = (0..files.length()).filter_map(|i| files.get(i)).collect();
    input.set_value("");
    leptos::task::spawn_local(async move {
        for f in picked {
            let Ok(buf) = JsFuture::from(f.array_buffer()).await else {
                continue;
            };
            let bytes = js_sys::Uint8Array::new(&buf).to_vec();
            let path = join(&dir, &f.name());
            if let Err(e) = ws.write_file(&path, &bytes).await {
                ws.fail(e);
            }
        }
        ws.files_changed.update(|n| *n += 1);
    });
}

#[component]
pub fn FileTree() -> impl IntoView {
    let ws = expect_context::<Ws>();
    // Shared: the workspace watches this folder and all below it.
    let root = ws.tree_root;
    let root_input = RwSignal::new(HOME.to_string());
    // The folder new files go to: the selected one, else the root.
    let selected = RwSignal::new(None::<(String, bool)>);
    // Open folders, by path: kept here so a reload of the listings (after
    // any change) does not fold the tree up again.
    let expanded = RwSignal::new(std::collections::HashSet::<String>::new());
    let naming = RwSignal::new(None::<Naming>);
    let new_name = RwSignal::new(String::new());
    let finish = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(what) = naming.get_untracked() else {
            return;
        };
        let name = new_name.get_untracked().trim().to_string();
        if name.is_empty() || name.contains('/') {
            ws.error
                .set(Some("A name cannot be empty or hold a “/”.".into()));
            return;
        }
        naming.set(None);
        let dir = target_dir(root, selected);
        let renames = matches!(what, Naming::Rename(_));
        leptos::task::spawn_local(async move {
            match make(ws, what, dir, name).await {
                Ok(()) => {
                    if renames {
                        selected.set(None);
                    }
                    ws.files_changed.update(|n| *n += 1)
                }
                Err(e) => ws.fail(e),
            }
        });
    };

    view! {
        <div class="tree">
            <form
                class="tree-root"
                on:submit=move |ev: leptos::ev::SubmitEvent| {
                    ev.prevent_default();
                    let r = root_input.get_untracked();
                    root.set(if r.starts_with('/') { r } else { format!("/{r}") });
                    selected.set(None);
                }
            >
                <label>
                    <span class="sr-only">"Folder"</span>
                    <input aria-label="Folder shown" bind:value=root_input />
                </label>
            </form>
            <TreeActions selected=selected naming=naming new_name=new_name />
            {move || {
                naming
                    .get()
                    .map(|what| {
                        let label = match what {
                            Naming::File => "New file name",
                            Naming::Folder => "New folder name",
                            Naming::Rename(_) => "New name",
                        };
                        view! {
                            <form class="naming" on:submit=finish>
                                <input aria-label=label placeholder=label autofocus bind:value=new_name />
                                <button type="submit">"OK"</button>
                                <button type="button" on:click=move |_| naming.set(None)>
                                    "Cancel"
                                </button>
                            </form>
                        }
                    })
            }}
            <ul class="tree-list" role="tree">
                {move || {
                    let r = root.get();
                    view! { <Dir path=r depth=0 selected=selected expanded=expanded /> }
                }}
            </ul>
        </div>
    }
}

/// The folder new files go to: the selected one (a file's folder), else
/// the tree's root.
fn target_dir(root: RwSignal<String>, selected: RwSignal<Option<(String, bool)>>) -> String {
    match selected.get_untracked() {
        Some((p, true)) => p,
        Some((p, false)) => parent(&p),
        None => root.get_untracked(),
    }
}

/// New file, new folder, rename, delete, upload and download.
#[component]
fn TreeActions(
    selected: RwSignal<Option<(String, bool)>>,
    naming: RwSignal<Option<Naming>>,
    new_name: RwSignal<String>,
) -> impl IntoView {
    let ws = expect_context::<Ws>();
    let upload_input: NodeRef<leptos::html::Input> = NodeRef::new();
    let start = move |what: Naming| {
        new_name.set(match &what {
            Naming::Rename(p) => p.rsplit('/').next().unwrap_or("").to_string(),
            _ => String::new(),
        });
        naming.set(Some(what));
    };
    let on_delete = move |_| {
        if let Some((path, is_dir)) = selected.get_untracked() {
            delete(ws, path, is_dir, selected);
        }
    };
    let on_upload = move |_| {
        if let Some(input) = upload_input.get_untracked() {
            upload(ws, input, target_dir(ws.tree_root, selected));
        }
    };
    let download_href = move || {
        selected
            .get()
            .filter(|(_, dir)| !dir)
            .map(|(p, _)| ws.file_url(&p))
    };
    let download_name = move || {
        selected
            .get()
            .map(|(p, _)| p.rsplit('/').next().unwrap_or("file").to_string())
            .unwrap_or_default()
    };
    view! {
        <div class="tree-actions" role="toolbar" aria-label="Files">
            <button title="New file" on:click=move |_| start(Naming::File)>"+ File"</button>
            <button title="New folder" on:click=move |_| start(Naming::Folder)>"+ Folder"</button>
            <button
                title="Rename"
                disabled=move || selected.get().is_none()
                on:click=move |_| {
                    if let Some((p, _)) = selected.get_untracked() {
                        start(Naming::Rename(p))
                    }
                }
            >
                "Rename"
            </button>
            <button title="Delete" disabled=move || selected.get().is_none() on:click=on_delete>
                "Delete"
            </button>
            <label class="button" title="Upload files">
                "Upload"
                <input
                    class="sr-only"
                    type="file"
                    multiple
                    node_ref=upload_input
                    on:change=on_upload
                />
            </label>
            {move || {
                download_href()
                    .map(|href| {
                        view! {
                            <a class="button" href=href download=download_name()>
                                "Download"
                            </a>
                        }
                    })
            }}
        </div>
    }
}

#[derive(Clone, PartialEq, Eq)]
enum Naming {
    File,
    Folder,
    Rename(String),
}

/// The entries of one folder, loaded when it opens and again whenever
/// files change.
#[component]
fn Dir(
    path: String,
    depth: usize,
    selected: RwSignal<Option<(String, bool)>>,
    expanded: RwSignal<std::collections::HashSet<String>>,
) -> impl IntoView {
    let ws = expect_context::<Ws>();
    let entries = RwSignal::new(None::<Result<Vec<api::FileEntry>, String>>);
    let path = StoredValue::new(path);
    // An entry made, removed or renamed in this folder, on the sprite
    // (from its terminal, a program, or anyone): the listing looks again.
    let moved_here = RwSignal::new(0u32);
    let seen = StoredValue::new(ws.changes.tick.get_untracked());
    Effect::new(move |_| {
        ws.changes.tick.track();
        let (changes, now) = ws.changes.since(seen.get_value());
        seen.set_value(now);
        let here = path.get_value();
        if changes.iter().any(|c| {
            c.event != "write" && c.event != "chmod" && super::watch::parent(&c.path) == here
        }) {
            moved_here.update(|n| *n += 1);
        }
    });
    Effect::new(move |_| {
        ws.files_changed.track();
        ws.restored.track();
        moved_here.track();
        let p = path.get_value();
        leptos::task::spawn_local(async move {
            let r = api::run(client::list_files(&ws.name.get_value(), &p)).await;
            entries.set(Some(
                r.map(|l| {
                    let mut v = l.entries;
                    v.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then(a.name.cmp(&b.name)));
                    v
                })
                .map_err(|e| e.message),
            ));
        });
    });
    move || {
        match entries.get() {
        // Items of the tree too, which nobody can open.
        None => view! {
            <li role="treeitem" aria-disabled="true" class="muted" style=indent(depth)>"…"</li>
        }
        .into_any(),
        Some(Err(e)) => view! {
            <li role="treeitem" aria-disabled="true" class="error" style=indent(depth)>{e}</li>
        }
        .into_any(),
        Some(Ok(list)) if list.is_empty() => view! {
            <li role="treeitem" aria-disabled="true" class="muted" style=indent(depth)>"(empty)"</li>
        }
        .into_any(),
        Some(Ok(list)) => list
            .into_iter()
            .map(|e| view! { <Node entry=e depth=depth selected=selected expanded=expanded /> })
            .collect_view()
            .into_any(),
    }
    }
}

fn indent(depth: usize) -> String {
    format!("padding-left: {}rem", 0.5 + depth as f64 * 0.9)
}

#[component]
fn Node(
    entry: api::FileEntry,
    depth: usize,
    selected: RwSignal<Option<(String, bool)>>,
    expanded: RwSignal<std::collections::HashSet<String>>,
) -> impl IntoView {
    let ws = expect_context::<Ws>();
    let path = entry.path.clone();
    let open = {
        let path = path.clone();
        Signal::derive(move || expanded.with(|e| e.contains(&path)))
    };
    let is_dir = entry.is_dir;
    let is_selected = {
        let path = path.clone();
        move || selected.get().is_some_and(|(p, _)| p == path)
    };
    let activate = {
        let path = path.clone();
        move || {
            selected.set(Some((path.clone(), is_dir)));
            if is_dir {
                expanded.update(|e| {
                    if !e.remove(&path) {
                        e.insert(path.clone());
                    }
                });
            } else {
                ws.open.set(Some(path.clone()));
            }
        }
    };
    let on_click = {
        let activate = activate.clone();
        move |_| activate()
    };
    let on_key = move |ev: web_sys::KeyboardEvent| {
        if ev.key() == "Enter" || ev.key() == " " {
            ev.prevent_default();
            activate();
        }
    };
    let child_path = path.clone();
    view! {
        <li
            role="treeitem"
            tabindex="0"
            class="node"
            class:dir=is_dir
            class:selected=is_selected
            aria-expanded=move || is_dir.then(|| open.get().to_string())
            data-path=path.clone()
            style=indent(depth)
            on:click=on_click
            on:keydown=on_key
            title=path.clone()
        >
            <span class="icon" aria-hidden="true">
                {move || if !is_dir { "·" } else if open.get() { "▾" } else { "▸" }}
            </span>
            {entry.name.clone()}
        </li>
        <Show when=move || is_dir && open.get()>
            <Dir path=child_path.clone() depth=depth + 1 selected=selected expanded=expanded />
        </Show>
    }
}
