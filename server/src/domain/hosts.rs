//! The hosts of a cluster as the control plane keeps them: what each last
//! said of its room, when it last answered, and which sprites live on it.
//! Every API server writes what it hears; any of them answers from here.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sprites_wire::api::{
    ClusterHost, DrainReport, HostList, HostState, MoveSprite, NotMoved, SpriteMoved,
};
use vmhost::remote::{Fleet, Moved};
use vmhost::{Capacity, SpriteName};

use crate::db::{self, Db};
use crate::error::ApiError;
use crate::AppState;

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
            placed(db, &sprite, host).await?;
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
    cordoned: i64,
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
         h.last_seen_at AS last_seen_at, h.last_error AS last_error, h.cordoned AS cordoned, \
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
            cordoned: r.cordoned != 0,
        })
        .collect();
    Ok(HostList { hosts })
}

/// The cluster, when the sprites live on host daemons.
fn cluster(state: &AppState) -> Result<&Fleet, ApiError> {
    state.cluster.as_deref().ok_or_else(|| {
        ApiError::Conflict(
            "these sprites live on the server's own machine: moving them and draining \
             hosts need host daemons (--host-daemon)"
                .into(),
        )
    })
}

/// The organization and name of the sprite whose name on its host is
/// `sprite`; empty when the API knows no such sprite.
async fn known_as(db: &Db, sprite: &str) -> Result<(String, String), ApiError> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT o.slug, s.name FROM sprites s JOIN organizations o ON o.id = s.org_id \
         WHERE s.host_name = $1",
    )
    .bind(sprite)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.unwrap_or_else(|| (String::new(), sprite.to_string())))
}

/// Writes down that the sprite named `sprite` on its host lives on `host`.
async fn placed(db: &Db, sprite: &str, host: &str) -> Result<(), ApiError> {
    sqlx::query("UPDATE sprites SET machine = $1 WHERE host_name = $2")
        .bind(host)
        .bind(sprite)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Moves sprite `name` of organization `org` to another host.
pub async fn move_sprite(
    state: &AppState,
    org: &str,
    name: &str,
    req: &MoveSprite,
) -> Result<SpriteMoved, ApiError> {
    let fleet = cluster(state)?;
    let host_name: Option<(String,)> = sqlx::query_as(
        "SELECT s.host_name FROM sprites s JOIN organizations o ON o.id = s.org_id \
         WHERE o.slug = $1 AND s.name = $2",
    )
    .bind(org)
    .bind(name)
    .fetch_optional(state.db.pool())
    .await?;
    let Some((host_name,)) = host_name else {
        return Err(ApiError::NotFound(format!("sprite {org}/{name}")));
    };
    let sprite = SpriteName::parse(&host_name).map_err(vmhost::Error::from)?;
    let moved = fleet.move_sprite(&sprite, req.to.as_deref()).await?;
    placed(&state.db, &host_name, &moved.host).await?;
    Ok(sprite_moved(org.to_string(), name.to_string(), moved))
}

fn sprite_moved(organization: String, name: String, moved: Moved) -> SpriteMoved {
    SpriteMoved {
        organization,
        name,
        host: moved.host,
        downtime_ms: moved.downtime_ms,
    }
}

/// Host `host` takes no new sprite (every API server hears it on its next
/// beat), and each of its sprites moves to the other host with the most
/// room.
pub async fn drain(state: &AppState, host: &str) -> Result<DrainReport, ApiError> {
    let fleet = cluster(state)?;
    fleet.member_named(host)?;
    // Written before the fleet's drain closes the host: a heartbeat in
    // between reads it, and does not open the host again.
    set_cordoned(&state.db, host, true).await?;
    let mut report = DrainReport {
        host: host.to_string(),
        moved: Vec::new(),
        failed: Vec::new(),
    };
    for (sprite, moved) in fleet.drain(host).await? {
        let (organization, name) = known_as(&state.db, sprite.as_str()).await?;
        match moved {
            Ok(moved) => {
                placed(&state.db, sprite.as_str(), &moved.host).await?;
                report.moved.push(sprite_moved(organization, name, moved));
            }
            Err(e) => report.failed.push(NotMoved {
                organization,
                name,
                error: e.to_string(),
            }),
        }
    }
    Ok(report)
}

/// Host `host` takes new sprites again.
pub async fn open(state: &AppState, host: &str) -> Result<ClusterHost, ApiError> {
    let fleet = cluster(state)?;
    fleet.member_named(host)?;
    set_cordoned(&state.db, host, false).await?;
    fleet.set_open(host, true)?;
    list(&state.db, state.settings.host_timeout())
        .await?
        .hosts
        .into_iter()
        .find(|h| h.name == host)
        .ok_or_else(|| ApiError::NotFound(format!("host {host}")))
}

async fn set_cordoned(db: &Db, host: &str, cordoned: bool) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO hosts (name, address, cordoned, registered_at) VALUES ($1, '', $2, $3) \
         ON CONFLICT (name) DO UPDATE SET cordoned = excluded.cordoned",
    )
    .bind(host)
    .bind(i64::from(cordoned))
    .bind(db::now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The hosts being drained.
pub async fn cordoned(db: &Db) -> Result<HashSet<String>, ApiError> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM hosts WHERE cordoned = 1")
        .fetch_all(db.pool())
        .await?;
    Ok(rows.into_iter().map(|(name,)| name).collect())
}
