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

/// A sprite's place as the control plane keeps it.
#[derive(sqlx::FromRow)]
pub struct Placement {
    pub host_name: String,
    pub machine: Option<String>,
    pub generation: i64,
}

/// Every sprite's place.
pub async fn placements(db: &Db) -> Result<Vec<Placement>, ApiError> {
    Ok(
        sqlx::query_as("SELECT host_name, machine, generation FROM sprites")
            .fetch_all(db.pool())
            .await?,
    )
}

/// Makes the fleet and the control plane agree on where each sprite
/// lives: a row that names no host yet takes the fleet's (a new sprite);
/// otherwise the row wins, as a move or a failover wrote it. How many
/// rows were written.
pub async fn reconcile_places(db: &Db, fleet: &Fleet, rows: &[Placement]) -> usize {
    let places = fleet.places();
    let mut written = 0;
    for row in rows {
        let known = places.get(&row.host_name);
        match (&row.machine, known) {
            (None, Some(host)) => match placed(db, &row.host_name, host).await {
                Ok(()) => written += 1,
                Err(e) => {
                    tracing::warn!(sprite = %row.host_name, error = %e, "its host is not written down")
                }
            },
            (Some(machine), known) if known != Some(machine) => {
                if let Ok(name) = SpriteName::parse(&row.host_name) {
                    // A host this server does not know: its own cluster's.
                    let _ = fleet.place(&name, machine);
                }
            }
            _ => {}
        }
    }
    written
}

/// Gives host `member` its hold for another lease: the sprites the rows
/// place on it (or, for a new sprite, `places`, the fleet's). What it
/// had fenced and the rows place on another host that has it is forgotten
/// there; what it wants woken is woken. A host whose lease does not fit
/// one and a half times in `timeout` is told of in the log.
pub async fn hold(
    db: &Db,
    fleet: &Fleet,
    member: &vmhost::remote::Member,
    rows: &[Placement],
    places: &HashMap<String, String>,
    timeout: Duration,
) {
    let mine = |row: &&Placement| match &row.machine {
        Some(machine) => *machine == member.name,
        None => places.get(&row.host_name) == Some(&member.name),
    };
    let names: Vec<SpriteName> = rows
        .iter()
        .filter(mine)
        .filter_map(|row| SpriteName::parse(&row.host_name).ok())
        .collect();
    let sent_at = db::now_ms().max(0) as u64;
    let held = match member.verbs.hold(&names, sent_at).await {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(host = %member.name, error = %e, "the host's hold was not given");
            return;
        }
    };
    if held.lease_ms.saturating_mul(3) / 2 >= timeout.as_millis() as u64 {
        tracing::error!(host = %member.name, lease_ms = held.lease_ms, ?timeout, "the host's lease is too long for the host timeout: a lost host's sprites could come back before it fences them");
    }
    for name in held.to_wake {
        let verbs = member.verbs.clone();
        tokio::spawn(async move {
            if let Err(e) = verbs.wake(&name).await {
                tracing::warn!(sprite = %name, error = %e, "a sprite held again does not wake");
            }
        });
    }
    let by_name: HashMap<&str, &Placement> =
        rows.iter().map(|r| (r.host_name.as_str(), r)).collect();
    for name in held.fenced {
        let Some(Some(elsewhere)) = by_name.get(name.as_str()).map(|r| &r.machine) else {
            continue;
        };
        if *elsewhere == member.name {
            continue;
        }
        // Only a copy another host has is dropped, as the row says now.
        let Ok(other) = fleet.member_named(elsewhere) else {
            continue;
        };
        if other.verbs.get(&name).await.is_err() {
            continue;
        }
        match machine_of(db, name.as_str()).await {
            Ok(Some(now)) if now == *elsewhere => {}
            _ => continue,
        }
        match member.verbs.forget(&name).await {
            Ok(()) => {
                tracing::info!(sprite = %name, host = %member.name, now_on = %elsewhere, "a returning host's copy is dropped")
            }
            Err(e) => tracing::warn!(sprite = %name, error = %e, "a returning host keeps its copy"),
        }
    }
}

/// The host the row of the sprite named `sprite` on its host places it on.
async fn machine_of(db: &Db, sprite: &str) -> Result<Option<String>, ApiError> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT machine FROM sprites WHERE host_name = $1")
            .bind(sprite)
            .fetch_optional(db.pool())
            .await?;
    Ok(row.and_then(|(machine,)| machine))
}

/// The hosts silent for longer than `timeout` that still have sprites.
pub async fn lost(db: &Db, timeout: Duration) -> Result<Vec<String>, ApiError> {
    let since = db::now_ms() - timeout.as_millis() as i64;
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT h.name FROM hosts h WHERE h.last_seen_at IS NOT NULL AND h.last_seen_at < $1 \
         AND EXISTS (SELECT 1 FROM sprites s WHERE s.machine = h.name)",
    )
    .bind(since)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.into_iter().map(|(name,)| name).collect())
}

