//! A sprite's listening ports, followed: the `ports/watch` WebSocket, and
//! the port events of exec WebSockets (the CLI forwards the ports a
//! command opens). Each follower asks the host every [`POLL`] (a read of
//! the sprite's socket tables, tens of microseconds) and reports the
//! difference; asking keeps no sprite awake.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use sprites_wire::ports::{Port, PortEvent};
use sprites_wire::SpriteName;

use crate::domain::access;
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::AppState;

/// How often a follower asks.
pub const POLL: Duration = Duration::from_millis(250);

/// The ports of one sprite, followed.
pub struct PortWatch {
    state: AppState,
    host: SpriteName,
    /// By port and address.
    known: BTreeMap<(u16, String), Port>,
    pending: VecDeque<PortEvent>,
}

/// Ports by what tells them apart: port and address (a pid may change).
fn by_key(ports: Vec<Port>) -> BTreeMap<(u16, String), Port> {
    ports
        .into_iter()
        .map(|p| ((p.port, p.address.clone()), p))
        .collect()
}

/// The ports of the caller's sprite `name`: first the list, then each
/// change.
pub async fn watch(state: &AppState, caller: &Caller, name: &str) -> Result<PortWatch, ApiError> {
    let host = access::host_sprite(state, caller, name).await?;
    let ports = state.host.ports(&host).await?;
    let mut w = PortWatch::new(state, host, &ports);
    w.pending.push_back(PortEvent::PortList { ports });
    Ok(w)
}

/// The changes of sprite `host`'s ports from now on (what already listens
/// is not reported).
pub async fn changes(state: &AppState, host: &SpriteName) -> PortWatch {
    let ports = state.host.ports(host).await.unwrap_or_default();
    PortWatch::new(state, host.clone(), &ports)
}

impl PortWatch {
    fn new(state: &AppState, host: SpriteName, ports: &[Port]) -> PortWatch {
        PortWatch {
            state: state.clone(),
            host,
            known: by_key(ports.to_vec()),
            pending: VecDeque::new(),
        }
    }

    /// The next event; `None` once the sprite is gone.
    pub async fn next(&mut self) -> Option<PortEvent> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            tokio::time::sleep(POLL).await;
            if !self.look().await {
                return None;
            }
        }
    }

    /// The changes since the last look, looking now (a command that exits
    /// tells of the ports it closed on its way out).
    pub async fn changes_now(&mut self) -> Vec<PortEvent> {
        self.look().await;
        self.pending.drain(..).collect()
    }

    /// Asks the host and queues the differences; false once the sprite is
    /// gone.
    async fn look(&mut self) -> bool {
        let now = match self.state.host.ports(&self.host).await {
            Ok(ports) => ports,
            Err(vmhost::Error::NotFound(_)) => return false,
            Err(e) => {
                tracing::debug!(sprite = %self.host, error = %e, "cannot read the sprite's ports");
                return true;
            }
        };
        let now = by_key(now);
        for (key, port) in &self.known {
            if !now.contains_key(key) {
                self.pending.push_back(PortEvent::PortClosed(port.clone()));
            }
        }
        for (key, port) in &now {
            if !self.known.contains_key(key) {
                self.pending.push_back(PortEvent::PortOpened(port.clone()));
            }
        }
        self.known = now;
        true
    }
}
