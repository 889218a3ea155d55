//! A sprite's listening ports, as `GET /v1/sprites/{name}/ports/watch`
//! (a WebSocket) reports them, and the exec WebSocket too for the ports its
//! command opens: in the shapes of the Sprites SDKs.

use serde::{Deserialize, Serialize};

/// A TCP port something in the sprite listens on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Port {
    pub port: u16,
    /// The address it listens on: `0.0.0.0`, `127.0.0.1`, `::`.
    pub address: String,
    /// The listening process, as the sprite numbers it (0: not known).
    pub pid: u32,
}

/// One message of a port watch: the ports at the start, then each change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PortEvent {
    PortList { ports: Vec<Port> },
    PortOpened(Port),
    PortClosed(Port),
}

impl PortEvent {
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("port events serialize")
    }
}
