//! create: a new sprite from an image.
//!
//! 1. Snapshot the image into `staging/<name>.<pid>-<n>/root` (O(1)), limit
//!    its quota, write its record there.
//! 2. Rename the staging directory to `sprites/<name>`: the sprite exists
//!    from this instant, complete, or not at all.
//! 3. Start its sandbox.
//!
//! A crash before 2 leaves only staging, removed on the next start; after 2
//! the next start finds a sprite that should run and starts it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use sprites_wire::SpriteName;

use super::{Desired, Host, Origin, Paths, SpriteInfo, SpriteRecord};
use crate::error::{Error, Result};
use crate::failpoint::step;
use crate::runtime::Limits;
use crate::{btrfs, record};

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CreateOptions {
    /// Image name; the host's default image when absent.
    pub image: Option<String>,
    /// Host name inside; the sprite's name when absent.
    pub hostname: Option<String>,
    pub limits: Option<Limits>,
    /// Its own environment: every command and service gets it.
    pub environment: BTreeMap<String, String>,
    /// The names it may reach from its first moment (a class's policy).
    pub network_policy: sprites_wire::policy::NetworkPolicy,
}

/// The most variables, and bytes of names and values, an environment may
/// hold.
const MAX_VARIABLES: usize = 256;
const MAX_ENVIRONMENT_BYTES: usize = 64 << 10;

/// Refuses an environment no command could be given.
fn check_environment(env: &BTreeMap<String, String>) -> Result<()> {
    let bytes: usize = env.iter().map(|(k, v)| k.len() + v.len()).sum();
    if env.len() > MAX_VARIABLES || bytes > MAX_ENVIRONMENT_BYTES {
        return Err(Error::Invalid(format!(
            "environment: at most {MAX_VARIABLES} variables and {} KiB",
            MAX_ENVIRONMENT_BYTES >> 10
        )));
    }
    if !sprite_init::command_is_passable(std::iter::empty(), env.iter()) {
        return Err(Error::Invalid(
            "environment: names without '=' and nothing with NUL".into(),
        ));
    }
    Ok(())
}

static STAGING_SEQ: AtomicU64 = AtomicU64::new(0);

impl Host {
    /// Creates and starts a sprite. Fails with `AlreadyExists` when the name
    /// is taken, `ImageMissing` when the image has not been built.
    pub async fn create(&self, name: &SpriteName, opts: CreateOptions) -> Result<SpriteInfo> {
        step("create.begin");
        let _guard = self.lock(name).await;
        let paths = self.paths(name);
        if paths.dir.exists() {
            return Err(Error::AlreadyExists(name.to_string()));
        }
        check_environment(&opts.environment)?;
        crate::net::policy::Policy::new(&opts.network_policy)?;
        let image = crate::image::current(
            &self.pool,
            opts.image.as_deref().unwrap_or(&self.cfg.default_image),
        )?;
        let hostname = match opts.hostname {
            Some(h) => SpriteName::parse(&h)?.to_string(),
            None => name.to_string(),
        };
        let rec = SpriteRecord {
            name: name.to_string(),
            hostname,
            image: format!("{}@{}", image.name, image.hash),
            created_at: crate::now_ms(),
            desired: Desired::Running,
            limits: opts.limits.unwrap_or_default(),
            origin: None,
            current: None,
            next_checkpoint: 0,
            next_hidden: 0,
            activity: super::Activity::started_now(),
            environment: opts.environment,
            network_policy: opts.network_policy,
            privileges: Default::default(),
        };
        self.stage_and_publish(name, &rec, |root| btrfs::snapshot(&image.path, root, false))
            .await?;
        step("create.published");
        let paths = self.paths(name);
        let started = match self.write_environment(name, &rec.environment) {
            Ok(()) => self.start_sandbox(name, &paths, &rec).await,
            Err(e) => Err(e),
        };
        if let Err(e) = started {
            // All or nothing: a sprite that cannot start is not left behind.
            if let Err(cleanup) = self.destroy_locked(name).await {
                tracing::error!(sprite = %name, error = %cleanup, "cannot remove a sprite that failed to start");
            }
            return Err(e);
        }
        self.emit(name, super::Phase::Running);
        self.info(name, rec)
    }

    /// Puts the sprite's environment where its init reads it, through the
    /// sprite's own file system (a link in its image leads nowhere else).
    fn write_environment(&self, name: &SpriteName, env: &BTreeMap<String, String>) -> Result<()> {
        if env.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_vec_pretty(env).expect("an environment serializes");
        self.files(name)?
            .write(sprite_init::ENVIRONMENT_FILE, &json, Some(0o644), true)?;
        Ok(())
    }

    /// Makes a sprite directory in staging whose root `make_root` fills,
    /// then publishes it under `name` with one rename.
    pub(crate) async fn stage_and_publish(
        &self,
        name: &SpriteName,
        rec: &SpriteRecord,
        make_root: impl FnOnce(&std::path::Path) -> std::io::Result<()>,
    ) -> Result<()> {
        let seq = STAGING_SEQ.fetch_add(1, Ordering::Relaxed);
        let staged = Paths::new(
            self.dir
                .join("staging")
                .join(format!("{name}.{}-{seq}", std::process::id())),
        );
        let result = (|| {
            for d in [&staged.dir, &staged.checkpoints, &staged.checkpoint_meta] {
                std::fs::create_dir_all(d).map_err(|e| Error::path("cannot create", d, e))?;
            }
            make_root(&staged.root).map_err(|e| Error::path("cannot snapshot", &staged.root, e))?;
            btrfs::limit_referenced(&staged.root, rec.limits.disk_bytes)
                .map_err(|e| Error::path("cannot set quota", &staged.root, e))?;
            record::write(&staged.record, rec)?;
            step("create.staged");
            let target = self.paths(name).dir;
            // rename(2) would replace an empty directory; the lock and this
            // check keep two creations of one name apart.
            if target.exists() {
                return Err(Error::AlreadyExists(name.to_string()));
            }
            std::fs::rename(&staged.dir, &target)
                .map_err(|e| Error::path("cannot publish", &target, e))?;
            record::sync_dir(target.parent().unwrap())
        })();
        if result.is_err() {
            let _ = btrfs::remove_tree(&staged.dir);
        }
        result
    }
}

impl Origin {
    pub fn of(sprite: &SpriteName, checkpoint: Option<sprites_wire::CheckpointId>) -> Origin {
        Origin {
            sprite: sprite.to_string(),
            checkpoint,
        }
    }
}
