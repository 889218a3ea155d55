//! fork: a new sprite from a checkpoint of another, or from its state now.
//!
//! From a checkpoint, the new root is a writable snapshot of it. From the
//! current state, the source is frozen around the snapshot (as for a
//! checkpoint) so the copy is consistent. Either way it is O(1), and the new
//! sprite is staged and published like a created one (see `create`). The
//! fork starts with no checkpoints of its own and remembers its origin.

use sprites_wire::{CheckpointId, SpriteName};

use super::checkpoint::CheckpointInfo;
use super::{Desired, Host, Origin, SpriteInfo, SpriteRecord};
use crate::btrfs;
use crate::error::{Error, Result};
use crate::failpoint::step;
use crate::record;
use crate::runtime::SandboxStatus;

impl Host {
    /// Forks `source` (at `checkpoint`, or as it is now) into a new running
    /// sprite `name`. Allowed in every phase of the source.
    pub async fn fork(
        &self,
        source: &SpriteName,
        checkpoint: Option<CheckpointId>,
        name: &SpriteName,
    ) -> Result<SpriteInfo> {
        self.fork_named(source, checkpoint, name, name).await
    }

    /// [`Host::fork`] with a host name inside other than the sprite's name.
    pub async fn fork_named(
        &self,
        source: &SpriteName,
        checkpoint: Option<CheckpointId>,
        name: &SpriteName,
        hostname: &SpriteName,
    ) -> Result<SpriteInfo> {
        if source == name {
            return Err(Error::AlreadyExists(name.to_string()));
        }
        // Two locks: always in name order, so two crossed forks cannot deadlock.
        let (_a, _b) = if source < name {
            let a = self.lock(source).await;
            (a, self.lock(name).await)
        } else {
            let b = self.lock(name).await;
            (self.lock(source).await, b)
        };
        // A source only in the bucket comes back first.
        self.fetch_locked(source).await?;
        let (src_paths, src) = self.load(source)?;
        if self.paths(name).dir.exists() {
            return Err(Error::AlreadyExists(name.to_string()));
        }
        let from = match checkpoint {
            Some(id) => {
                if record::read::<CheckpointInfo>(&src_paths.checkpoint_record(id))?.is_none() {
                    return Err(Error::CheckpointNotFound(source.to_string(), id));
                }
                src_paths.checkpoint(id)
            }
            None => src_paths.root.clone(),
        };
        let rec = SpriteRecord {
            name: name.to_string(),
            hostname: hostname.to_string(),
            image: src.image.clone(),
            created_at: crate::now_ms(),
            desired: Desired::Running,
            limits: src.limits,
            origin: Some(Origin::of(source, checkpoint)),
            current: None,
            next_checkpoint: 0,
            next_hidden: 0,
            activity: super::Activity::started_now(),
            // The file it is in came along with the disk.
            environment: src.environment.clone(),
            network_policy: src.network_policy.clone(),
            privileges: src.privileges.clone(),
        };
        let sandbox = self.sandbox_id(source);
        let freeze =
            checkpoint.is_none() && self.runtime.status(&sandbox)? == SandboxStatus::Running;
        let runtime = &self.runtime;
        self.stage_and_publish(name, &rec, |root| {
            // Frozen for the snapshot alone, as a checkpoint is.
            if freeze {
                runtime.freeze(&sandbox).map_err(std::io::Error::other)?;
            }
            let snap = btrfs::snapshot(&from, root, false);
            if freeze {
                runtime.thaw(&sandbox).map_err(std::io::Error::other)?;
            }
            snap
        })
        .await?;
        step("fork.published");
        let paths = self.paths(name);
        if let Err(e) = self.start_sandbox(name, &paths, &rec).await {
            if let Err(cleanup) = self.destroy_locked(name).await {
                tracing::error!(sprite = %name, error = %cleanup, "cannot remove a fork that failed to start");
            }
            return Err(e);
        }
        self.emit(name, super::Phase::Running);
        self.info(name, rec)
    }
}
