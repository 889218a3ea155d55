//! The hosts of a cluster as the control plane keeps them: what each last
//! said of its room, when it last answered, and which sprites live on it.
//! Every API server writes what it hears; any of them answers from here.

use std::collections::HashMap;
use std::time::Duration;

use sprites_wire::api::{ClusterHost, HostList, HostState};
use vmhost::Capacity;

use crate::db::{self, Db};
use crate::error::ApiError;

/// How long a host may stay silent before it counts as down, unless the
/// operator says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Writes down what host `name` at `address` answered when asked its
/// room: the room (it is up now), or why it did not answer.
pub async fn heard(
    db: &Db,
    name: &str,
    address: &str,
    answer: Result<&Capacity, String>,
) -> Result<(), ApiError> {
    let now = db::now_ms();
    let query = match answer {
        Ok(room) => sqlx::query(
            "INSERT INTO hosts (name, address, cpus, memory_bytes, memory_available_bytes, \
             memory_promised_bytes, disk_bytes, disk_free_bytes, running, sleeping, \
             last_seen_at, last_error, registered_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $11) \
             ON CONFLICT (name) DO UPDATE SET address = excluded.address, \
             cpus = excluded.cpus, memory_bytes = excluded.memory_bytes, \
             memory_available_bytes = excluded.memory_available_bytes, \
             memory_promised_bytes = excluded.memory_promised_bytes, \
             disk_bytes = excluded.disk_bytes, disk_free_bytes = excluded.disk_free_bytes, \
             running = excluded.running, sleeping = excluded.sleeping, \
             last_seen_at = excluded.last_seen_at, last_error = NULL",
        )
        .bind(name)
        .bind(address)
        .bind(i64::from(room.cpus))
        .bind(room.memory_bytes as i64)
        .bind(room.memory_available_bytes as i64)
        .bind(room.memory_promised_bytes as i64)
        .bind(room.disk_bytes as i64)
        .bind(room.disk_free_bytes as i64)
        .bind(room.running as i64)
        .bind(room.sleeping as i64)
        .bind(now),
        Err(why) => sqlx::query(
            "INSERT INTO hosts (name, address, last_error, registered_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET address = excluded.address, \
             last_error = excluded.last_error",
        )
        .bind(name)
        .bind(address)
        .bind(why)
        .bind(now),
    };
    query.execute(db.pool()).await?;
    Ok(())
}

/// Records the host each sprite lives on (by its name on its host), for
/// the sprites whose row says otherwise; how many changed. Sprites not in
/// `places` (their host silent) keep what was known.
pub async fn settle(db: &Db, places: &HashMap<String, String>) -> Result<usize, ApiError> {
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT host_name, machine FROM sprites")
            .fetch_all(db.pool())
            .await?;
    let mut changed = 0;
    for (sprite, machine) in rows {
        let Some(host) = places.get(&sprite) else {
            continue;
        };
        if machine.as_deref() != Some(host) {
            sqlx::query("UPDATE sprites SET machine = $1 WHERE host_name = $2")
                .bind(host)
                .bind(&sprite)
                .execute(db.pool())
                .await?;
            changed += 1;
        }
    }
    Ok(changed)
}

#[derive(sqlx::FromRow)]
struct HostRow {
    name: String,
    address: String,
    cpus: i64,
    memory_bytes: i64,
    memory_available_bytes: i64,
    memory_promised_bytes: i64,
    disk_bytes: i64,
    disk_free_bytes: i64,
    running: i64,
    sleeping: i64,
    last_seen_at: Option<i64>,
    last_error: Option<String>,
    sprites: i64,
}

/// Every host, by name; one is silent when it has not answered within
/// `timeout`.
pub async fn list(db: &Db, timeout: Duration) -> Result<HostList, ApiError> {
    let rows = sqlx::query_as::<_, HostRow>(
        "SELECT h.name AS name, h.address AS address, h.cpus AS cpus, \
         h.memory_bytes AS memory_bytes, h.memory_available_bytes AS memory_available_bytes, \
         h.memory_promised_bytes AS memory_promised_bytes, h.disk_bytes AS disk_bytes, \
         h.disk_free_bytes AS disk_free_bytes, h.running AS running, h.sleeping AS sleeping, \
         h.last_seen_at AS last_seen_at, h.last_error AS last_error, \
         (SELECT COUNT(*) FROM sprites s WHERE s.machine = h.name) AS sprites \
         FROM hosts h ORDER BY h.name",
    )
    .fetch_all(db.pool())
    .await?;
    let now = db::now_ms();
    let unsigned = |n: i64| n.max(0) as u64;
    let hosts = rows
        .into_iter()
        .map(|r| ClusterHost {
            state: match r.last_seen_at {
                Some(at) if now - at <= timeout.as_millis() as i64 => HostState::Up,
                _ => HostState::Silent,
            },
            last_seen_at: r.last_seen_at.map(|at| db::iso_ms(unsigned(at))),
            name: r.name,
            address: r.address,
            last_error: r.last_error,
            cpus: r.cpus.clamp(0, i64::from(u32::MAX)) as u32,
            memory_bytes: unsigned(r.memory_bytes),
            memory_available_bytes: unsigned(r.memory_available_bytes),
            memory_promised_bytes: unsigned(r.memory_promised_bytes),
            disk_bytes: unsigned(r.disk_bytes),
            disk_free_bytes: unsigned(r.disk_free_bytes),
            running: unsigned(r.running),
            sleeping: unsigned(r.sleeping),
            sprites: unsigned(r.sprites),
        })
        .collect();
    Ok(HostList { hosts })
}
