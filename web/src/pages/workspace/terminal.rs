//! Terminals: each tab is a PTY session of the sprite over the exec
//! WebSocket. Sessions outlive the page: this browser remembers the
//! sessions its tabs had open in the sprite and attaches them again when
//! the workspace opens (a new shell only when none still runs), the list
//! shows every running one to attach or end, and a dropped connection
//! re-attaches by itself, the server replaying the screen.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use sprites_wire::api::{ExecMessage, KillSession};
use sprites_wire::client;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::Ws;
use crate::{api, js};

/// One terminal tab.
#[derive(Clone, PartialEq, Eq)]
struct TabInfo {
    /// Local key of the tab.
    key: u32,
    /// `None`: start a new shell; `Some`: attach to that session.
    attach: Option<String>,
}

/// Where this browser keeps the sessions a workspace's tabs had open: by
/// the sprite's id, which no other sprite of any organization has.
fn memory_key(sprite_id: &str) -> String {
    format!("sprites.terminals.{sprite_id}")
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn remembered(key: &str) -> Vec<String> {
    storage()
        .and_then(|s| s.get_item(key).ok().flatten())
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default()
}

fn remember(key: &str, ids: &[String]) {
    if let Some(s) = storage() {
        let _ = match ids {
            [] => s.remove_item(key),
            ids => s.set_item(key, &serde_json::to_string(ids).unwrap_or_default()),
        };
    }
}

/// When a session started, as a clock time and how long ago.
fn started(created: &str) -> String {
    let at = js_sys::Date::new(&created.into());
    if at.get_time().is_nan() {
        return String::new();
    }
    let clock: String = at
        .to_locale_time_string_with_options(
            "default",
            &js_options(&[("hour", "2-digit"), ("minute", "2-digit")]),
        )
        .into();
    format!("started {clock} ({})", crate::pages::ago(created))
}

/// A JavaScript options object of string values.
fn js_options(pairs: &[(&str, &str)]) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in pairs {
        let _ = js_sys::Reflect::set(&o, &(*k).into(), &(*v).into());
    }
    o.into()
}

/// The terminal tabs of the workspace and what they show, shared by its
/// parts: a tab has a key of this page; once its session has started,
/// `titles` names its id and title.
#[derive(Clone, Copy)]
struct TermTabs {
    ws: Ws,
    tabs: RwSignal<Vec<TabInfo>>,
    titles: RwSignal<std::collections::HashMap<u32, (String, String)>>,
    active: RwSignal<u32>,
    next_key: StoredValue<u32>,
    /// Where this browser remembers the tabs' sessions.
    memory: StoredValue<String>,
    /// Filled once the sessions this browser had open here are known.
    opened: RwSignal<bool>,
}

impl TermTabs {
    fn new(ws: Ws) -> TermTabs {
        // The workspace shows its terminals once it knows the sprite.
        let sprite_id = ws
            .sprite
            .with_untracked(|s| s.as_ref().map(|s| s.id.clone()))
            .unwrap_or_else(|| ws.name.get_value());
        TermTabs {
            ws,
            tabs: RwSignal::new(Vec::new()),
            titles: RwSignal::new(Default::default()),
            active: RwSignal::new(0),
            next_key: StoredValue::new(0),
            memory: StoredValue::new(memory_key(&sprite_id)),
            opened: RwSignal::new(false),
        }
    }

    /// A new tab: a new shell, or session `attach`.
    fn add(self, attach: Option<String>) {
        let key = self.next_key.get_value();
        self.next_key.set_value(key + 1);
        self.tabs.update(|t| t.push(TabInfo { key, attach }));
        self.active.set(key);
    }

    /// Closes tab `key` (its session goes on running).
    fn close(self, key: u32) {
        self.tabs.update(|t| t.retain(|t| t.key != key));
        self.titles.update(|m| {
            m.remove(&key);
        });
        if self.active.get_untracked() == key {
            if let Some(t) = self.tabs.get_untracked().last() {
                self.active.set(t.key);
            }
        }
    }

