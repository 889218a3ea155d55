//! The control plane's heartbeat, with sprites kept on host daemons:
//! every few seconds each host is asked its room, and what it said (or
//! that it said nothing) is written down, with the host each sprite lives
//! on; which hosts are being drained is read back. Every API server
//! beats; what they write agrees.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use vmhost::remote::Fleet;

use crate::db::Db;
use crate::domain::hosts;

/// How often hosts are asked; an answer slower than this is none.
pub const EVERY: Duration = Duration::from_secs(5);

/// Beats for as long as the server runs; `addresses`: each host's, by name.
pub fn spawn_heartbeat(
    db: Db,
    fleet: Arc<Fleet>,
    addresses: HashMap<String, String>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            beat(&db, &fleet, &addresses).await;
            tokio::time::sleep(EVERY).await;
        }
    })
}

/// One round: every host's room, then the sprites' places.
pub async fn beat(db: &Db, fleet: &Fleet, addresses: &HashMap<String, String>) {
    let rooms = join_all(
        fleet
            .members()
            .iter()
            .map(|m| tokio::time::timeout(EVERY, m.verbs.capacity())),
    )
    .await;
    for (member, room) in fleet.members().iter().zip(rooms) {
        let answer = match &room {
            Ok(Ok(room)) => Ok(room),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", EVERY.as_secs())),
        };
        let address = addresses.get(&member.name).map_or("", String::as_str);
        if let Err(e) = hosts::heard(db, &member.name, address, answer).await {
            tracing::warn!(host = %member.name, error = %e, "what the host said is not written down");
        }
    }
    if let Err(e) = hosts::settle(db, &fleet.places()).await {
        tracing::warn!(error = %e, "where the sprites live is not written down");
    }
    // Hosts another API server began or stopped draining.
    match hosts::cordoned(db).await {
        Ok(cordoned) => {
            for member in fleet.members() {
                let _ = fleet.set_open(&member.name, !cordoned.contains(&member.name));
            }
        }
        Err(e) => tracing::warn!(error = %e, "which hosts are drained is not known"),
    }
}
