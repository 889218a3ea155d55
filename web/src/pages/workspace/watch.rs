//! The workspace's live view of the sprite's files: one `fs/watch`
//! WebSocket, subscribed to the file tree's folder (and everything below
//! it) and to the files open in the editor, subscribed again when either
//! changes, reconnected when it drops. Changes go into a short queue with
//! sequence numbers; the tree's folders and the editor's tabs each read
//! what is new to them.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use sprites_wire::fs::{WatchMessage, WatchRequest};
use wasm_bindgen::prelude::*;

use super::terminal::{after, wire_socket};
use super::Ws;

/// One change on the sprite's disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub seq: u64,
    pub path: String,
    /// `write`, `create`, `remove`, `rename` or `chmod`.
    pub event: String,
}

/// Changes kept for readers that have not looked yet.
const KEPT: usize = 500;

/// The queue the panes read: `tick` moves on with every change.
#[derive(Clone, Copy)]
pub struct Changes {
    pub tick: RwSignal<u64>,
    queue: StoredValue<Vec<Change>, LocalStorage>,
}

impl Changes {
    pub fn new() -> Changes {
        Changes {
            tick: RwSignal::new(0),
            queue: StoredValue::new_local(Vec::new()),
        }
    }

    fn push(&self, path: String, event: String) {
        let seq = self.tick.get_untracked() + 1;
        self.queue.update_value(|q| {
            q.push(Change { seq, path, event });
            if q.len() > KEPT {
                q.drain(..q.len() - KEPT);
            }
        });
        self.tick.set(seq);
    }

    /// The changes after `seen`, and the sequence number to remember.
    pub fn since(&self, seen: u64) -> (Vec<Change>, u64) {
        let now = self.tick.get_untracked();
        let list = self
            .queue
            .with_value(|q| q.iter().filter(|c| c.seq > seen).cloned().collect());
        (list, now)
    }
}

/// The folder an entry is in.
pub fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((p, _)) => p,
    }
}

struct Conn {
    socket: Option<web_sys::WebSocket>,
    closed: bool,
    retries: u32,
    handlers: Vec<Box<dyn std::any::Any>>,
}

fn subscription(ws: &Ws) -> String {
    let mut paths = vec![ws.tree_root.get_untracked()];
    paths.extend(ws.open_files.get_untracked());
    let req = WatchRequest::Subscribe {
        paths,
        recursive: true,
        working_dir: None,
    };
    serde_json::to_string(&req).unwrap_or_default()
}

fn connect(ws: Ws, conn: Rc<RefCell<Conn>>) {
    let Ok(socket) = web_sys::WebSocket::new(&super::terminal::ws_url(&ws.path("/fs/watch")))
    else {
        return;
    };
    let c2 = conn.clone();
    let on_open = Closure::<dyn FnMut()>::new(move || {
        let mut c = c2.borrow_mut();
        c.retries = 0;
        if let Some(s) = &c.socket {
            let _ = s.send_with_str(&subscription(&ws));
        }
    });
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            let Some(text) = ev.data().as_string() else {
                return;
            };
            if let Ok(WatchMessage::Event { path, event, .. }) = serde_json::from_str(&text) {
                ws.changes.push(path, event);
            }
        });
    let c2 = conn.clone();
    let on_close = Closure::<dyn FnMut(web_sys::CloseEvent)>::new(move |_| {
        let retry = {
            let mut c = c2.borrow_mut();
            c.socket = None;
            c.retries += 1;
            // A sprite that is gone is not watched again.
            (!c.closed && !ws.missing.get_untracked()).then_some(c.retries)
        };
        let Some(n) = retry else { return };
        let c3 = c2.clone();
        after((500 * 2u32.pow(n.min(4))).min(8000), move || {
            if !c3.borrow().closed {
                // Whatever changed while away: the panes look again.
                ws.files_changed.update(|n| *n += 1);
                connect(ws, c3);
            }
        });
    });
    let handlers = wire_socket(&socket, on_open, on_message, on_close);
    let mut c = conn.borrow_mut();
    c.socket = Some(socket);
    c.handlers = handlers;
}

/// Keeps the workspace's watch open while it is on screen (call it from
/// the workspace's own scope: it closes when that goes).
pub fn follow(ws: Ws) {
    let conn = Rc::new(RefCell::new(Conn {
        socket: None,
        closed: false,
        retries: 0,
        handlers: vec![],
    }));
    // Once the sprite is known to exist (no failed connection to one that
    // is not there), and only once.
    let started = StoredValue::new(false);
    let c1 = StoredValue::new_local(conn.clone());
    Effect::new(move |_| {
        if ws.sprite.with(Option::is_some) && !started.get_value() {
            started.set_value(true);
            c1.with_value(|c| connect(ws, c.clone()));
        }
    });
    // The tree moved to another folder, or a file opened or closed.
    let c2 = StoredValue::new_local(conn.clone());
    Effect::new(move |prev: Option<()>| {
        ws.tree_root.track();
        ws.open_files.track();
        if prev.is_none() {
            return;
        }
        c2.with_value(|c| {
            if let Some(s) = &c.borrow().socket {
                if s.ready_state() == web_sys::WebSocket::OPEN {
                    let _ = s.send_with_str(&subscription(&ws));
                }
            }
        });
    });
    let kept = StoredValue::new_local(Some(conn));
    on_cleanup(move || {
        kept.update_value(|c| {
            if let Some(c) = c.take() {
                let mut c = c.borrow_mut();
                c.closed = true;
                if let Some(s) = c.socket.take() {
                    let _ = s.close();
                }
            }
        })
    });
}
