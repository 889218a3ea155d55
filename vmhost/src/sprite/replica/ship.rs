//! ship: puts a sprite's new checkpoints into the bucket.
//!
//! For each checkpoint not yet there, oldest first:
//! 1. Choose the parent: the last checkpoint shipped that is still on the
//!    host, else the image the sprite was made from (shipped first, once),
//!    else none (a whole stream).
//! 2. `btrfs send -p <parent> checkpoints/vN`, cut into segments; each is
//!    hashed, sealed and stored (a few at once), and its digest written to
//!    the journal (`meta/shipping.json`) once stored. A segment whose digest
//!    the journal already holds for that place is in the bucket from an
//!    earlier, interrupted attempt and is not stored again.
//! 3. Store the manifest: from now the checkpoint is in the bucket.
//! 4. Record it in `meta/replica.json` and drop the journal.
//!
//! Then hidden checkpoints in the bucket leave the host, but the last
//! shipped (the next is sent against it) and the one the sprite stands on,
//! and the sprite's record is stored with the checkpoints it lists (again
//! whenever that would read differently: a checkpoint deleted, a limit
//! changed).
//!
//! A crash before 3 leaves segments no manifest names (overwritten by the
//! next attempt); a crash between 3 and 4 ships the checkpoint once more
//! under the same keys. Neither loses or corrupts anything.

use std::path::Path;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sprites_wire::{CheckpointId, SpriteName};
use tokio::io::AsyncReadExt;

use super::{
    segment_key, sprite_prefix, Bucket, ImageManifest, Location, Manifest, Parent, ReplicaState,
    Segment, Shipped, StoredRecord, LAYOUT, MAX_DEPTH, SEGMENT,
};
use crate::error::{Error, Result};
use crate::failpoint::step;
use crate::record;
use crate::sprite::{recorded_ids, CheckpointInfo, Host, Paths};

/// What one call of [`Host::ship`] put into the bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipReport {
    pub checkpoints: Vec<CheckpointId>,
    /// Bytes stored (sealed), images included.
    pub bytes: u64,
    /// Segments an earlier, interrupted attempt had stored already.
    pub resumed_segments: usize,
    /// How long the hidden checkpoint [`Host::replicate`] took, if it took one.
    pub checkpoint_took: Option<std::time::Duration>,
    /// Checkpoints the bucket let go of (see [`Host::prune`]).
    pub pruned: Vec<CheckpointId>,
}

/// The journal of a shipment under way.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Journal {
    #[serde(default)]
    checkpoint: Option<CheckpointId>,
    #[serde(default)]
    parent: Option<Parent>,
    /// The bucket the segments went to.
    #[serde(default)]
    bucket: Option<String>,
    /// The segments in the bucket, by place in the stream.
    #[serde(default)]
    stored: std::collections::BTreeMap<usize, Segment>,
}

/// What the streams after a chain's first may add up to whatever that
/// first one weighs: a small sprite writing a little at a time is not sent
/// whole again for it.
const CHAIN_SLACK: u64 = 128 << 20;

/// Segments being stored at once: enough to keep the link busy while the
/// next is read, compressed and sealed.
const IN_FLIGHT: usize = 4;

impl Host {
    /// Ships every checkpoint of `name` not yet in the bucket. Runs beside
    /// the sprite's other verbs (it reads read-only snapshots, and takes
    /// the sprite's lock only to drop hidden checkpoints at the end); a
    /// checkpoint deleted meanwhile is skipped.
    pub async fn ship(&self, name: &SpriteName) -> Result<ShipReport> {
        let bucket = self.bucket()?;
        let _one = self.replica_lock(name).await;
        self.unfenced(name)?;
        let (paths, rec) = self.load(name)?;
        let prefix = sprite_prefix(&self.cfg.instance, name.as_str(), rec.created_at);
        let label = bucket.label().await?;
        let mut state = ReplicaState::read_for(&paths, Some(&label))?;
        if state.location == Location::Bucket {
            return Ok(ShipReport::default()); // evicted meanwhile
        }
        state.bucket = Some(label);
        state.layout = LAYOUT;
        let mut report = ShipReport::default();
        let result = self
            .ship_pending(name, bucket, &prefix, &paths, &mut state, &mut report)
            .await;
        let error = result.as_ref().err().map(|e| e.to_string());
        let changed = state.error != error || !report.checkpoints.is_empty();
        if state.error != error {
            state.error = error;
            state.write(&paths)?;
        }
        if changed {
            self.replica_changed(name);
        }
        result.map(|()| report)
    }

