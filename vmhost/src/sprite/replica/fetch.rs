//! recover and fetch: the bucket back into a pool.
//!
//! [`Host::recover`] lists every sprite of this instance the bucket holds
//! (but destroyed ones: see [`super::prune`]) and the host does not, and
//! writes only its records (location
//! [`Location::Bucket`]): the sprite is listed at once, whatever the bucket
//! holds. [`Host::fetch`] then brings one sprite's disk back, on its first
//! use: each checkpoint's stream is received in the order it was shipped
//! (so every parent is there before what was sent against it), each
//! segment opened and checked against the manifest's digest on the way,
//! and the root made from the last checkpoint.
//!
//! A checkpoint whose objects fail their check is refused with an error
//! naming it, as is every one sent against it; the others come back.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use sprites_wire::{CheckpointId, SpriteName};
use tokio::io::AsyncWriteExt;

use super::{
    segment_key, sprite_prefix, Bucket, ImageManifest, Location, Manifest, Parent, ReplicaState,
    Segment, Shipped, StoredRecord,
};
use crate::btrfs;
use crate::error::{Error, Result};
use crate::record;
use crate::sprite::{Desired, Host, Paths, HIDDEN_BASE};

/// What [`Host::recover`] found.
#[derive(Debug, Default)]
pub struct RecoverReport {
    /// Sprites now listed, their disks in the bucket.
    pub sprites: Vec<SpriteName>,
    /// Images brought back (the ones those sprites were made from).
    pub images: Vec<String>,
    /// What could not be recovered, each with why.
    pub failures: Vec<String>,
}

impl Host {
    /// Lists the bucket's sprites of this instance that this host lacks,
    /// writing their records; their disks come on first use.
    pub async fn recover(&self) -> Result<RecoverReport> {
        let bucket = self.bucket()?;
        let top = format!("sprites/{}/", self.cfg.instance);
        let places = self.makings(bucket, &top).await?;
        let mut report = RecoverReport::default();
        for (name, born) in places {
            let name = SpriteName::parse(&name).expect("parsed above");
            if self.paths(&name).record.exists() {
                continue;
            }
            // The latest making of the name that was not destroyed; an
            // earlier one left (its destruction cut short) is said.
            let mut alive = alive(&born);
            let Some(born) = alive.pop() else {
                continue;
            };
            for older in alive {
                report.failures.push(format!(
                    "sprite {name}: an earlier sprite of that name (made at {older} ms) is left in the bucket"
                ));
            }
            match self
                .list_remote(&name, born, bucket, &mut report.failures)
                .await
            {
                Ok(()) => report.sprites.push(name),
                Err(e) => report.failures.push(format!("sprite {name}: {e}")),
            }
        }
        // The images sprites were made from come now, once each: new
        // sprites are made from them too, and a server finding its base
        // image need not build it again.
        let mut images = Vec::new();
        for name in &report.sprites {
            let (_, rec) = self.load(name)?;
            if !rec.image.is_empty() && !images.contains(&rec.image) {
                images.push(rec.image);
            }
        }
        for image in images {
            match self.fetch_image(bucket, &image).await {
                Ok(()) => report.images.push(image),
                Err(e) => report.failures.push(format!("image {image}: {e}")),
            }
        }
        Ok(report)
    }

    /// Every sprite under `top` (`sprites/<instance>/`, or one sprite's
    /// `sprites/<instance>/<name>/`) in the bucket: the times it was made,
    /// and whether each making is destroyed (its objects going).
    pub(super) async fn makings(
        &self,
        bucket: &Bucket,
        top: &str,
    ) -> Result<BTreeMap<String, BTreeMap<u64, bool>>> {
        let instance = format!("sprites/{}/", self.cfg.instance);
        let mut places: BTreeMap<String, BTreeMap<u64, bool>> = BTreeMap::new();
        for key in bucket.list(top).await? {
            let mut parts = key.strip_prefix(&instance).unwrap_or_default().split('/');
            let (Some(name), Some(born), Some(rest)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(name), Ok(born)) = (SpriteName::parse(name), born.parse::<u64>()) else {
                continue;
            };
            let destroyed = places
                .entry(name.to_string())
                .or_default()
                .entry(born)
                .or_default();
            *destroyed |= rest == super::prune::TOMBSTONE;
        }
        Ok(places)
    }

