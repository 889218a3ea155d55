//! Choosing a checkpoint of a sprite, as the new-sprite form, the form
//! that publishes an assignment and the history all do.

use leptos::prelude::*;
use sprites_wire::client;

use super::ago;
use crate::api;

/// Keeps `checkpoints` the list of the sprite named by `from` (empty for
/// none), resetting the chosen `checkpoint` (to the newest, with
/// `pick_newest`) whenever the sprite changes.
pub fn follow(
    from: RwSignal<String>,
    checkpoints: RwSignal<Vec<api::Checkpoint>>,
    checkpoint: RwSignal<String>,
    error: RwSignal<Option<String>>,
    pick_newest: bool,
) {
    Effect::new(move |_| {
        let source = from.get();
        checkpoints.set(vec![]);
        checkpoint.set(String::new());
        if source.is_empty() {
            return;
        }
        leptos::task::spawn_local(async move {
            match api::run(client::checkpoints(&source)).await {
                Ok(list) => {
                    if pick_newest {
                        if let Some(first) = list.first() {
                            checkpoint.set(first.id.clone());
                        }
                    }
                    checkpoints.set(list);
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    });
}

/// "v3 · before the upgrade · 5 minutes ago".
pub fn label(c: &api::Checkpoint) -> String {
    let mut label = c.id.clone();
    if c.auto {
        label.push_str(" · automatic");
    }
    if !c.comment.is_empty() {
        label.push_str(" · ");
        label.push_str(&c.comment);
    }
    let when = ago(&c.create_time);
    if !when.is_empty() {
        label.push_str(" · ");
        label.push_str(&when);
    }
    label
}