    async fn ship_pending(
        &self,
        name: &SpriteName,
        bucket: &Bucket,
        prefix: &str,
        paths: &Paths,
        state: &mut ReplicaState,
        report: &mut ShipReport,
    ) -> Result<()> {
        for id in recorded_ids(paths)? {
            if state.shipped.contains_key(&id.0) {
                continue;
            }
            let Some(info) = record::read::<CheckpointInfo>(&paths.checkpoint_record(id))? else {
                continue; // deleted meanwhile
            };
            let (parent, depth) = self
                .choose_parent(name, bucket, paths, state, report)
                .await?;
            let dir = format!("{prefix}{id}/");
            let parent_path = match &parent {
                Some(Parent::Checkpoint(p)) => Some(paths.checkpoint(*p)),
                Some(Parent::Image(image)) => Some(self.pool().images_dir().join(image)),
                None => None,
            };
            let to = state.bucket.clone();
            let mut journal = record::read::<Journal>(&paths.shipping)?
                .filter(|j| j.checkpoint == Some(id) && j.parent == parent && j.bucket == to)
                .unwrap_or(Journal {
                    checkpoint: Some(id),
                    parent: parent.clone(),
                    bucket: to,
                    stored: Default::default(),
                });
            let sent = send(
                bucket,
                &paths.checkpoint(id),
                parent_path.as_deref(),
                &dir,
                &mut journal,
                &paths.shipping,
                report,
                &|| self.unfenced(name),
            )
            .await;
            if !paths.checkpoint_record(id).exists() {
                // Deleted while being sent: nothing to ship, and its
                // subvolume (which the send kept) goes now.
                let _ = crate::btrfs::remove_tree(&paths.checkpoint(id));
                continue;
            }
            let segments = sent?;
            let seq = state.next_seq;
            let manifest = Manifest {
                seq,
                checkpoint: info,
                parent,
                segments,
                shipped_at: crate::now_ms(),
                depth,
            };
            // What makes it the sprite's: never from a copy fenced since.
            self.unfenced(name)?;
            let bytes = bucket
                .put(&format!("{dir}manifest"), to_json(&manifest))
                .await?;
            step("ship.manifest");
            report.bytes += bytes;
            state.next_seq = seq + 1;
            state.shipped.insert(
                id.0,
                Shipped {
                    seq,
                    at: manifest.shipped_at,
                    bytes: bytes + manifest.segments.iter().map(|s| s.len).sum::<u64>(),
                    depth,
                    after: match manifest.parent {
                        Some(Parent::Checkpoint(p)) => Some(p),
                        _ => None,
                    },
                },
            );
            state.error = None;
            state.write(paths)?;
            record::remove(&paths.shipping)?;
            report.checkpoints.push(id);
        }
        // Hidden checkpoints now in the bucket leave the host first, so the
        // record lists what the sprite will go on listing.
        self.drop_shipped_hidden(name).await?;
        // The record as of now: its current checkpoint, limits, name, and
        // the checkpoints it lists.
        let (stored, digest) = self.stored_record(name)?;
        if state.record_digest.as_deref() != Some(digest.as_str()) {
            self.unfenced(name)?;
            report.bytes += bucket.put(&format!("{prefix}record"), stored).await?;
            state.record_digest = Some(digest);
            state.write(paths)?;
        }
        Ok(())
    }