    /// Writes the records of sprite `name` from the bucket, in staging
    /// first, then published in one rename.
    pub(super) async fn list_remote(
        &self,
        name: &SpriteName,
        born: u64,
        bucket: &Bucket,
        failures: &mut Vec<String>,
    ) -> Result<()> {
        let prefix = sprite_prefix(&self.cfg.instance, name.as_str(), born);
        let Some(stored) = bucket.get(&format!("{prefix}record")).await? else {
            return Err(Error::Invalid("no record in the bucket".into()));
        };
        let stored: StoredRecord = from_json(bucket, &format!("{prefix}record"), &stored)?;
        let mut rec = stored.record;
        let manifests = self.manifests(name, &prefix, bucket, failures).await?;
        if manifests.is_empty() {
            return Err(Error::Invalid("no checkpoint in the bucket".into()));
        }
        let staging = self.dir.join("staging").join(name.as_str());
        let _ = btrfs::remove_tree(&staging);
        let paths = Paths::new(staging.clone());
        for dir in [&paths.checkpoint_meta, &paths.checkpoints] {
            std::fs::create_dir_all(dir).map_err(|e| Error::path("cannot create", dir, e))?;
        }
        let mut state = ReplicaState {
            location: Location::Bucket,
            bucket: Some(bucket.label().await?),
            layout: super::LAYOUT,
            ..Default::default()
        };
        let last_seq = manifests.last().map(|m| m.seq);
        for m in &manifests {
            // The sprite lists what it listed when its record was stored,
            // and the ones people see shipped after that (with a record
            // stored before lists were kept: the ones people see). Other
            // hidden checkpoints are for recovery only: the
            // last one is the sprite's latest state.
            let listed = if stored.checkpoints.is_empty() {
                !m.checkpoint.hidden
            } else {
                stored.checkpoints.contains(&m.checkpoint.id)
                    || (!m.checkpoint.hidden && m.seq >= stored.next_seq)
            };
            if listed || Some(m.seq) == last_seq {
                record::write(&paths.checkpoint_record(m.checkpoint.id), &m.checkpoint)?;
            }
            state.shipped.insert(
                m.checkpoint.id.0,
                Shipped {
                    seq: m.seq,
                    at: m.shipped_at,
                    bytes: m.segments.iter().map(|s| s.len).sum(),
                    depth: m.depth,
                    after: match m.parent {
                        Some(Parent::Checkpoint(p)) => Some(p),
                        _ => None,
                    },
                },
            );
            state.next_seq = state.next_seq.max(m.seq + 1);
        }
        let last = manifests.last().expect("not empty").checkpoint.id;
        rec.current = Some(last);
        // Past every id the bucket holds, damaged ones too: none is reused.
        let held: Vec<u32> = bucket
            .list(&prefix)
            .await?
            .iter()
            .filter_map(|k| {
                k.strip_prefix(&prefix)?
                    .split('/')
                    .next()?
                    .parse::<CheckpointId>()
                    .ok()
            })
            .map(|id| id.0)
            .collect();
        let after = |hidden: bool| {
            held.iter()
                .filter(|id| (**id >= HIDDEN_BASE) == hidden)
                .max()
                .map_or(0, |id| id + 1)
        };
        rec.next_checkpoint = rec.next_checkpoint.max(after(false));
        rec.next_hidden = rec.next_hidden.max(after(true));
        rec.set_desired(Desired::SleepingCold);
        state.write(&paths)?;
        record::write(&paths.record, &rec)?;
        let dest = self.paths(name).dir;
        std::fs::rename(&staging, &dest).map_err(|e| Error::path("cannot publish", &dest, e))?;
        record::sync_dir(dest.parent().expect("in sprites/"))?;
        Ok(())
    }