    /// Opening the workspace: the sessions this browser's tabs had here
    /// that still run come back in their tabs; a new shell only if none
    /// does. Then the tabs' sessions are remembered as they change.
    fn reopen(self) {
        let ws = self.ws;
        leptos::task::spawn_local(async move {
            let mine = remembered(&self.memory.get_value());
            let running = match mine.is_empty() {
                true => vec![],
                false => api::run(client::exec_sessions(&ws.name.get_value()))
                    .await
                    .map(|l| l.sessions)
                    .unwrap_or_default(),
            };
            let alive: Vec<String> = mine
                .into_iter()
                .filter(|id| running.iter().any(|s| &s.id == id && s.is_active && s.tty))
                .collect();
            if alive.is_empty() {
                self.add(None);
            }
            for id in alive {
                self.add(Some(id));
            }
            self.opened.set(true);
        });
        Effect::new(move |_| {
            let names = self.titles.get();
            if !self.opened.get() {
                return;
            }
            let ids: Vec<String> = self
                .tabs
                .get()
                .iter()
                .filter_map(|t| names.get(&t.key).map(|(id, _)| id.clone()))
                .collect();
            remember(&self.memory.get_value(), &ids);
        });
    }

    /// Who else is attached to the session on screen, looked up every few
    /// seconds (people sharing a sprite type in the same terminal).
    fn follow_others(self, others: RwSignal<Vec<String>>) {
        let me = expect_context::<crate::Session>()
            .profile()
            .map(|p| p.handle)
            .unwrap_or_default();
        let look = move || {
            let me = me.clone();
            // Read now, while the workspace is surely there: the task runs
            // later, maybe after it was left.
            let session = self
                .active
                .try_get_untracked()
                .and_then(|a| self.titles.try_with_untracked(|t| t.get(&a).cloned()))
                .flatten();
            let ws = self.ws;
            leptos::task::spawn_local(async move {
                let Some((id, _)) = session else {
                    others.set(vec![]);
                    return;
                };
                if let Ok(l) = api::run(client::exec_sessions(&ws.name.get_value())).await {
                    let here = l
                        .sessions
                        .into_iter()
                        .find(|s| s.id == id)
                        .map(|s| s.attached)
                        .unwrap_or_default();
                    others.set(here.into_iter().filter(|h| *h != me).collect());
                }
            });
        };
        if let Ok(handle) = set_interval_with_handle(look, std::time::Duration::from_secs(3)) {
            on_cleanup(move || handle.clear());
        }
    }
}

/// `open` turns false on Escape and on a pointer down outside `popover`
/// and `button`.
fn dismissed_outside(
    open: RwSignal<bool>,
    button: NodeRef<leptos::html::Button>,
    popover: NodeRef<leptos::html::Div>,
) {
    let escape = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Escape" && open.get_untracked() {
            open.set(false);
        }
    });
    let outside = window_event_listener(leptos::ev::pointerdown, move |ev| {
        if !open.get_untracked() {
            return;
        }
        let target = ev.target().and_then(|t| t.dyn_into::<web_sys::Node>().ok());
        let inside = |el: Option<web_sys::Element>| {
            el.zip(target.as_ref())
                .is_some_and(|(el, t)| el.contains(Some(t)))
        };
        let on_button = inside(button.get_untracked().map(Into::into));
        if !inside(popover.get_untracked().map(Into::into)) && !on_button {
            open.set(false);
        }
    });
    on_cleanup(move || {
        escape.remove();
        outside.remove();
    });
}

