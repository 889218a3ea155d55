//! `/v1/sprites/{name}/control`: one WebSocket that carries operation after
//! operation (a command, a file read or write, a TCP connection), so a
//! client pays one connection per sprite instead of one per call; the
//! Sprites SDKs' control mode.
//!
//! 1. The client sends a text message `control:` + an [`Envelope::Start`]
//!    naming the operation and its arguments; the server answers
//!    [`Envelope::Ack`].
//! 2. While it runs, every message without the prefix belongs to it, in
//!    the framing of the operation's own route: `exec` as the exec
//!    WebSocket (stream bytes, `resize` and `signal` messages, its
//!    `session_info` and exit); `fs.read` sends the file's bytes as binary
//!    messages; `fs.write` takes them, an empty binary message ending the
//!    file; `proxy` carries a TCP connection's bytes both ways, an empty
//!    binary message from the client ending its side.
//! 3. It ends with [`Envelope::Complete`] (with the command's exit code,
//!    or the file's size) or [`Envelope::Error`]; then the next may start.
//!    One runs at a time: a start meanwhile is refused `op.busy`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What begins every control message.
pub const PREFIX: &str = "control:";

/// A control message, either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Envelope {
    #[serde(rename = "op.start")]
    Start {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// `exec`, `fs.read`, `fs.write` or `proxy`.
        op: String,
        /// The query of the operation's own route, as strings (numbers and
        /// booleans are taken too); a list for a repeated one (`cmd`, `env`).
        #[serde(default)]
        args: BTreeMap<String, Arg>,
    },
    #[serde(rename = "op.ack")]
    Ack {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    #[serde(rename = "op.complete")]
    Complete {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        args: Completed,
    },
    #[serde(rename = "op.error")]
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        op: Option<String>,
        args: Failed,
    },
}

impl Envelope {
    /// The message as sent: [`PREFIX`] and the JSON.
    pub fn to_text(&self) -> String {
        format!(
            "{PREFIX}{}",
            serde_json::to_string(self).expect("control messages serialize")
        )
    }

    /// A message's envelope: `None` for a message that is not one (it
    /// belongs to the running operation); an error for one that has the
    /// prefix but does not decode.
    pub fn parse(text: &str) -> Option<Result<Envelope, serde_json::Error>> {
        text.strip_prefix(PREFIX).map(serde_json::from_str)
    }
}

/// One argument of [`Envelope::Start`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Arg {
    Text(String),
    Flag(bool),
    Number(i64),
    Many(Vec<Arg>),
}

impl Arg {
    /// The argument's values as a query would give them.
    pub fn values(&self) -> Vec<String> {
        match self {
            Arg::Text(s) => vec![s.clone()],
            Arg::Flag(b) => vec![b.to_string()],
            Arg::Number(n) => vec![n.to_string()],
            Arg::Many(all) => all.iter().flat_map(Arg::values).collect(),
        }
    }
}

/// How an operation ended well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completed {
    pub ok: bool,
    /// `exec`: the command's exit code.
    #[serde(default, rename = "exitCode", skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// `fs.read` and `fs.write`: the file's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Why an operation was refused or failed: `code` is the API's error code
/// (or `op.busy`, `op.not_found`, `op.not_active`, `op.invalid`), `message`
/// its sentence, repeated as `error`, which is where the SDKs read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub error: String,
}

impl Failed {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Failed {
        let message = message.into();
        Failed {
            code: code.into(),
            error: message.clone(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_read_as_the_sdks_send_them() {
        // @fly/sprites: strings; sprites-py may send booleans and numbers.
        let text = r#"control:{"type":"op.start","op":"exec","args":{"cmd":["sh","-c","true"],"env":["A=1"],"tty":true,"rows":40,"stdin":"false"}}"#;
        let Some(Ok(Envelope::Start { op, args, id })) = Envelope::parse(text) else {
            panic!("not a start");
        };
        assert_eq!((op.as_str(), id), ("exec", None));
        assert_eq!(args["cmd"].values(), ["sh", "-c", "true"]);
        assert_eq!(args["tty"].values(), ["true"]);
        assert_eq!(args["rows"].values(), ["40"]);
        assert!(Envelope::parse("{\"type\":\"resize\"}").is_none());
        assert!(matches!(Envelope::parse("control:{"), Some(Err(_))));
        let done = Envelope::Complete {
            id: None,
            args: Completed {
                ok: true,
                exit_code: Some(3),
                size: None,
            },
        };
        assert_eq!(
            done.to_text(),
            r#"control:{"type":"op.complete","args":{"ok":true,"exitCode":3}}"#
        );
    }
}
