//! adopt and release: a sprite changes hosts through the bucket.
//!
//! Hosts of one cluster share a bucket (and its key) and an instance name,
//! so a sprite's objects are where any of them looks. The host it leaves
//! has shipped everything and kept only its records ([`Host::evict`]);
//! [`Host::adopt`] on the new host writes its records from the bucket, as
//! [`Host::recover`] does for one sprite (asleep cold, its disk fetched on
//! first use); [`Host::release`] on the old host then drops its records,
//! keeping every object (no tombstone: the sprite lives on).
//!
//! Between the two, both hosts list the sprite and neither holds its disk,
//! and neither brings it back: the old host was handed it over
//! ([`Host::hand_over`]: evicted and marked leaving) and the new one
//! adopted it arriving; a wake on either is refused (`Error::Moving`).
//! The new host lets it wake once told it has arrived ([`Host::arrive`],
//! after the release); a move given up keeps it on the old host
//! ([`Host::stay`]). So it never runs on both.
//!
//! So that little is fetched once the sprite has stopped, the new host
//! can [`Host::prefetch`] it while it still runs on the old one: every
//! checkpoint already in the bucket is received into
//! `incoming/<name>/checkpoints/` (with `born` saying which making of the
//! name), and the first fetch after the adoption takes that folder as the
//! sprite's own (a received subvolume, read-only, cannot be moved out of
//! its folder, but its folder can) and receives only what was shipped
//! since. What no fetch takes goes at the next start.

use std::collections::HashSet;
use std::path::PathBuf;

use sprites_wire::{CheckpointId, SpriteName};

use super::{sprite_prefix, Bucket, Location, Moving, Parent, ReplicaState};
use crate::btrfs;
use crate::error::{Error, Result};
use crate::failpoint::step;
use crate::sprite::{wrong_phase, Host, Phase, SpriteInfo};

impl Host {
    /// Takes on sprite `name` as the bucket holds it (the latest making of
    /// the name that was not destroyed): listed at once, asleep cold.
    /// It does not wake until [`Host::arrive`]; adopting it again
    /// meanwhile (a move tried again) is the same adoption.
    pub async fn adopt(&self, name: &SpriteName) -> Result<SpriteInfo> {
        let bucket = self.bucket()?;
        let _guard = self.lock(name).await;
        let paths = self.paths(name);
        if paths.record.exists() {
            if ReplicaState::read(&paths)?.moving == Some(Moving::Arriving) {
                return self.get(name);
            }
            return Err(Error::AlreadyExists(name.to_string()));
        }
        let born = self.born(bucket, name).await?;
        let mut failures = Vec::new();
        self.list_remote(name, born, bucket, &mut failures).await?;
        for failure in failures {
            tracing::warn!(sprite = %name, "adopted without: {failure}");
        }
        self.set_moving(&paths, Some(Moving::Arriving))?;
        self.emit(name, Phase::SleepingCold);
        self.get(name)
    }

    /// Hands sprite `name`, asleep cold, over to a move: everything shipped
    /// and only its records kept (as [`Host::evict`]), and it is not
    /// brought back here until released or kept ([`Host::stay`]).
    pub async fn hand_over(&self, name: &SpriteName) -> Result<()> {
        self.evict(name).await?;
        let _guard = self.lock(name).await;
        let (paths, _) = self.load(name)?;
        if ReplicaState::read(&paths)?.location != Location::Bucket {
            return Err(Error::Invalid(format!(
                "sprite {name} was woken while it was handed over; it stays"
            )));
        }
        self.set_moving(&paths, Some(Moving::Leaving))
    }

    /// Keeps sprite `name` here after all: a move of it given up.
    pub async fn stay(&self, name: &SpriteName) -> Result<()> {
        self.end_move(name, Moving::Leaving).await
    }

    /// Sprite `name`, adopted, is this host's now: it may wake.
    pub async fn arrive(&self, name: &SpriteName) -> Result<()> {
        self.end_move(name, Moving::Arriving).await
    }

    /// Clears sprite `name`'s mark of a move, when it is `side`.
    async fn end_move(&self, name: &SpriteName, side: Moving) -> Result<()> {
        let _guard = self.lock(name).await;
        let (paths, _) = self.load(name)?;
        if ReplicaState::read(&paths)?.moving == Some(side) {
            self.set_moving(&paths, None)?;
        }
        Ok(())
    }

    fn set_moving(&self, paths: &crate::sprite::Paths, moving: Option<Moving>) -> Result<()> {
        let mut state = ReplicaState::read(paths)?;
        state.moving = moving;
        state.write(paths)
    }

    /// When the sprite `name` the bucket holds was made (the latest making
    /// of the name that was not destroyed).
    async fn born(&self, bucket: &Bucket, name: &SpriteName) -> Result<u64> {
        self.makings(bucket, &format!("sprites/{}/{name}/", self.cfg.instance))
            .await?
            .remove(name.as_str())
            .and_then(|makings| super::fetch::alive(&makings).last().copied())
            .ok_or_else(|| Error::NotFound(name.to_string()))
    }