#[component]
pub fn Terminals() -> impl IntoView {
    let ws = expect_context::<Ws>();
    let t = TermTabs::new(ws);
    t.reopen();
    let sessions = RwSignal::new(None::<Vec<api::Session>>);
    let show_sessions = RwSignal::new(false);
    let list_sessions = move || {
        leptos::task::spawn_local(async move {
            match api::run(client::exec_sessions(&ws.name.get_value())).await {
                Ok(l) => sessions.set(Some(l.sessions)),
                Err(e) => ws.fail(e),
            }
        });
    };
    let others = RwSignal::new(Vec::<String>::new());
    t.follow_others(others);
    // The popover closes with Escape and with a click anywhere outside it.
    let sessions_button: NodeRef<leptos::html::Button> = NodeRef::new();
    let popover: NodeRef<leptos::html::Div> = NodeRef::new();
    dismissed_outside(show_sessions, sessions_button, popover);
    provide_context(SessionActions {
        show: Callback::new(move |key: u32| {
            show_sessions.set(false);
            t.active.set(key);
        }),
        attach: Callback::new(move |id: String| {
            show_sessions.set(false);
            t.add(Some(id));
        }),
        ended: Callback::new(move |()| list_sessions()),
    });
    let (tabs, titles, active) = (t.tabs, t.titles, t.active);
    view! {
        <div class="tabs terms" role="toolbar" aria-label="Terminals">
            <For
                each=move || tabs.get()
                key=|t| t.key
                children=move |tab| {
                    let key = tab.key;
                    view! {
                        <span class="tab" class:active=move || active.get() == key>
                            <button
                                class="link"
                                aria-pressed=move || (active.get() == key).to_string()
                                on:click=move |_| active.set(key)
                            >
                                {move || {
                                    titles
                                        .get()
                                        .get(&key)
                                        .map(|(_, title)| title.clone())
                                        .unwrap_or_else(|| "Terminal".into())
                                }}
                            </button>
                            <button
                                class="link close"
                                title="Close the tab (the session goes on running)"
                                aria-label="Close terminal tab"
                                on:click=move |_| t.close(key)
                            >
                                "×"
                            </button>
                        </span>
                    }
                }
            />
            <button class="small" title="New terminal" on:click=move |_| t.add(None)>
                "+ Terminal"
            </button>
            <button
                class="small"
                title="Sessions still running in the sprite"
                aria-expanded=move || show_sessions.get().to_string()
                node_ref=sessions_button
                on:click=move |_| {
                    show_sessions.update(|s| *s = !*s);
                    // Never a list from an earlier look while the new one loads.
                    sessions.set(None);
                    list_sessions();
                }
            >
                "Sessions"
            </button>
            {move || {
                let o = others.get();
                (!o.is_empty())
                    .then(|| {
                        view! {
                            <span class="presence" data-presence=o.join(",") title="Also attached to this terminal">
                                {format!("Also here: {}", o.join(", "))}
                            </span>
                        }
                    })
            }}
        </div>
        <Show when=move || show_sessions.get()>
            <div class="sessions" role="dialog" aria-label="Running sessions" node_ref=popover>
                <RunningSessions sessions=sessions titles=titles />
            </div>
        </Show>
        <div class="term-stack">
            <For
                each=move || tabs.get()
                key=|t| t.key
                children=move |tab| {
                    let key = tab.key;
                    view! {
                        <TermView
                            attach=tab.attach.clone()
                            visible=Signal::derive(move || active.get() == key)
                            on_session=move |(id, title): (String, String)| titles.update(|m| {
                                m.insert(key, (id, title));
                            })
                        />
                    }
                }
            />
        </div>
    }
}

