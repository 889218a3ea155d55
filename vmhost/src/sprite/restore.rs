//! restore: the sprite's disk becomes a checkpoint again.
//!
//! 1. Write the intent `meta/op.json` (target vK, backup id vB). From here on
//!    the restore is always finished, now or by the next start.
//! 2. Stop the sandbox.
//! 3. Keep the current disk as checkpoint vB ("before restore to vK"), so
//!    the restore can itself be undone by restoring vB.
//! 4. Rename `root` to `root.old`.
//! 5. Snapshot vK writable as `root`, with the sprite's quota.
//! 6. Record vK as current, remove the intent, delete `root.old`.
//! 7. Start the sandbox: init and the sprite's services start again.
//!
//! Each step checks what is already done, so [`Host::finish_restore`] can
//! run it again after a crash at any point.

use serde::{Deserialize, Serialize};
use sprites_wire::{CheckpointId, SpriteName};

use super::checkpoint::{next_id, CheckpointInfo};
use super::{Desired, Host, Paths, SpriteInfo, SpriteRecord};
use crate::error::{Error, Result};
use crate::failpoint::step;
use crate::{btrfs, record};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Intent {
    Restore {
        target: CheckpointId,
        backup: CheckpointId,
    },
}

impl Host {
    /// Restores a checkpoint; the state before is kept as a new automatic
    /// checkpoint. Allowed in every phase; the sprite runs afterwards.
    pub async fn restore(
        &self,
        name: &SpriteName,
        target: CheckpointId,
    ) -> Result<(SpriteInfo, CheckpointInfo)> {
        let _guard = self.lock(name).await;
        // A disk only in the bucket comes back first.
        self.fetch_locked(name).await?;
        let (paths, rec) = self.load(name)?;
        if record::read::<CheckpointInfo>(&paths.checkpoint_record(target))?.is_none() {
            return Err(Error::CheckpointNotFound(name.to_string(), target));
        }
        let backup = next_id(&paths, &rec)?;
        record::write(&paths.op, &Intent::Restore { target, backup })?;
        step("restore.intent");
        if let Err(e) = self
            .finish_restore(name, &paths, rec.clone(), target, backup)
            .await
        {
            self.abandon_restore(name, &paths, &rec, backup).await;
            return Err(e);
        }
        let (_, rec) = self.load(name)?;
        let backup = self.checkpoint_info(name, backup)?;
        Ok((self.info(name, rec)?, backup))
    }

    /// After a failure (a full pool, say) before the old root was moved,
    /// the restore is dropped and the sprite runs on as it was. Once the
    /// root has moved, the intent stays and the next start finishes it.
    async fn abandon_restore(
        &self,
        name: &SpriteName,
        paths: &Paths,
        rec: &SpriteRecord,
        backup: CheckpointId,
    ) {
        if paths.old_root.exists() {
            return;
        }
        if !paths.root.exists() {
            // No disk was ever there to restore over (it is in the bucket):
            // nothing moved, nothing to finish.
            let _ = record::remove(&paths.op);
            return;
        }
        let undo = async {
            if record::read::<CheckpointInfo>(&paths.checkpoint_record(backup))?.is_none() {
                btrfs::remove_tree(&paths.checkpoint(backup))
                    .map_err(|e| Error::path("cannot delete", paths.checkpoint(backup), e))?;
            }
            record::remove(&paths.op)?;
            if rec.desired == Desired::Running && self.observe(name)? != super::Phase::Running {
                self.start_sandbox(name, paths, rec).await?;
            }
            Ok::<(), Error>(())
        };
        if let Err(e) = undo.await {
            tracing::error!(sprite = %name, error = %e, "cannot undo a failed restore; the next start finishes it");
        }
    }

    pub(crate) async fn finish_restore(
        &self,
        name: &SpriteName,
        paths: &Paths,
        mut rec: SpriteRecord,
        target: CheckpointId,
        backup: CheckpointId,
    ) -> Result<()> {
        self.stop_sandbox(name, std::time::Duration::ZERO).await?;
        step("restore.stopped");

        let has_backup =
            record::read::<CheckpointInfo>(&paths.checkpoint_record(backup))?.is_some();
        if !has_backup {
            // Step 4 comes after the backup, so `root` is still the old disk.
            btrfs::remove_tree(&paths.checkpoint(backup)).map_err(|e| {
                Error::path(
                    "cannot remove unfinished backup",
                    paths.checkpoint(backup),
                    e,
                )
            })?;
            btrfs::snapshot(&paths.root, &paths.checkpoint(backup), true).map_err(|e| {
                Error::path("cannot keep the current state", paths.checkpoint(backup), e)
            })?;
            let info = CheckpointInfo {
                id: backup,
                comment: format!("before restore to {target}"),
                created_at: crate::now_ms(),
                parent: rec.current,
                auto: true,
                hidden: false,
            };
            record::write(&paths.checkpoint_record(backup), &info)?;
        }
        step("restore.backed_up");

        if !paths.old_root.exists() {
            std::fs::rename(&paths.root, &paths.old_root)
                .map_err(|e| Error::path("cannot move the old root", &paths.root, e))?;
            record::sync_dir(&paths.dir)?;
        }
        step("restore.moved");

        if !paths.root.exists() {
            btrfs::snapshot(&paths.checkpoint(target), &paths.root, false)
                .map_err(|e| Error::path("cannot snapshot", &paths.root, e))?;
            btrfs::limit_referenced(&paths.root, rec.limits.disk_bytes)
                .map_err(|e| Error::path("cannot set quota", &paths.root, e))?;
        }
        step("restore.rooted");

        rec.current = Some(target);
        rec.next_checkpoint = rec.next_checkpoint.max(backup.0 + 1);
        rec.set_desired(Desired::Running);
        record::write(&paths.record, &rec)?;
        record::remove(&paths.op)?;
        step("restore.recorded");
        btrfs::remove_tree(&paths.old_root)
            .map_err(|e| Error::path("cannot delete", &paths.old_root, e))?;
        self.start_sandbox(name, paths, &rec).await?;
        self.emit(name, super::Phase::Running);
        Ok(())
    }
}
