//! The control plane's heartbeat, with sprites kept on host daemons. Every
//! API server beats; what they write agrees. Each beat:
//!
//! 1. asks each host its room, and writes down what it said, or that it
//!    said nothing;
//! 2. makes the fleet and PostgreSQL agree on where each sprite lives (a
//!    new sprite's host is written; otherwise the row wins);
//! 3. gives each host that answered its hold for another lease: the
//!    sprites the rows place on it (see the fence in `vmhost::sprite`);
//!    a returning host's copies of sprites placed elsewhere are dropped;
//! 4. brings the sprites of each host silent for longer than the host
//!    timeout back on the others (`domain::hosts::fail_over`);
//! 5. reads back which hosts are being drained.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use vmhost::remote::Fleet;

use crate::db::Db;
use crate::domain::hosts;

/// How often hosts are asked at most; an answer slower than a beat is
/// none.
pub const EVERY: Duration = Duration::from_secs(5);

/// What a beat needs.
pub struct Heart {
    pub db: Db,
    pub fleet: Arc<Fleet>,
    /// Each host's address, by name.
    pub addresses: HashMap<String, String>,
    /// How long a host may be silent before its sprites come back
    /// elsewhere.
    pub timeout: Duration,
}

impl Heart {
    /// The time between beats: a sixth of the host timeout, so a host's
    /// lease (half of it, by default) is renewed twice or more within it.
    pub fn every(&self) -> Duration {
        (self.timeout / 6).clamp(Duration::from_millis(100), EVERY)
    }

    /// Beats for as long as the server runs.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                self.beat().await;
                tokio::time::sleep(self.every()).await;
            }
        })
    }

    /// One beat (see the module).
    pub async fn beat(&self) {
        let answered = self.hear().await;
        let rows = match hosts::placements(&self.db).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "where the sprites live is not known");
                return;
            }
        };
        hosts::reconcile_places(&self.db, &self.fleet, &rows).await;
        let members = self.fleet.members();
        let holds = members
            .iter()
            .zip(&answered)
            .filter(|(_, up)| **up)
            .map(|(member, _)| hosts::hold(&self.fleet, member, &rows));
        join_all(holds).await;
        if members.iter().any(|m| m.verbs.replicates()) {
            self.fail_over().await;
        }
        // Hosts another API server began or stopped draining.
        match hosts::cordoned(&self.db).await {
            Ok(cordoned) => {
                for member in members {
                    let _ = self
                        .fleet
                        .set_open(&member.name, !cordoned.contains(&member.name));
                }
            }
            Err(e) => tracing::warn!(error = %e, "which hosts are drained is not known"),
        }
    }

    /// Asks every host its room and writes down what each said; which
    /// answered.
    async fn hear(&self) -> Vec<bool> {
        let every = self.every();
        let members = self.fleet.members();
        let rooms = join_all(
            members
                .iter()
                .map(|m| tokio::time::timeout(every, m.verbs.capacity())),
        )
        .await;
        let mut answered = Vec::new();
        for (member, room) in members.iter().zip(rooms) {
            let answer = match &room {
                Ok(Ok(room)) => Ok(room),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {every:?}")),
            };
            answered.push(answer.is_ok());
            let address = self.addresses.get(&member.name).map_or("", String::as_str);
            if let Err(e) = hosts::heard(&self.db, &member.name, address, answer).await {
                tracing::warn!(host = %member.name, error = %e, "what the host said is not written down");
            }
        }
        answered
    }

    /// The sprites of every lost host, back on the others.
    async fn fail_over(&self) {
        let lost = match hosts::lost(&self.db, self.timeout).await {
            Ok(lost) => lost,
            Err(e) => {
                tracing::warn!(error = %e, "which hosts are lost is not known");
                return;
            }
        };
        for host in lost {
            if self.fleet.member_named(&host).is_err() {
                continue;
            }
            if let Err(e) = hosts::fail_over(&self.db, &self.fleet, &host).await {
                tracing::warn!(host = %host, error = %e, "a lost host's sprites are not all back");
            }
        }
    }
}
