//! The calls of [`Files`] that are one question and one answer, as
//! messages, for a sprite's files kept on another machine: the host that
//! keeps them makes each with [`Files::answer`]. Reading a file and
//! writing one stream, and go over connections of their own
//! (`crate::remote`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Files, IdTable};
use crate::error::{Error, Result};

/// One call and its arguments, each as [`Files`] names them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum FileCall {
    Stat {
        path: String,
    },
    ListOrStat {
        path: String,
    },
    Walk {
        path: String,
        max: usize,
    },
    Remove {
        path: String,
        recursive: bool,
    },
    Mkdir {
        path: String,
        parents: bool,
    },
    Rename {
        from: String,
        to: String,
    },
    Copy {
        from: String,
        to: String,
        recursive: bool,
        keep: bool,
    },
    Chmod {
        path: String,
        mode: u32,
        recursive: bool,
    },
    IdOf {
        table: IdTable,
        name: String,
    },
    Chown {
        path: String,
        uid: Option<u32>,
        gid: Option<u32>,
        recursive: bool,
    },
}

fn json<T: Serialize>(value: T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::Fault(format!("cannot write the answer: {e}")))
}

impl Files {
    /// Makes `call`; its answer as JSON.
    pub async fn answer(&self, call: FileCall) -> Result<Value> {
        use FileCall as F;
        match call {
            F::Stat { path } => json(self.stat(&path).await?),
            F::ListOrStat { path } => json(self.list_or_stat(&path).await?),
            F::Walk { path, max } => json(self.walk(&path, max).await?),
            F::Remove { path, recursive } => json(self.remove(&path, recursive).await?),
            F::Mkdir { path, parents } => json(self.mkdir(&path, parents).await?),
            F::Rename { from, to } => json(self.rename(&from, &to).await?),
            F::Copy {
                from,
                to,
                recursive,
                keep,
            } => json(self.copy(&from, &to, recursive, keep).await?),
            F::Chmod {
                path,
                mode,
                recursive,
            } => json(self.chmod(&path, mode, recursive).await?),
            F::IdOf { table, name } => json(self.id_of(table, &name).await?),
            F::Chown {
                path,
                uid,
                gid,
                recursive,
            } => json(self.chown(&path, uid, gid, recursive).await?),
        }
    }
}
