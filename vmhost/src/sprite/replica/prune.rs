//! prune and forget: what the bucket lets go of.
//!
//! [`Host::prune`] deletes a sprite's checkpoints the bucket no longer needs
//! to keep: it keeps every checkpoint the sprite lists, the last one
//! shipped, and hidden ones younger than the host's retention, with every
//! checkpoint any of those was sent against (a stream is received only on
//! top of its parent). A checkpoint goes manifest first, so a crash midway
//! leaves segments no manifest names, never a manifest naming missing
//! segments; `meta/replica.json` drops it once all of it is gone.
//!
//! A destroyed sprite's objects go by [`Host::forget_destroyed`]: destroy
//! notes the sprite's place in the bucket in `forget/` (from the trash,
//! which start-up empties the same way, so a crash loses no note), and the
//! replicator then stores a tombstone there, deletes everything else and
//! the tombstone last. Recovery skips a place with a tombstone: a sprite
//! destroyed never comes back, however far its deletion went.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sprites_wire::{CheckpointId, SpriteName};

use super::{sprite_prefix, ReplicaState};
use crate::error::{Error, Result};
use crate::failpoint::step;
use crate::record;
use crate::sprite::{recorded_ids, Host, Paths, SpriteRecord, HIDDEN_BASE};

/// The object a destroyed sprite's place holds while it is being emptied.
pub(crate) const TOMBSTONE: &str = "destroyed";

/// A destroyed sprite whose objects are still in the bucket (`forget/*.json`).
#[derive(Debug, Serialize, Deserialize)]
struct Forget {
    /// Its place: `sprites/<instance>/<sprite>/<born>/`.
    prefix: String,
    /// The bucket it was shipped to (see [`super::Bucket::label`]).
    bucket: String,
}

impl Host {
    /// Deletes from the bucket the checkpoints of `name` it no longer needs
    /// to keep (see the module); returns them.
    pub async fn prune(&self, name: &SpriteName) -> Result<Vec<CheckpointId>> {
        let bucket = self.bucket()?;
        let _one = self.replica_lock(name).await;
        self.unfenced(name)?;
        let (paths, rec) = self.load(name)?;
        let label = bucket.label().await?;
        let state = ReplicaState::read_for(&paths, Some(&label))?;
        // Only once the stored record no longer lists what goes: recovery
        // must not look for a checkpoint it cannot find.
        if state.record_digest.as_deref() != Some(self.stored_record(name)?.1.as_str()) {
            return Ok(Vec::new());
        }
        let listed = recorded_ids(&paths)?;
        let doomed = doomed(
            &state,
            &listed,
            crate::now_ms(),
            self.cfg.retention.as_millis() as u64,
        );
        let prefix = sprite_prefix(&self.cfg.instance, name.as_str(), rec.created_at);
        for id in &doomed {
            // Fenced meanwhile: these may be another host's now.
            self.unfenced(name)?;
            let dir = format!("{prefix}{id}/");
            bucket.delete(&format!("{dir}manifest")).await?;
            step("prune.manifest");
            for key in bucket.list(&dir).await? {
                bucket.delete(&key).await?;
            }
            // Under the sprite's lock, as it stands now (a fetch may have
            // brought its disk back meanwhile).
            let _guard = self.lock(name).await;
            let mut now = ReplicaState::read(&paths)?;
            now.shipped.remove(&id.0);
            now.write(&paths)?;
        }
        Ok(doomed)
    }

    /// Empties the bucket of the sprites destroyed here (see the module);
    /// returns how many.
    pub async fn forget_destroyed(&self) -> Result<usize> {
        let bucket = self.bucket()?;
        let dir = self.dir.join("forget");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::path("cannot list", &dir, e)),
        };
        let label = bucket.label().await?;
        let mut done = 0;
        for e in entries {
            let path = e.map_err(|e| Error::path("cannot list", &dir, e))?.path();
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            if file.starts_with('.') || !file.ends_with(".json") {
                continue; // a note being written
            }
            let Some(forget) = record::read::<Forget>(&path)? else {
                continue;
            };
            if forget.bucket != label {
                tracing::warn!(
                    place = forget.prefix,
                    bucket = forget.bucket,
                    "a destroyed sprite's objects are in another object store: left there"
                );
                record::remove(&path)?;
                continue;
            }
            let tombstone = format!("{}{TOMBSTONE}", forget.prefix);
            bucket.put(&tombstone, Vec::new()).await?;
            step("forget.tombstone");
            for key in bucket.list(&forget.prefix).await? {
                if key != tombstone {
                    bucket.delete(&key).await?;
                }
            }
            bucket.delete(&tombstone).await?;
            record::remove(&path)?;
            done += 1;
        }
        Ok(done)
    }

    /// Notes, for [`Host::forget_destroyed`], the bucket's copy of the
    /// sprite whose directory is now `trashed`, if it has one.
    pub(crate) fn note_forget(&self, trashed: &Path) -> Result<()> {
        let paths = Paths::new(trashed.to_path_buf());
        let (Some(rec), Ok(state)) = (
            record::read::<SpriteRecord>(&paths.record)?,
            ReplicaState::read(&paths),
        ) else {
            return Ok(());
        };
        let Some(bucket) = state.bucket else {
            return Ok(()); // never shipped
        };
        let dir = self.dir.join("forget");
        std::fs::create_dir_all(&dir).map_err(|e| Error::path("cannot create", &dir, e))?;
        let forget = Forget {
            prefix: sprite_prefix(&self.cfg.instance, &rec.name, rec.created_at),
            bucket,
        };
        record::write(
            &dir.join(format!("{}.{}.json", rec.name, rec.created_at)),
            &forget,
        )
    }
}

