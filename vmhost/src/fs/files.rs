//! A sprite's files for async callers ([`crate::Host::sprite_files`],
//! [`crate::Host::checkpoint_files`]): on this machine, the same calls as
//! [`SpriteFs`], each run on the blocking pool, so no caller decides where
//! file work runs; on a host on another machine, each a request to it.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Entry;
use super::{FileCall, IdTable, Kind, NewFile, Reader, SpriteFs};
use crate::error::{Error, Result};

/// A sprite's files, as it is or as a checkpoint keeps it.
#[derive(Clone)]
pub struct Files(Place);

#[derive(Clone)]
enum Place {
    Here(Arc<SpriteFs>),
    Elsewhere(Arc<dyn Elsewhere>),
}

/// Files kept on another machine.
#[async_trait::async_trait]
pub(crate) trait Elsewhere: Send + Sync {
    /// A call of one question and one answer; the answer as JSON.
    async fn call(&self, call: FileCall) -> Result<Value>;
    async fn open_read(&self, path: &str) -> Result<(Reader, u64)>;
    async fn create(
        &self,
        path: &str,
        mode: Option<u32>,
        make_parents: bool,
    ) -> Result<Box<dyn UploadElsewhere>>;
}

/// A file being written on another machine.
#[async_trait::async_trait]
pub(crate) trait UploadElsewhere: Send {
    async fn write(&mut self, data: &[u8]) -> Result<()>;
    async fn finish(self: Box<Self>) -> Result<Entry>;
}

/// Runs `call` on `fs` on the blocking pool.
async fn blocking<T: Send + 'static>(
    fs: Arc<SpriteFs>,
    call: impl FnOnce(&SpriteFs) -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(move || call(&fs))
        .await
        .map_err(|e| Error::Runtime(format!("a file call stopped: {e}")))?
}

/// `call` asked of `far`, its answer as `T`.
async fn ask<T: DeserializeOwned>(far: &Arc<dyn Elsewhere>, call: FileCall) -> Result<T> {
    let value = far.call(call).await?;
    serde_json::from_value(value).map_err(|e| Error::Fault(format!("a bad answer: {e}")))
}

impl Files {
    pub(crate) fn new(fs: SpriteFs) -> Files {
        Files(Place::Here(Arc::new(fs)))
    }

    pub(crate) fn elsewhere(far: Arc<dyn Elsewhere>) -> Files {
        Files(Place::Elsewhere(far))
    }