    /// The record of `name` as the bucket keeps it, and its digest.
    pub(crate) fn stored_record(&self, name: &SpriteName) -> Result<(Vec<u8>, String)> {
        let (paths, record) = self.load(name)?;
        let stored = to_json(&StoredRecord {
            record,
            checkpoints: recorded_ids(&paths)?,
            next_seq: ReplicaState::read(&paths)?.next_seq,
        });
        let digest = hex::encode(Sha256::digest(&stored));
        Ok((stored, digest))
    }

    /// What the next checkpoint of `name` is sent against (see the
    /// module), and how deep that puts it.
    async fn choose_parent(
        &self,
        name: &SpriteName,
        bucket: &Bucket,
        paths: &Paths,
        state: &ReplicaState,
        report: &mut ShipReport,
    ) -> Result<(Option<Parent>, u32)> {
        let mut shipped: Vec<_> = state.shipped.iter().collect();
        shipped.sort_by_key(|(_, s)| std::cmp::Reverse(s.seq));
        let last_here = shipped.into_iter().find(|(id, _)| {
            let id = CheckpointId(**id);
            paths.checkpoint_record(id).exists() && paths.checkpoint(id).exists()
        });
        if let Some((id, s)) = last_here.filter(|(_, s)| !chain_outgrown(state, s)) {
            return Ok((Some(Parent::Checkpoint(CheckpointId(*id))), s.depth + 1));
        }
        let (_, rec) = self.load(name)?;
        let image = self.pool().images_dir().join(&rec.image);
        if rec.image.is_empty() || !crate::btrfs::is_subvolume(&image).unwrap_or(false) {
            return Ok((None, 0));
        }
        self.ship_image(bucket, &rec.image, report).await?;
        Ok((Some(Parent::Image(rec.image)), 1))
    }

    /// Puts image `image` (`<name>@<hash>`) into the bucket for the other
    /// hosts that share it, unless it is there.
    pub(crate) async fn publish_image(&self, bucket: &Bucket, image: &str) -> Result<()> {
        self.ship_image(bucket, image, &mut ShipReport::default())
            .await
    }

    /// Ships image `image` (`<name>@<hash>`) whole, unless it is in the
    /// bucket already; one at a time, since sprites share images.
    async fn ship_image(
        &self,
        bucket: &Bucket,
        image: &str,
        report: &mut ShipReport,
    ) -> Result<()> {
        let marks = self.image_marks(bucket).await?;
        let mark = marks.join(image);
        if mark.exists() {
            return Ok(());
        }
        let _one = self.image_shipping.lock().await;
        if mark.exists() {
            return Ok(());
        }
        let dir = format!("images/{image}/");
        // Another host's copy is the cluster's: never replaced.
        if bucket.get(&format!("{dir}manifest")).await?.is_some() {
            std::fs::create_dir_all(&marks).map_err(|e| Error::path("cannot create", &marks, e))?;
            std::fs::write(&mark, b"").map_err(|e| Error::path("cannot write", &mark, e))?;
            return Ok(());
        }
        let journal_path = marks.join(format!("{image}.journal"));
        std::fs::create_dir_all(&marks).map_err(|e| Error::path("cannot create", &marks, e))?;
        // Image journals live beside the marks, which are per bucket.
        let mut journal = record::read::<Journal>(&journal_path)?.unwrap_or_default();
        let source = self.pool().images_dir().join(image);
        let segments = send(
            bucket,
            &source,
            None,
            &dir,
            &mut journal,
            &journal_path,
            report,
            &|| Ok(()),
        )
        .await?;
        let manifest = ImageManifest {
            image: image.to_string(),
            segments,
        };
        report.bytes += bucket
            .put(&format!("{dir}manifest"), to_json(&manifest))
            .await?;
        std::fs::write(&mark, b"").map_err(|e| Error::path("cannot write", &mark, e))?;
        record::remove(&journal_path)?;
        Ok(())
    }
}