/// The shipped checkpoints the bucket need not keep, oldest first: not
/// `listed` by the sprite, not the last shipped, not hidden and younger
/// than `retention_ms`, and sent against by none of those. None when a
/// kept one's parent is not known (shipped before parents were recorded).
fn doomed(
    state: &ReplicaState,
    listed: &[CheckpointId],
    now: u64,
    retention_ms: u64,
) -> Vec<CheckpointId> {
    let last = state.last().map(|(id, _)| id.0);
    let mut keep: BTreeSet<u32> = state
        .shipped
        .iter()
        .filter(|(id, s)| {
            listed.contains(&CheckpointId(**id))
                || Some(**id) == last
                || (**id >= HIDDEN_BASE && s.at.saturating_add(retention_ms) > now)
        })
        .map(|(id, _)| *id)
        .collect();
    let mut todo: Vec<u32> = keep.iter().copied().collect();
    while let Some(id) = todo.pop() {
        let s = state.shipped[&id];
        let Some(p) = s.after else {
            if s.depth > 1 {
                return Vec::new();
            }
            continue;
        };
        if state.shipped.contains_key(&p.0) && keep.insert(p.0) {
            todo.push(p.0);
        }
    }
    let mut out: Vec<(u64, CheckpointId)> = state
        .shipped
        .iter()
        .filter(|(id, _)| !keep.contains(id))
        .map(|(id, s)| (s.seq, CheckpointId(*id)))
        .collect();
    out.sort();
    out.into_iter().map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sprite::replica::Shipped;

    const H: u32 = HIDDEN_BASE;

    /// A state of checkpoints shipped in this order: (id, after, age in ms).
    fn state(chain: &[(u32, Option<u32>, u64)]) -> ReplicaState {
        let mut state = ReplicaState::default();
        for (seq, (id, after, age)) in chain.iter().enumerate() {
            let depth = after.map_or(1, |p| state.shipped[&p].depth + 1);
            state.shipped.insert(
                *id,
                Shipped {
                    seq: seq as u64,
                    at: 1_000_000 - age,
                    bytes: 1,
                    depth,
                    after: after.map(CheckpointId),
                },
            );
        }
        state
    }

    fn ids(v: &[u32]) -> Vec<CheckpointId> {
        v.iter().copied().map(CheckpointId).collect()
    }

    #[test]
    fn a_chain_goes_only_once_nothing_kept_stands_on_it() {
        // v0 <- h0 <- h1, then h2 sent against the image again, h3 on it.
        let s = state(&[
            (0, None, 900),
            (H, Some(0), 800),
            (H + 1, Some(H), 700),
            (H + 2, None, 600),
            (H + 3, Some(H + 2), 500),
        ]);
        // v0 listed: its chain stays only for itself; the hidden ones past
        // retention go, but h2, under the last (h3).
        assert_eq!(doomed(&s, &ids(&[0]), 1_000_000, 100), ids(&[H, H + 1]));
        // v0 deleted by its sprite: it goes too.
        assert_eq!(doomed(&s, &[], 1_000_000, 100), ids(&[0, H, H + 1]));
        // Young enough, h1 keeps h0 and v0 with it.
        assert_eq!(doomed(&s, &[], 1_000_000, 750), Vec::<CheckpointId>::new());
    }

    #[test]
    fn the_last_shipped_and_what_it_stands_on_always_stay() {
        let s = state(&[(0, None, 900), (H, Some(0), 800), (H + 1, Some(H), 700)]);
        assert!(doomed(&s, &[], 1_000_000, 0).is_empty());
    }

    #[test]
    fn an_unknown_parent_keeps_everything() {
        let mut s = state(&[(0, None, 900), (H, Some(0), 800), (H + 1, None, 700)]);
        s.shipped.get_mut(&(H + 1)).unwrap().depth = 3;
        assert!(doomed(&s, &[], 1_000_000, 0).is_empty());
    }
}