    /// Runs `call` on this machine's files, or asks the host that keeps
    /// them `far`.
    async fn run<T: DeserializeOwned + Send + 'static>(
        &self,
        far: impl FnOnce() -> FileCall,
        call: impl FnOnce(&SpriteFs) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        match &self.0 {
            Place::Here(fs) => blocking(fs.clone(), call).await,
            Place::Elsewhere(elsewhere) => ask(elsewhere, far()).await,
        }
    }

    pub async fn stat(&self, path: &str) -> Result<Entry> {
        let far = || FileCall::Stat { path: path.into() };
        let path = path.to_string();
        self.run(far, move |fs| fs.stat(&path)).await
    }

    /// The entries of a folder, or the one entry of anything else; the
    /// entry of `path` itself first.
    pub async fn list_or_stat(&self, path: &str) -> Result<(Entry, Vec<Entry>)> {
        let far = || FileCall::ListOrStat { path: path.into() };
        let path = path.to_string();
        self.run(far, move |fs| {
            let me = fs.stat(&path)?;
            let entries = if me.kind == Kind::Dir {
                fs.list(&path)?
            } else {
                vec![me.clone()]
            };
            Ok((me, entries))
        })
        .await
    }

    /// [`SpriteFs::walk`] of folder `path`: the folder's own entry, then
    /// everything below it.
    pub async fn walk(&self, path: &str, max: usize) -> Result<(Entry, Vec<Entry>)> {
        let far = || FileCall::Walk {
            path: path.into(),
            max,
        };
        let path = path.to_string();
        self.run(far, move |fs| {
            let me = fs.stat(&path)?;
            if me.kind != Kind::Dir {
                return Ok((me.clone(), vec![me]));
            }
            Ok((me, fs.walk(&path, max)?))
        })
        .await
    }

    /// A regular file opened for reading, to be read as it streams out,
    /// and its size when opened.
    pub async fn open_read(&self, path: &str) -> Result<(Reader, u64)> {
        let fs = match &self.0 {
            Place::Here(fs) => fs.clone(),
            Place::Elsewhere(far) => return far.open_read(path).await,
        };
        let path = path.to_string();
        blocking(fs, move |fs| {
            let f = fs.open_read(&path)?;
            let size = f
                .metadata()
                .map_err(|e| Error::io(format!("cannot read {path:?}"), e))?
                .len();
            let reader: Reader = Box::new(tokio::fs::File::from_std(f));
            Ok((reader, size))
        })
        .await
    }

    /// [`SpriteFs::create`]: a file written as its bytes arrive.
    pub async fn create(
        &self,
        path: &str,
        mode: Option<u32>,
        make_parents: bool,
    ) -> Result<Upload> {
        let fs = match &self.0 {
            Place::Here(fs) => fs.clone(),
            Place::Elsewhere(far) => {
                let to = far.create(path, mode, make_parents).await?;
                return Ok(Upload(Writing::Elsewhere { to, written: 0 }));
            }
        };
        let path = path.to_string();
        blocking(fs.clone(), move |on| {
            let mut new = on.create(&path, mode, make_parents)?;
            let file = new
                .file()
                .try_clone()
                .map_err(|e| Error::io(format!("cannot write {path:?}"), e))?;
            Ok(Upload(Writing::Here {
                fs,
                new,
                file: tokio::fs::File::from_std(file),
                written: 0,
            }))
        })
        .await
    }

    pub async fn write(
        &self,
        path: &str,
        data: impl AsRef<[u8]> + Send + 'static,
        mode: Option<u32>,
        make_parents: bool,
    ) -> Result<Entry> {
        let fs = match &self.0 {
            Place::Here(fs) => fs.clone(),
            Place::Elsewhere(_) => {
                let mut file = self.create(path, mode, make_parents).await?;
                file.write(data.as_ref()).await?;
                return file.finish().await;
            }
        };
        let path = path.to_string();
        blocking(fs, move |fs| {
            fs.write(&path, data.as_ref(), mode, make_parents)
        })
        .await
    }

    pub async fn remove(&self, path: &str, recursive: bool) -> Result<()> {
        let far = || FileCall::Remove {
            path: path.into(),
            recursive,
        };
        let path = path.to_string();
        self.run(far, move |fs| fs.remove(&path, recursive)).await
    }

    pub async fn mkdir(&self, path: &str, parents: bool) -> Result<Entry> {
        let far = || FileCall::Mkdir {
            path: path.into(),
            parents,
        };
        let path = path.to_string();
        self.run(far, move |fs| fs.mkdir(&path, parents)).await
    }

    pub async fn rename(&self, from: &str, to: &str) -> Result<Entry> {
        let far = || FileCall::Rename {
            from: from.into(),
            to: to.into(),
        };
        let (from, to) = (from.to_string(), to.to_string());
        self.run(far, move |fs| fs.rename(&from, &to)).await
    }

    pub async fn copy(&self, from: &str, to: &str, recursive: bool, keep: bool) -> Result<Entry> {
        let far = || FileCall::Copy {
            from: from.into(),
            to: to.into(),
            recursive,
            keep,
        };
        let (from, to) = (from.to_string(), to.to_string());
        self.run(far, move |fs| fs.copy(&from, &to, recursive, keep))
            .await
    }

    /// Sets the mode of `path` and, with `recursive`, of everything under
    /// it but symlinks (which have none of their own); the entry of `path`.
    pub async fn chmod(&self, path: &str, mode: u32, recursive: bool) -> Result<Entry> {
        let far = || FileCall::Chmod {
            path: path.into(),
            mode,
            recursive,
        };
        let top = path.to_string();
        self.run(far, move |fs| {
            each(fs, &top, recursive, &|p| match fs.chmod(p, mode) {
                Err(Error::FileConflict {
                    errno: "EINVAL", ..
                }) if p != top => fs.stat(p),
                other => other,
            })
        })
        .await
    }

    /// [`SpriteFs::id_of`].
    pub async fn id_of(&self, table: IdTable, name: &str) -> Result<u32> {
        let far = || FileCall::IdOf {
            table,
            name: name.into(),
        };
        let name = name.to_string();
        self.run(far, move |fs| fs.id_of(table, &name)).await
    }

    /// Sets the owner of `path` and, with `recursive`, of everything under
    /// it; the entry of `path`.
    pub async fn chown(
        &self,
        path: &str,
        uid: Option<u32>,
        gid: Option<u32>,
        recursive: bool,
    ) -> Result<Entry> {
        let far = || FileCall::Chown {
            path: path.into(),
            uid,
            gid,
            recursive,
        };
        let top = path.to_string();
        self.run(far, move |fs| {
            each(fs, &top, recursive, &|p| fs.chown(p, uid, gid))
        })
        .await
    }
}

/// Applies `f` to `path` and, with `recursive`, to everything under it.
fn each(
    fs: &SpriteFs,
    path: &str,
    recursive: bool,
    f: &dyn Fn(&str) -> Result<Entry>,
) -> Result<Entry> {
    let top = f(path)?;
    if recursive && top.kind == Kind::Dir {
        for child in fs.list(path)? {
            each(fs, &child.path, true, f)?;
        }
    }
    Ok(top)
}

/// A file being written from async code ([`Files::create`]). Dropped
/// before [`Upload::finish`], it leaves the old file (or none) in place.
pub struct Upload(Writing);

enum Writing {
    Here {
        fs: Arc<SpriteFs>,
        new: NewFile,
        file: tokio::fs::File,
        written: u64,
    },
    Elsewhere {
        to: Box<dyn UploadElsewhere>,
        written: u64,
    },
}

impl Upload {
    /// Appends `data`.
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        match &mut self.0 {
            Writing::Here {
                new, file, written, ..
            } => {
                file.write_all(data)
                    .await
                    .map_err(|e| Error::io(format!("cannot write {:?}", new.path), e))?;
                *written += data.len() as u64;
            }
            Writing::Elsewhere { to, written } => {
                to.write(data).await?;
                *written += data.len() as u64;
            }
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        match &self.0 {
            Writing::Here { written, .. } | Writing::Elsewhere { written, .. } => *written,
        }
    }

    /// [`NewFile::finish`]: the file in place, and its entry.
    pub async fn finish(self) -> Result<Entry> {
        use tokio::io::AsyncWriteExt;
        match self.0 {
            Writing::Here {
                fs, new, mut file, ..
            } => {
                let path = new.path.clone();
                file.flush()
                    .await
                    .map_err(|e| Error::io(format!("cannot write {path:?}"), e))?;
                blocking(fs, move |fs| new.finish(fs)).await
            }
            Writing::Elsewhere { to, .. } => to.finish().await,
        }
    }
}