    fn incoming(&self, name: &SpriteName) -> PathBuf {
        self.dir.join("incoming").join(name.as_str())
    }

    /// Receives ahead every checkpoint of sprite `name` (kept by another
    /// host) already in the bucket, for its adoption here; the bytes
    /// received.
    pub async fn prefetch(&self, name: &SpriteName) -> Result<u64> {
        let bucket = self.bucket()?;
        let _guard = self.lock(name).await;
        if self.paths(name).record.exists() {
            return Err(Error::AlreadyExists(name.to_string()));
        }
        let born = self.born(bucket, name).await?;
        let incoming = self.incoming(name);
        let making = incoming.join("born");
        let into = incoming.join("checkpoints");
        if std::fs::read_to_string(&making).ok() != Some(born.to_string()) {
            btrfs::remove_tree(&incoming)
                .map_err(|e| Error::path("cannot delete", &incoming, e))?;
            std::fs::create_dir_all(&into).map_err(|e| Error::path("cannot create", &into, e))?;
            std::fs::write(&making, born.to_string())
                .map_err(|e| Error::path("cannot write", &making, e))?;
        }
        let prefix = sprite_prefix(&self.cfg.instance, name.as_str(), born);
        let manifests = self
            .manifests(name, &prefix, bucket, &mut Vec::new())
            .await?;
        let mut have = HashSet::new();
        let mut bytes = 0;
        for m in &manifests {
            let id = m.checkpoint.id;
            if btrfs::is_readonly(&into.join(id.to_string())).unwrap_or(false) {
                have.insert(id);
                continue;
            }
            match &m.parent {
                // Its parent did not come: the fetch after adoption tries.
                Some(Parent::Checkpoint(p)) if !have.contains(p) => continue,
                Some(Parent::Image(image)) => self.fetch_image(bucket, image).await?,
                _ => {}
            }
            let dir = format!("{prefix}{id}/");
            super::fetch::receive(bucket, &m.segments, &dir, &into, &id.to_string(), &|_| {})
                .await?;
            have.insert(id);
            bytes += m.segments.iter().map(|s| s.len).sum::<u64>();
        }
        Ok(bytes)
    }

    /// Takes what a prefetch received of sprite `name` (made at `born`)
    /// as its checkpoints, when it has none yet, keeping those of `ids`
    /// received whole; the rest goes.
    pub(super) fn take_incoming(
        &self,
        name: &SpriteName,
        born: u64,
        paths: &crate::sprite::Paths,
        ids: &HashSet<CheckpointId>,
    ) -> Result<()> {
        let incoming = self.incoming(name);
        if !incoming.exists() {
            return Ok(());
        }
        let came = incoming.join("checkpoints");
        let same = std::fs::read_to_string(incoming.join("born")).ok() == Some(born.to_string());
        let none_yet = std::fs::read_dir(&paths.checkpoints)
            .map_err(|e| Error::path("cannot list", &paths.checkpoints, e))?
            .next()
            .is_none();
        if same && none_yet && came.exists() {
            std::fs::rename(&came, &paths.checkpoints)
                .map_err(|e| Error::path("cannot take", &came, e))?;
            let dir = &paths.checkpoints;
            for entry in std::fs::read_dir(dir).map_err(|e| Error::path("cannot list", dir, e))? {
                let path = entry
                    .map_err(|e| Error::path("cannot list", dir, e))?
                    .path();
                let id = path.file_name().and_then(|n| n.to_str()?.parse().ok());
                let whole = btrfs::is_readonly(&path).unwrap_or(false);
                if !whole || !id.is_some_and(|id| ids.contains(&id)) {
                    btrfs::remove_tree(&path)
                        .map_err(|e| Error::path("cannot delete", &path, e))?;
                }
            }
        }
        btrfs::remove_tree(&incoming).map_err(|e| Error::path("cannot delete", &incoming, e))
    }

    /// Lets sprite `name` go to the host that adopted it. Only a sprite
    /// whose disk is in the bucket alone, asleep cold, is let go, so
    /// nothing of it stays behind; its objects stay for its new host.
    pub async fn release(&self, name: &SpriteName) -> Result<()> {
        let _one = self.replica_lock(name).await;
        let _guard = self.lock(name).await;
        let (paths, _) = self.load(name)?;
        let phase = self.observe(name)?;
        if phase != Phase::SleepingCold {
            return Err(wrong_phase("release", phase));
        }
        if ReplicaState::read(&paths)?.location != Location::Bucket {
            return Err(Error::Invalid(format!(
                "sprite {name} is still on this host's disk: evict it to the object store first"
            )));
        }
        // Not into the trash: what is found there at a start has its
        // objects deleted, and these are the adopter's now.
        let gone = self.unpublish(name, "staging")?;
        step("release.unpublished");
        btrfs::remove_tree(&gone).map_err(|e| Error::path("cannot delete", &gone, e))?;
        self.remove_outside(name);
        Ok(())
    }
}