/// The terminal sessions running in the sprite: those not on this page
/// first, newest first.
#[component]
fn RunningSessions(
    sessions: RwSignal<Option<Vec<api::Session>>>,
    titles: RwSignal<std::collections::HashMap<u32, (String, String)>>,
) -> impl IntoView {
    move || match sessions.get() {
        None => view! { <p class="loading">"Loading…"</p> }.into_any(),
        Some(list) => {
            // Tabs of this page by session, to show instead of attach.
            let here: std::collections::HashMap<String, u32> = titles
                .get()
                .into_iter()
                .map(|(key, (id, _))| (id, key))
                .collect();
            let mut running: Vec<_> = list.into_iter().filter(|s| s.is_active && s.tty).collect();
            running.sort_by(|a, b| {
                here.contains_key(&a.id)
                    .cmp(&here.contains_key(&b.id))
                    .then(b.created.cmp(&a.created))
            });
            if running.is_empty() {
                view! { <p class="muted">"No terminal session is running."</p> }.into_any()
            } else {
                view! {
                    <ul class="session-list">
                        {running
                            .into_iter()
                            .map(|s| {
                                let tab = here.get(&s.id).copied();
                                view! { <SessionRow session=s tab=tab /> }
                            })
                            .collect_view()}
                    </ul>
                }
                .into_any()
            }
        }
    }
}

/// What a row of the session list can do to the terminals.
#[derive(Clone, Copy)]
struct SessionActions {
    /// Shows the tab with this key.
    show: Callback<u32>,
    /// Opens a tab attached to this session.
    attach: Callback<String>,
    /// A session was ended: the list looks again.
    ended: Callback<()>,
}

/// One running session: its command, when it started, who is attached;
/// attach to it (or show its tab, when it has one here), or end it.
#[component]
fn SessionRow(session: api::Session, tab: Option<u32>) -> impl IntoView {
    let ws = expect_context::<Ws>();
    let actions = expect_context::<SessionActions>();
    let id = session.id.clone();
    let who = if session.attached.is_empty() {
        match session.clients {
            0 => "nobody attached".to_string(),
            n => format!("{n} attached"),
        }
    } else {
        format!("attached: {}", session.attached.join(", "))
    };
    let end = {
        let (id, command) = (id.clone(), session.command.clone());
        move |_| {
            if !crate::pages::confirm(&format!(
                "End the session running “{command}”? Its programs stop."
            )) {
                return;
            }
            let id = id.clone();
            leptos::task::spawn_local(async move {
                let req = KillSession {
                    signal: Some("HUP".into()),
                    timeout: Some("3s".into()),
                };
                match api::progress(client::kill_session(&ws.name.get_value(), &id, &req)).await {
                    Ok(_) => actions.ended.run(()),
                    Err(e) => ws.fail(e),
                }
            });
        }
    };
    view! {
        <li class="session" data-session-id=id.clone()>
            <span class="what">
                <code>{session.command.clone()}</code>
                <span class="muted">{format!(" · {} · {who}", started(&session.created))}</span>
                {tab.is_some().then(|| view! { <span class="badge">"in a tab here"</span> })}
            </span>
            {match tab {
                Some(key) => view! {
                    <button class="small" on:click=move |_| actions.show.run(key)>"Show"</button>
                }.into_any(),
                None => {
                    let id = id.clone();
                    view! {
                        <button class="small" data-session=id.clone() on:click=move |_| actions.attach.run(id.clone())>
                            "Attach"
                        </button>
                    }.into_any()
                }
            }}
            <button class="small danger" data-end-session=id.clone() on:click=end>"End"</button>
        </li>
    }
}

/// What one terminal keeps between its callbacks.
struct Conn {
    term: js::Term,
    socket: Option<web_sys::WebSocket>,
    session: Option<String>,
    exited: bool,
    closed: bool,
    retries: u32,
    /// The terminal's own callbacks, for its whole life.
    term_handlers: Vec<Box<dyn std::any::Any>>,
    /// The current socket's callbacks, replaced on every reconnect.
    socket_handlers: Vec<Box<dyn std::any::Any>>,
}

/// The WebSocket address of an API path on the app's own origin.
pub(super) fn ws_url(path: &str) -> String {
    let loc = web_sys::window().unwrap().location();
    let scheme = if loc.protocol().unwrap_or_default() == "https:" {
        "wss"
    } else {
        "ws"
    };
    format!("{scheme}://{}{path}", loc.host().unwrap_or_default())
}