    /// The manifests of `name` in the bucket, in the order they were
    /// shipped; a damaged one is reported and left out.
    pub(super) async fn manifests(
        &self,
        name: &SpriteName,
        prefix: &str,
        bucket: &Bucket,
        failures: &mut Vec<String>,
    ) -> Result<Vec<Manifest>> {
        let mut out = Vec::new();
        for key in bucket.list(prefix).await? {
            if !key.ends_with("/manifest") {
                continue;
            }
            let got = match bucket.get(&key).await {
                Ok(Some(data)) => from_json::<Manifest>(bucket, &key, &data),
                Ok(None) => continue,
                Err(e) => Err(e),
            };
            match got {
                Ok(m) => out.push(m),
                // Damaged: said, and left out. Anything else (the bucket
                // away, slow) stops here, changing nothing.
                Err(e @ Error::Corrupt { .. }) => failures.push(format!("sprite {name}: {e}")),
                Err(e) => return Err(e),
            }
        }
        out.sort_by_key(|m| m.seq);
        Ok(out)
    }

    /// Brings the disk of `name` back from the bucket when it is only
    /// there; a no-op for a sprite on this host. Returns what could not be
    /// brought back (checkpoints refused, each with why).
    pub async fn fetch(&self, name: &SpriteName) -> Result<Vec<String>> {
        let _guard = self.lock(name).await;
        self.fetch_locked(name).await
    }

