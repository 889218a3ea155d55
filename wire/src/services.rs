//! A sprite's services (`/v1/sprites/{name}/services`), in the shapes of
//! the Sprites SDKs: long-running commands that start at boot and restart
//! when they crash. Changes and logs answer NDJSON [`ServiceLine`]s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where service definitions live inside the sprite, one `<name>.json`
/// (a [`ServiceRequest`]) each: files of the sprite's own disk.
pub const SERVICES_DIR: &str = "/etc/sprite/services";

/// Service names: lowercase letters, digits, `-` and `_`, 1 to 63.
pub fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Where a service's output is also kept on the sprite's own disk, one file
/// per stream (`stdout`, `stderr`), each cut at [`SERVICE_LOG_MAX`] bytes
/// with the previous part kept as `<file>.1`.
pub const SERVICE_LOGS_DIR: &str = "/var/log/sprite/services";

/// The size at which a service's log file starts again (its previous part
/// kept beside it).
pub const SERVICE_LOG_MAX: u64 = 8 << 20;

/// A service's log files by stream: `stdout` and `stderr`.
pub fn service_log_files(service: &str) -> BTreeMap<String, String> {
    ["stdout", "stderr"]
        .into_iter()
        .map(|s| {
            (
                s.to_string(),
                format!("{SERVICE_LOGS_DIR}/{service}.{s}.log"),
            )
        })
        .collect()
}

/// `PUT /v1/sprites/{name}/services/{service}`: what to run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ServiceRequest {
    pub cmd: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub dir: Option<String>,
    /// Services that must be running first.
    #[serde(default)]
    pub needs: Vec<String>,
    /// The port of its HTTP server: the sprite's URL goes there.
    #[serde(default)]
    pub http_port: Option<u16>,
}

/// A service: what it runs and how it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Service {
    pub name: String,
    /// What it runs, as it was put: its fields stand beside `name`.
    #[serde(flatten)]
    pub spec: ServiceRequest,
    pub state: ServiceState,
}

impl Service {
    /// The command line it runs.
    pub fn command_line(&self) -> String {
        std::iter::once(self.spec.cmd.as_str())
            .chain(self.spec.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ServiceState {
    pub name: String,
    /// `stopped`, `starting`, `running`, `stopping` or `failed`.
    pub status: String,
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub restart_count: u32,
    #[serde(default)]
    pub next_restart_at: Option<String>,
}

/// One NDJSON line of a change or of the logs: something the service did
/// or printed (`stdout`, `stderr`, `started`, `exit`, `stopping`,
/// `stopped`, `error`), then `complete`; or an `error` with the reason the
/// stream ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ServiceLine {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// Why the stream failed (`type` is `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `complete`: where the service's whole output is kept in the sprite,
    /// by stream (see [`service_log_files`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_files: Option<BTreeMap<String, String>>,
}

impl ServiceLine {
    /// The line that ends a stream about `service` that went well.
    pub fn complete(timestamp: u64, service: &str) -> ServiceLine {
        ServiceLine {
            kind: "complete".into(),
            data: None,
            exit_code: None,
            timestamp: Some(timestamp),
            error: None,
            log_files: Some(service_log_files(service)),
        }
    }

    /// The last line of a stream that failed.
    pub fn failed(error: String) -> ServiceLine {
        ServiceLine {
            kind: "error".into(),
            data: None,
            exit_code: None,
            timestamp: None,
            error: Some(error),
            log_files: None,
        }
    }

    /// The line as a person reads it in a log; `None` for `complete`.
    pub fn text(&self) -> Option<String> {
        let data = self.data.as_deref().unwrap_or("");
        Some(match self.kind.as_str() {
            "stdout" | "stderr" => data.to_string(),
            "exit" => format!(
                "[exited with code {}]",
                self.exit_code.map_or("?".into(), |c| c.to_string())
            ),
            "complete" => return None,
            "error" if self.error.is_some() => {
                format!("[error: {}]", self.error.as_deref().unwrap_or(""))
            }
            other if data.is_empty() => format!("[{other}]"),
            other => format!("[{other}: {data}]"),
        })
    }
}

/// `POST /v1/sprites/{name}/services/signal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ServiceSignal {
    pub name: String,
    /// `TERM`, `HUP`, `USR1`, ... or a number.
    pub signal: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_read_as_people_expect() {
        let line: ServiceLine =
            serde_json::from_str(r#"{"type":"exit","exit_code":3,"timestamp":1}"#).unwrap();
        assert_eq!(line.text().unwrap(), "[exited with code 3]");
        assert_eq!(ServiceLine::complete(5, "web").text(), None);
        let out: ServiceLine =
            serde_json::from_str(r#"{"type":"stdout","data":"hi","timestamp":1}"#).unwrap();
        assert_eq!(out.text().unwrap(), "hi");
    }
}