/// Whether the chain ending at shipped checkpoint `last` is done with: the
/// next is sent against the image again when the chain is [`MAX_DEPTH`]
/// long, or when the streams after its first outweigh that first one and
/// [`CHAIN_SLACK`] (bringing the sprite back would read more than twice
/// what a whole stream holds). A chain whose links are not all known is
/// left as it is.
fn chain_outgrown(state: &ReplicaState, last: &Shipped) -> bool {
    if last.depth >= MAX_DEPTH {
        return true;
    }
    let mut after = 0u64;
    let mut at = *last;
    while let Some(p) = at.after {
        let Some(prev) = state.shipped.get(&p.0) else {
            return false;
        };
        after += at.bytes;
        at = *prev;
    }
    // `at` is the chain's first: sent whole or against the image.
    at.depth <= 1 && after > at.bytes.max(CHAIN_SLACK)
}

/// Streams `btrfs send [-p parent] source` into segments under `dir`,
/// skipping those `journal` (kept at `journal_path`) shows stored already;
/// `allowed` is asked before each segment is stored (a sprite fenced
/// meanwhile stores nothing more).
#[allow(clippy::too_many_arguments)]
async fn send(
    bucket: &Bucket,
    source: &Path,
    parent: Option<&Path>,
    dir: &str,
    journal: &mut Journal,
    journal_path: &Path,
    report: &mut ShipReport,
    allowed: &(dyn Fn() -> Result<()> + Sync),
) -> Result<Vec<Segment>> {
    let mut cmd = tokio::process::Command::new("btrfs");
    cmd.arg("send").arg("-q");
    if let Some(p) = parent {
        cmd.arg("-p").arg(p);
    }
    cmd.arg(source)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Spawn("btrfs send".into(), e.to_string()))?;
    let mut out = child.stdout.take().expect("piped");
    let mut segments = Vec::new();
    let mut storing = futures_util::stream::FuturesUnordered::new();
    loop {
        let mut buf = vec![0u8; SEGMENT];
        let mut filled = 0;
        while filled < SEGMENT {
            let n = out
                .read(&mut buf[filled..])
                .await
                .map_err(|e| Error::io("cannot read btrfs send", e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        buf.truncate(filled);
        let i = segments.len();
        let segment = Segment {
            len: filled as u64,
            sha256: hex::encode(Sha256::digest(&buf)),
        };
        if journal.stored.get(&i) == Some(&segment) {
            report.resumed_segments += 1;
        } else {
            while storing.len() >= IN_FLIGHT {
                stored(storing.next().await, journal, journal_path, report)?;
            }
            allowed()?;
            let key = segment_key(dir, i);
            let done = segment.clone();
            storing.push(async move { bucket.put(&key, buf).await.map(|n| (i, done, n)) });
        }
        segments.push(segment);
        if filled < SEGMENT {
            break;
        }
    }
    while !storing.is_empty() {
        stored(storing.next().await, journal, journal_path, report)?;
    }
    let status = child
        .wait_with_output()
        .await
        .map_err(|e| Error::io("btrfs send", e))?;
    if !status.status.success() {
        return Err(Error::Runtime(format!(
            "btrfs send {}: {}",
            source.display(),
            String::from_utf8_lossy(&status.stderr).trim()
        )));
    }
    Ok(segments)
}

/// Notes a segment stored (or fails with why it was not).
fn stored(
    done: Option<Result<(usize, Segment, u64)>>,
    journal: &mut Journal,
    journal_path: &Path,
    report: &mut ShipReport,
) -> Result<()> {
    let (i, segment, bytes) = done.expect("only awaited while storing")?;
    report.bytes += bytes;
    journal.stored.insert(i, segment);
    record::replace(journal_path, journal)?;
    step(&format!("ship.segment.{i}"));
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("manifests always serialize")
}