/// Gives `socket` its callbacks; they must live as long as it does.
pub(super) fn wire_socket(
    socket: &web_sys::WebSocket,
    on_open: Closure<dyn FnMut()>,
    on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    on_close: Closure<dyn FnMut(web_sys::CloseEvent)>,
) -> Vec<Box<dyn std::any::Any>> {
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    vec![Box::new(on_open), Box::new(on_message), Box::new(on_close)]
}

/// Runs `f` once, `ms` milliseconds from now.
pub(super) fn after(ms: u32, f: impl FnOnce() + 'static) {
    let f = Closure::once_into_js(f);
    let _ = web_sys::window()
        .unwrap()
        .set_timeout_with_callback_and_timeout_and_arguments_0(f.unchecked_ref(), ms as i32);
}

fn send_text(socket: &web_sys::WebSocket, text: &str) {
    if socket.ready_state() == web_sys::WebSocket::OPEN {
        let _ = socket.send_with_str(text);
    }
}

/// Opens (or re-opens) the connection of `conn`: a new shell when it has
/// no session yet, else an attach that replays the screen.
fn connect(ws: Ws, conn: Rc<RefCell<Conn>>, on_session: Callback<(String, String)>) {
    let url = {
        let c = conn.borrow();
        match &c.session {
            Some(id) => ws_url(&ws.path(&format!("/exec/{}", api::enc(id)))),
            None => ws_url(&ws.path(&format!(
                "/exec?cmd=bash&cmd=-l&tty=true&cols={}&rows={}",
                c.term.cols().max(2),
                c.term.rows().max(2)
            ))),
        }
    };
    let socket = match web_sys::WebSocket::new(&url) {
        Ok(s) => s,
        Err(_) => return,
    };
    socket.set_binary_type(web_sys::BinaryType::Arraybuffer);

    let c2 = conn.clone();
    let on_open = Closure::<dyn FnMut()>::new(move || {
        let mut c = c2.borrow_mut();
        c.retries = 0;
        if let Some(s) = &c.socket {
            let size = ExecMessage::Resize {
                rows: c.term.rows(),
                cols: c.term.cols(),
            };
            send_text(s, &size.to_text());
        }
    });
    let c2 = conn.clone();
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            let data = ev.data();
            if let Ok(buf) = data.clone().dyn_into::<js_sys::ArrayBuffer>() {
                c2.borrow().term.write(&js_sys::Uint8Array::new(&buf));
                return;
            }
            let Some(text) = data.as_string() else { return };
            let Ok(message) = serde_json::from_str::<ExecMessage>(&text) else {
                return;
            };
            match message {
                ExecMessage::SessionInfo {
                    session_id: id,
                    command,
                    ..
                } => {
                    let mut c = c2.borrow_mut();
                    c.session = Some(id.clone());
                    drop(c);
                    let short = command.split_whitespace().next().unwrap_or("shell");
                    on_session.run((id.clone(), format!("{short} · {}", &id[..id.len().min(6)])));
                }
                ExecMessage::Exit { exit_code: code } => {
                    let mut c = c2.borrow_mut();
                    c.exited = true;
                    c.term.write_text(&format!(
                        "\r\n\x1b[2m[the session ended with code {code}]\x1b[0m\r\n"
                    ));
                }
                _ => {}
            }
        });
    let c2 = conn.clone();
    let on_close = Closure::<dyn FnMut(web_sys::CloseEvent)>::new(move |_: web_sys::CloseEvent| {
        let retry = {
            let mut c = c2.borrow_mut();
            c.socket = None;
            if c.exited || c.closed {
                None
            } else {
                c.retries += 1;
                c.term
                    .write_text("\r\n\x1b[2m[connection lost, reconnecting…]\x1b[0m");
                Some(c.retries)
            }
        };
        if let Some(n) = retry {
            let c3 = c2.clone();
            let delay = (250 * 2u32.pow(n.min(5))).min(8000);
            let again = move || {
                if c3.borrow().closed {
                    return;
                }
                leptos::task::spawn_local(async move {
                    // A session that is gone (the sprite was restored or
                    // restarted) gives way to a new shell; a live one is
                    // attached again, its screen replayed from the start.
                    let id = c3.borrow().session.clone();
                    if let Some(id) = id {
                        match api::run(client::exec_sessions(&ws.name.get_value())).await {
                            Ok(list)
                                if !list.sessions.iter().any(|s| s.id == id && s.is_active) =>
                            {
                                let c = &mut *c3.borrow_mut();
                                c.session = None;
                                c.term.write_text(
                                    "\r\n\x1b[2m[that session has ended; a new shell starts]\x1b[0m\r\n",
                                );
                            }
                            Ok(_) => c3.borrow().term.reset(),
                            // The server is still out of reach: try again later.
                            Err(_) => {}
                        }
                    }
                    if !c3.borrow().closed {
                        connect(ws, c3, on_session);
                    }
                });
            };
            after(delay, again);
        }
    });
    let handlers = wire_socket(&socket, on_open, on_message, on_close);
    let mut c = conn.borrow_mut();
    c.socket = Some(socket);
    c.socket_handlers = handlers;
}

