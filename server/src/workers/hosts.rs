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
    /// When this server began to beat: it brings nothing back until it
    /// has itself asked the hosts for a whole host timeout (after every
    /// API server was down, every host's last answer is old).
    pub since: std::time::Instant,
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
        let places = self.fleet.places();
        let up: Vec<_> = members
            .iter()
            .zip(&answered)
            .filter(|(_, up)| **up)
            .map(|(member, _)| member)
            .collect();
        let holds = up.iter().map(|member| {
            let hold = hosts::hold(&self.db, &self.fleet, member, &rows, &places, self.timeout);
            tokio::time::timeout(self.every(), hold)
        });
        for (done, member) in join_all(holds).await.into_iter().zip(&up) {
            if done.is_err() {
                tracing::warn!(host = %member.name, "the host's hold took longer than a beat");
            }
        }
        let heard_long_enough = self.since.elapsed() > self.timeout;
        if heard_long_enough && members.iter().any(|m| m.verbs.replicates()) {
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
            let up = answer.is_ok();
            let address = self.addresses.get(&member.name).map_or("", String::as_str);
            // Held only when written down: a hold of a host whose answers
            // are not would keep it running after the others count it lost.
            let written = hosts::heard(&self.db, &member.name, address, answer).await;
            if let Err(e) = &written {
                tracing::warn!(host = %member.name, error = %e, "what the host said is not written down");
            }
            answered.push(up && written.is_ok());
        }
        answered
    }

    /// The sprites of every lost host, back on the others; take-overs
    /// left halfway, finished.
    async fn fail_over(&self) {
        if let Err(e) = hosts::finish_claims(&self.db, &self.fleet, self.timeout).await {
            tracing::warn!(error = %e, "take-overs left halfway are not finished");
        }
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
            if let Err(e) = hosts::fail_over(&self.db, &self.fleet, &host, self.timeout).await {
                tracing::warn!(host = %host, error = %e, "a lost host's sprites are not all back");
            }
        }
    }
}
