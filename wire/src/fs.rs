//! A sprite's files (`/v1/sprites/{name}/fs/*`) and the file-watch
//! WebSocket (`GET /v1/sprites/{name}/fs/watch`), in the shapes the
//! official SDKs' filesystem APIs send and read.
//!
//! Every file call acts as the sprite's root, the user its commands run
//! as: the SDKs' `asRoot` flag is accepted and changes nothing. Reads and
//! writes stream, with the sprite's disk quota as their only size limit.

use serde::{Deserialize, Serialize};

use crate::api::EntryKind;

/// What a client sends. Each `subscribe` replaces what the connection
/// watched before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WatchRequest {
    Subscribe {
        /// Absolute, or relative to `workingDir`.
        paths: Vec<String>,
        /// Also every folder below them, those made later included.
        #[serde(default)]
        recursive: bool,
        #[serde(
            default,
            rename = "workingDir",
            skip_serializing_if = "Option::is_none"
        )]
        working_dir: Option<String>,
    },
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WatchMessage {
    /// The paths now watched, absolute.
    Subscribed { paths: Vec<String> },
    Event {
        /// The absolute path in the sprite.
        path: String,
        /// `write`, `create`, `remove`, `rename` (moved away from this
        /// path; where it went, if watched, is a `create`) or `chmod`.
        event: String,
        /// RFC 3339, milliseconds.
        timestamp: String,
        /// After a write, the file's size.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
        #[serde(rename = "isDir")]
        is_dir: bool,
    },
    /// Something could not be watched; the connection goes on.
    Error { message: String },
}

/// A file, directory or link in a sprite (`/v1/sprites/{name}/fs/*`), in
/// the SDKs' spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    pub name: String,
    /// Absolute inside the sprite.
    pub path: String,
    #[serde(default)]
    pub size: u64,
    /// Octal, four digits: `0644`.
    #[serde(default)]
    pub mode: String,
    /// RFC 3339, seconds.
    #[serde(default)]
    pub mod_time: String,
    #[serde(default)]
    pub is_dir: bool,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub link_target: Option<String>,
}

/// `GET .../fs/list`: a directory's entries, or the one entry of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    pub path: String,
    #[serde(default)]
    pub is_dir: bool,
    #[serde(default)]
    pub entries: Vec<FileEntry>,
}

/// `POST .../fs/mkdir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Mkdir {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub parents: bool,
}

/// `POST .../fs/rename` and `.../fs/copy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Move {
    pub source: String,
    pub dest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Copies only; a directory's contents too (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recursive: Option<bool>,
    /// Copies only: keep owners, modes and times (`cp -p`). Without it a
    /// copy belongs to the sprite's root, is made now, and has the
    /// source's permission bits less group and other write and set-id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_attrs: Option<bool>,
}

/// `POST .../fs/chmod`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Chmod {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Octal: `0644`, `755`.
    pub mode: String,
    #[serde(default)]
    pub recursive: bool,
}

/// `POST .../fs/chown`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Chown {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// The new owner; left as it is when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<Owner>,
    /// The new group; left as it is when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<Owner>,
    #[serde(default)]
    pub recursive: bool,
}

/// A user or group, by id or by the name the sprite's own `/etc/passwd` or
/// `/etc/group` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Owner {
    Id(u32),
    Name(String),
}

/// `path` made absolute against `working_dir` (default `/`), with `.` and
/// `..` taken out as a shell would (never above `/`).
pub fn absolute(path: &str, working_dir: Option<&str>) -> String {
    let base = match working_dir.filter(|w| !w.is_empty()) {
        Some(w) if !path.starts_with('/') => w,
        _ => "/",
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in base.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_absolute_and_plain() {
        assert_eq!(absolute("/root/site", None), "/root/site");
        assert_eq!(absolute("site", Some("/root")), "/root/site");
        assert_eq!(absolute("site/../docs/.", Some("/root/")), "/root/docs");
        assert_eq!(absolute("../../..", Some("/root")), "/");
        assert_eq!(absolute("/etc", Some("/root")), "/etc");
    }

    #[test]
    fn messages_read_as_the_sdk_sends_and_expects_them() {
        let r: WatchRequest = serde_json::from_str(
            r#"{"type":"subscribe","paths":["a"],"recursive":true,"workingDir":"/root"}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            WatchRequest::Subscribe {
                paths: vec!["a".into()],
                recursive: true,
                working_dir: Some("/root".into())
            }
        );
        let m = WatchMessage::Event {
            path: "/root/a".into(),
            event: "write".into(),
            timestamp: "2026-12-06T07:00:00.000Z".into(),
            size: Some(3),
            is_dir: false,
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"type":"event","path":"/root/a","event":"write",
                "timestamp":"2026-12-06T07:00:00.000Z","size":3,"isDir":false})
        );
    }
}