#[component]
fn TermView(
    attach: Option<String>,
    visible: Signal<bool>,
    #[prop(into)] on_session: Callback<(String, String)>,
) -> impl IntoView {
    let ws = expect_context::<Ws>();
    let host: NodeRef<leptos::html::Div> = NodeRef::new();
    let conn = StoredValue::new_local(None::<Rc<RefCell<Conn>>>);
    Effect::new(move |_| {
        let Some(el) = host.get() else { return };
        if conn.with_value(|c| c.is_some()) {
            return;
        }
        let term = js::Term::new(&el);
        let c = Rc::new(RefCell::new(Conn {
            term,
            socket: None,
            session: attach.clone(),
            exited: false,
            closed: false,
            retries: 0,
            term_handlers: vec![],
            socket_handlers: vec![],
        }));
        let c2 = c.clone();
        let on_data = Closure::<dyn FnMut(String)>::new(move |data: String| {
            if let Some(s) = &c2.borrow().socket {
                if s.ready_state() == web_sys::WebSocket::OPEN {
                    let _ = s.send_with_u8_array(data.as_bytes());
                }
            }
        });
        let c2 = c.clone();
        let on_resize = Closure::<dyn FnMut(u16, u16)>::new(move |cols: u16, rows: u16| {
            if let Some(s) = &c2.borrow().socket {
                send_text(s, &ExecMessage::Resize { rows, cols }.to_text());
            }
        });
        {
            let mut b = c.borrow_mut();
            b.term.on_data(&on_data);
            b.term.on_resize(&on_resize);
            b.term_handlers = vec![Box::new(on_data), Box::new(on_resize)];
        }
        connect(ws, c.clone(), on_session);
        conn.set_value(Some(c));
    });
    // A tab shown again fits its pane and takes the keyboard.
    Effect::new(move |_| {
        if visible.get() {
            conn.with_value(|c| {
                if let Some(c) = c {
                    let c = c.borrow();
                    c.term.refit();
                    c.term.focus();
                }
            });
        }
    });
    on_cleanup(move || {
        conn.update_value(|c| {
            if let Some(c) = c.take() {
                let mut c = c.borrow_mut();
                c.closed = true;
                if let Some(s) = c.socket.take() {
                    let _ = s.close();
                }
                c.term.dispose();
            }
        });
    });
    view! { <div class="term" class:hidden=move || !visible.get() node_ref=host></div> }
}