    pub(crate) async fn fetch_locked(&self, name: &SpriteName) -> Result<Vec<String>> {
        let (paths, mut rec) = self.load(name)?;
        let mut state = ReplicaState::read(&paths)?;
        if state.location == Location::Local {
            return Ok(Vec::new());
        }
        // Brought back on one end of a move, it could run on both.
        if state.moving.is_some() {
            return Err(Error::Moving(name.to_string()));
        }
        let bucket = self.bucket()?;
        let mut failures = Vec::new();
        let prefix = sprite_prefix(&self.cfg.instance, name.as_str(), rec.created_at);
        let manifests = self.manifests(name, &prefix, bucket, &mut failures).await?;
        let wanted: HashSet<CheckpointId> =
            crate::sprite::recorded_ids(&paths)?.into_iter().collect();
        let manifests = needed(&manifests, &wanted);
        let ids = manifests.iter().map(|m| m.checkpoint.id).collect();
        self.take_incoming(name, rec.created_at, &paths, &ids)?;
        let total: u64 = manifests
            .iter()
            .flat_map(|m| &m.segments)
            .map(|s| s.len)
            .sum();
        self.progress(name, Some((0, total)));
        // Cleared however this ends, a cancelled wake included.
        let _progress = Progress { host: self, name };
        let mut received: HashSet<CheckpointId> = HashSet::new();
        let mut done = 0;
        for m in &manifests {
            let id = m.checkpoint.id;
            let target = paths.checkpoint(id);
            if btrfs::is_readonly(&target).unwrap_or(false) {
                // Received whole by an earlier fetch this one finishes.
                received.insert(id);
                done += m.segments.iter().map(|s| s.len).sum::<u64>();
                continue;
            }
            let dir = format!("{prefix}{id}/");
            let result = match &m.parent {
                Some(Parent::Checkpoint(p)) if !received.contains(p) => Err(Error::Refused(
                    format!("it was sent against {p}, which could not be brought back"),
                )),
                Some(Parent::Image(image)) => self.fetch_image(bucket, image).await,
                _ => Ok(()),
            };
            let result = match result {
                Ok(()) => {
                    let progress = |n| self.progress(name, Some((done + n, total)));
                    receive(
                        bucket,
                        &m.segments,
                        &dir,
                        &paths.checkpoints,
                        &id.to_string(),
                        &progress,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            done += m.segments.iter().map(|s| s.len).sum::<u64>();
            match result {
                Ok(()) => {
                    if wanted.contains(&id) {
                        record::write(&paths.checkpoint_record(id), &m.checkpoint)?;
                    }
                    received.insert(id);
                }
                // The bucket away, a full pool, a slow link: nothing is
                // given up; the next wake tries again from here.
                Err(e) if !matches!(e, Error::Corrupt { .. } | Error::Refused(_)) => return Err(e),
                Err(e) => {
                    tracing::error!(sprite = %name, checkpoint = %id, error = %e, "checkpoint not restored");
                    failures.push(format!(
                        "checkpoint {id} of sprite {name} is not restored: {e}"
                    ));
                    record::remove(&paths.checkpoint_record(id))?;
                    state.shipped.remove(&id.0);
                }
            }
        }
        for id in received.iter().filter(|id| !wanted.contains(id)) {
            btrfs::remove_tree(&paths.checkpoint(*id))
                .map_err(|e| Error::path("cannot delete", paths.checkpoint(*id), e))?;
        }
        let received: HashSet<CheckpointId> = received
            .into_iter()
            .filter(|id| wanted.contains(id))
            .collect();
        let Some(last) = manifests
            .iter()
            .rev()
            .map(|m| m.checkpoint.id)
            .find(|id| received.contains(id))
        else {
            state.error = failures.last().cloned();
            state.write(&paths)?;
            return Err(Error::Invalid(format!(
                "no checkpoint of sprite {name} could be brought back: {}",
                failures.join("; ")
            )));
        };
        btrfs::remove_tree(&paths.root)
            .map_err(|e| Error::path("cannot delete", &paths.root, e))?;
        btrfs::snapshot(&paths.checkpoint(last), &paths.root, false)
            .map_err(|e| Error::path("cannot snapshot", &paths.root, e))?;
        btrfs::limit_referenced(&paths.root, rec.limits.disk_bytes)
            .map_err(|e| Error::path("cannot set quota", &paths.root, e))?;
        rec.current = Some(last);
        record::write(&paths.record, &rec)?;
        state.location = Location::Local;
        state.error = failures.first().cloned();
        state.write(&paths)?;
        Ok(failures)
    }

    /// Receives image `image` (`<name>@<hash>`) from the bucket when the
    /// pool lacks it and the bucket has it; whether the pool has it now.
    pub(crate) async fn take_image_from(&self, bucket: &Bucket, image: &str) -> Result<bool> {
        match self.fetch_image(bucket, image).await {
            Ok(()) => Ok(true),
            Err(Error::ImageMissing(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Receives image `image` from the bucket unless the pool has it.
    pub(super) async fn fetch_image(&self, bucket: &Bucket, image: &str) -> Result<()> {
        let images = self.pool().images_dir();
        if btrfs::is_readonly(&images.join(image)).unwrap_or(false) {
            return Ok(());
        }
        let _one = self.image_shipping.lock().await;
        if btrfs::is_readonly(&images.join(image)).unwrap_or(false) {
            return Ok(());
        }
        let dir = format!("images/{image}/");
        let key = format!("{dir}manifest");
        let Some(data) = bucket.get(&key).await? else {
            return Err(Error::ImageMissing(format!("{image} (not in the bucket)")));
        };
        let manifest: ImageManifest = from_json(bucket, &key, &data)?;
        // `receive` removes what an interrupted receive left; the image is
        // taken as there only once read-only, which `btrfs receive` makes
        // it at the end.
        receive(bucket, &manifest.segments, &dir, &images, image, &|_| {}).await?;
        let marks = self.image_marks(bucket).await?;
        std::fs::create_dir_all(&marks).map_err(|e| Error::path("cannot create", &marks, e))?;
        let mark = marks.join(image);
        std::fs::write(&mark, b"").map_err(|e| Error::path("cannot write", &mark, e))?;
        Ok(())
    }

    /// Bytes fetched and to fetch for `name`, while it is being fetched.
    pub fn fetching(&self, name: &SpriteName) -> Option<(u64, u64)> {
        self.fetching.lock().unwrap().get(name.as_str()).copied()
    }

    fn progress(&self, name: &SpriteName, now: Option<(u64, u64)>) {
        let step = |(done, total): (u64, u64)| done * 50 / total.max(1);
        let was = {
            let mut map = self.fetching.lock().unwrap();
            match now {
                Some(p) => map.insert(name.to_string(), p),
                None => map.remove(name.as_str()),
            }
        };
        if was.map(step) != now.map(step) {
            self.replica_changed(name);
        }
    }
}

/// Segments fetched ahead of the one being received.
const AHEAD: usize = 4;

/// Feeds the segments under `dir` to `btrfs receive <into>`, checking each
/// against its digest; the stream makes the subvolume `<into>/<made>`. On
/// any failure what it half made is removed.
pub(super) async fn receive(
    bucket: &Bucket,
    segments: &[Segment],
    dir: &str,
    into: &Path,
    made: &str,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let target = into.join(made);
    btrfs::remove_tree(&target).map_err(|e| Error::path("cannot delete", &target, e))?;
    let mut child = tokio::process::Command::new("btrfs")
        .arg("receive")
        .arg("-q")
        .arg(into)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Spawn("btrfs receive".into(), e.to_string()))?;
    let mut stdin = child.stdin.take().expect("piped");
    let fed = async {
        // A few segments are fetched, opened and checked ahead of the one
        // being received, in order.
        let mut fetched = futures_util::stream::iter(segments.iter().cloned().enumerate())
            .map(|(i, segment)| {
                let bucket = bucket.clone();
                let key = segment_key(dir, i);
                async move {
                    let data = bucket.get(&key).await?.ok_or_else(|| Error::Corrupt {
                        object: format!("{} (missing)", bucket.describe(&key)),
                    })?;
                    if data.len() as u64 != segment.len
                        || hex::encode(Sha256::digest(&data)) != segment.sha256
                    {
                        return Err(Error::Corrupt {
                            object: bucket.describe(&key),
                        });
                    }
                    Ok(data)
                }
            })
            .buffered(AHEAD);
        let mut sent = 0;
        while let Some(data) = fetched.next().await {
            let data = data?;
            stdin
                .write_all(&data)
                .await
                .map_err(|e| Error::io("btrfs receive stopped reading", e))?;
            sent += data.len() as u64;
            progress(sent);
        }
        drop(stdin);
        Ok(())
    }
    .await;
    if let Err(e) = fed {
        let _ = child.kill().await;
        let _ = btrfs::remove_tree(&target);
        return Err(e);
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| Error::io("btrfs receive", e))?;
    if !out.status.success() || !btrfs::is_subvolume(&target).unwrap_or(false) {
        let _ = btrfs::remove_tree(&target);
        return Err(Error::Runtime(format!(
            "btrfs receive into {}: {}",
            into.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn from_json<T: serde::de::DeserializeOwned>(bucket: &Bucket, key: &str, data: &[u8]) -> Result<T> {
    serde_json::from_slice(data).map_err(|_| Error::Corrupt {
        object: bucket.describe(key),
    })
}

/// Clears a sprite's fetch progress when dropped.
struct Progress<'a> {
    host: &'a Host,
    name: &'a SpriteName,
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.host.progress(self.name, None);
    }
}

/// The manifests to receive, oldest first: those of the checkpoints the
/// host lists (`wanted`), with the ones they were sent on top of; hidden
/// ones in between go again after.
fn needed<'a>(manifests: &'a [Manifest], wanted: &HashSet<CheckpointId>) -> Vec<&'a Manifest> {
    let mut needed = HashSet::new();
    for m in manifests.iter().rev() {
        if wanted.contains(&m.checkpoint.id) || needed.contains(&m.checkpoint.id) {
            needed.insert(m.checkpoint.id);
            if let Some(Parent::Checkpoint(p)) = &m.parent {
                needed.insert(*p);
            }
        }
    }
    manifests
        .iter()
        .filter(|m| needed.contains(&m.checkpoint.id))
        .collect()
}

/// The times a name was made whose sprite was not destroyed, oldest first.
pub(super) fn alive(makings: &std::collections::BTreeMap<u64, bool>) -> Vec<u64> {
    makings
        .iter()
        .filter(|(_, destroyed)| !**destroyed)
        .map(|(born, _)| *born)
        .collect()
}
