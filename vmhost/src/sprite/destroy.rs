//! destroy: stop the sprite and remove it with its checkpoints.
//!
//! 1. Stop its sandbox.
//! 2. Rename its directory into `trash/`: from this instant it is gone.
//! 3. Note its copy in the bucket, if any, for deletion (see
//!    `replica::prune`).
//! 4. Delete the subvolumes in the trash; one a shipment to the bucket is
//!    still reading (btrfs refuses to delete it) goes once the shipment is
//!    over, and the destroy does not wait for it.
//!
//! A crash before 2 leaves the sprite as it was (the next start runs it
//! again); after 2 the next start does 3 and 4.

use std::time::Duration;

use sprites_wire::SpriteName;

use super::Host;
use crate::error::{Error, Result};
use crate::failpoint::step;
use crate::{btrfs, record};

impl Host {
    /// Destroys a sprite in any phase.
    pub async fn destroy(&self, name: &SpriteName) -> Result<()> {
        let _guard = self.lock(name).await;
        self.load(name)?;
        // Its objects in the bucket may be another host's now (see
        // `fence`); without one, it has only its disk here.
        if self.cfg.bucket.is_some() {
            self.unfenced(name)?;
        }
        self.destroy_locked(name).await
    }

    pub(crate) async fn destroy_locked(&self, name: &SpriteName) -> Result<()> {
        self.stop_sandbox(name, Duration::ZERO).await?;
        step("destroy.stopped");
        let trash = self.unpublish(name, "trash")?;
        step("destroy.trashed");
        self.emit(name, super::Phase::Destroyed);
        self.note_forget(&trash)?;
        if let Err(e) = btrfs::remove_tree(&trash) {
            // The sprite is gone all the same. btrfs refuses to delete a
            // subvolume a send still reads (a shipment to the bucket in
            // flight): its trash goes once that is over.
            tracing::warn!(sprite = %name, error = %e, "a destroyed sprite's trash stays for now");
            empty_later(trash);
        }
        self.remove_outside(name);
        Ok(())
    }

    /// Moves sprite `name`'s folder into `into` of the host's folder
    /// (`trash`: destroyed, its objects in the bucket noted for deletion by
    /// the next start should this one stop; `staging`: let go, its objects
    /// kept): from this instant the host has it no more. Where it went.
    pub(crate) fn unpublish(&self, name: &SpriteName, into: &str) -> Result<std::path::PathBuf> {
        let paths = self.paths(name);
        let gone = self
            .dir
            .join(into)
            .join(format!("{name}.{}", crate::now_ms()));
        std::fs::rename(&paths.dir, &gone)
            .map_err(|e| Error::path("cannot move away", &paths.dir, e))?;
        record::sync_dir(&self.dir.join("sprites"))?;
        Ok(gone)
    }

    /// Removes what of sprite `name` lives outside its folder: its
    /// management socket's folders, its init's identity, its device nodes.
    pub(crate) fn remove_outside(&self, name: &SpriteName) {
        let _ = std::fs::remove_dir_all(self.mgmt_dir(name));
        let _ = std::fs::remove_dir_all(self.mgmt_dir(name).with_extension("etc"));
        let _ = std::fs::remove_file(self.init_identity_path(name));
        for node in self.device_nodes_of(name) {
            let _ = std::fs::remove_file(node);
        }
    }
}

/// How long a destroyed sprite's trash is tried again, once a second; what
/// is left after goes at the next start.
const EMPTY_FOR: Duration = Duration::from_secs(600);

/// Deletes `trash` once it can be (see [`Host::destroy_locked`]).
fn empty_later(trash: std::path::PathBuf) {
    tokio::spawn(async move {
        let until = tokio::time::Instant::now() + EMPTY_FOR;
        while tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let t = trash.clone();
            let done = tokio::task::spawn_blocking(move || btrfs::remove_tree(&t)).await;
            if matches!(done, Ok(Ok(()))) {
                return;
            }
        }
        tracing::warn!(path = %trash.display(), "a destroyed sprite's trash is left for the next start");
    });
}