/// Brings every sprite of lost host `host` back on the other hosts from
/// its last state in the object store; how many came back.
///
/// Each is claimed first ([`claim`]), so of several API servers doing
/// this at once one brings it back, and none once the host answers again;
/// one that cannot come back (never shipped, no room) is given back to
/// its host.
pub async fn fail_over(
    db: &Db,
    fleet: &Fleet,
    host: &str,
    timeout: Duration,
) -> Result<usize, ApiError> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT host_name, generation FROM sprites WHERE machine = $1")
            .bind(host)
            .fetch_all(db.pool())
            .await?;
    let mut back = 0;
    for (sprite, generation) in rows {
        let Ok(name) = SpriteName::parse(&sprite) else {
            continue;
        };
        let to = match fleet.roomiest_but(host, 0).await {
            Ok(to) => to,
            Err(e) => {
                tracing::warn!(sprite = %name, error = %e, "a lost host's sprite has nowhere to go");
                continue;
            }
        };
        if !claim(db, &sprite, host, &to, generation, timeout).await? {
            continue;
        }
        match fleet.take_over(&name, &to).await {
            Ok(taken) => {
                resumed(db, &sprite, &taken).await?;
                tracing::warn!(sprite = %name, lost = %host, now_on = %to, checkpoint = ?taken.checkpoint, "a lost host's sprite came back");
                back += 1;
            }
            Err(e) => {
                tracing::error!(sprite = %name, lost = %host, error = %e, "a lost host's sprite cannot come back");
                if let Ok(target) = fleet.member_named(&to) {
                    let _ = target.verbs.release(&name).await;
                }
                sqlx::query(
                    "UPDATE sprites SET machine = $1, claimed_at = NULL, resumed_from_host = NULL \
                     WHERE host_name = $2 AND machine = $3 AND generation = $4",
                )
                .bind(host)
                .bind(&sprite)
                .bind(&to)
                .bind(generation + 1)
                .execute(db.pool())
                .await?;
            }
        }
    }
    Ok(back)
}

/// Claims sprite `sprite` (at `generation`) of lost host `lost` for host
/// `to`, in one transaction: the host's row first, locked, and only while
/// it is still silent for `timeout` (a beat that hears it again waits for
/// the claim, then places nothing claimed on it); then the sprite's row,
/// compared and set on its host and generation. Whether it was claimed.
async fn claim(
    db: &Db,
    sprite: &str,
    lost: &str,
    to: &str,
    generation: i64,
    timeout: Duration,
) -> Result<bool, ApiError> {
    let mut tx = db.pool().begin().await?;
    let silent = sqlx::query(
        "UPDATE hosts SET last_error = last_error WHERE name = $1 AND last_seen_at < $2",
    )
    .bind(lost)
    .bind(db::now_ms() - timeout.as_millis() as i64)
    .execute(&mut *tx)
    .await?;
    if silent.rows_affected() != 1 {
        return Ok(false);
    }
    let claimed = sqlx::query(
        "UPDATE sprites SET machine = $1, generation = generation + 1, \
         resumed_from_host = $3, claimed_at = $5, resumed_at = NULL, \
         resumed_checkpoint = NULL, resumed_shipped_at = NULL \
         WHERE host_name = $2 AND machine = $3 AND generation = $4",
    )
    .bind(to)
    .bind(sprite)
    .bind(lost)
    .bind(generation)
    .bind(db::now_ms())
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() != 1 {
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Finishes the take-overs claimed longer than `after` ago and not done
/// (the API server that claimed them stopped halfway): each is taken over
/// again where its row places it (an adoption already made counts);
/// how many came back.
pub async fn finish_claims(db: &Db, fleet: &Fleet, after: Duration) -> Result<usize, ApiError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT host_name, machine FROM sprites WHERE claimed_at IS NOT NULL \
         AND claimed_at < $1 AND resumed_at IS NULL AND machine IS NOT NULL",
    )
    .bind(db::now_ms() - after.as_millis() as i64)
    .fetch_all(db.pool())
    .await?;
    let mut back = 0;
    for (sprite, machine) in rows {
        let Ok(name) = SpriteName::parse(&sprite) else {
            continue;
        };
        if fleet.member_named(&machine).is_err() {
            continue;
        }
        match fleet.take_over(&name, &machine).await {
            Ok(taken) => {
                resumed(db, &sprite, &taken).await?;
                tracing::warn!(sprite = %name, now_on = %machine, "a take-over left halfway is finished");
                back += 1;
            }
            Err(e) => {
                tracing::warn!(sprite = %name, error = %e, "a take-over left halfway is not finished yet")
            }
        }
    }
    Ok(back)
}

/// Writes down what sprite `sprite`, taken over, came back from.
async fn resumed(db: &Db, sprite: &str, taken: &vmhost::remote::TakenOver) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE sprites SET resumed_checkpoint = $1, \
         resumed_shipped_at = $2, resumed_at = $3 WHERE host_name = $4",
    )
    .bind(taken.checkpoint.map(|c| c.to_string()))
    .bind(taken.shipped_at.map(|t| t as i64))
    .bind(db::now_ms())
    .bind(sprite)
    .execute(db.pool())
    .await?;
    Ok(())
}
