//! What classes do with sprites: assignments and shared workspaces.
//!
//! - An **assignment** is a checkpoint of a teacher's sprite in the class,
//!   kept as an image (O(1), `Host::save_image`), with a title and
//!   instructions. A student's Start makes their own sprite
//!   `<assignment>-<handle>` from it (one snapshot: a class starts at once)
//!   and checkpoints it as its starting point. Teachers see every student's
//!   sprite for it, reset one to the starting point (a restore, which keeps
//!   the work as a checkpoint first) and collect a labelled checkpoint of
//!   everybody's in one action.
//! - A sprite's **members** share it with its owner: in a class, a student
//!   sees only the sprites they own or are a member of.

use sprites_wire::api::CreateSprite;
use sprites_wire::classes::{
    Assignment as AssignmentView, AssignmentList, Collected, Collection, CollectionList,
    NewAssignment, ResetDone, SpriteMember, SpriteMembers, SpriteState, Started, Student,
};
use sprites_wire::SpriteName;

use crate::db::{is_unique_violation, iso_ms, new_id, now_ms};
use crate::domain::accounts::{caller_for_user, handle_of};
use crate::domain::caller::Caller;
use crate::domain::{access, orgs, sprites};
use crate::error::ApiError;
use crate::AppState;

/// The caller as a member of organization `slug` (whatever organization
/// their token or session is in), with their role.
async fn in_org(
    state: &AppState,
    caller: &Caller,
    slug: &str,
) -> Result<(Caller, String), ApiError> {
    let (org_id, role) = orgs::role_in(&state.db, &caller.user_id, slug).await?;
    let member = caller_for_user(&state.db, &caller.user_id, &org_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("organization {slug}")))?;
    Ok((member, role))
}

/// The caller as a teacher of class `slug`.
async fn as_teacher(state: &AppState, caller: &Caller, slug: &str) -> Result<Caller, ApiError> {
    let org_id = orgs::teacher(&state.db, caller, slug).await?;
    caller_for_user(&state.db, &caller.user_id, &org_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("organization {slug}")))
}

// ---- shared workspaces

async fn user_by_handle(state: &AppState, handle: &str) -> Result<String, ApiError> {
    sqlx::query_scalar("SELECT id FROM users WHERE handle = $1")
        .bind(handle)
        .fetch_optional(state.db.pool())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {handle}")))
}

/// Whether the caller may change who shares sprite `name`: its owner, or
/// an owner or admin of its organization. Returns the sprite's id.
async fn sharer(state: &AppState, caller: &Caller, name: &str) -> Result<String, ApiError> {
    let (id, owner) = access::identity(state, caller, name).await?;
    if owner.as_deref() == Some(caller.user_id.as_str()) {
        return Ok(id);
    }
    let (_, role) = orgs::role_in(&state.db, &caller.user_id, &caller.org_slug).await?;
    if orgs::manages(&role) {
        return Ok(id);
    }
    Err(ApiError::Forbidden(format!(
        "only the owner of {name} and the organization's owners and admins share it"
    )))
}

/// The owner and the members of sprite `name`.
pub async fn members(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<SpriteMembers, ApiError> {
    let (id, owner) = access::identity(state, caller, name).await?;
    let owner = match owner {
        Some(o) => Some(handle_of(&state.db, &o).await?),
        None => None,
    };
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT u.handle AS handle, m.created_at AS created_at FROM sprite_members m \
         JOIN users u ON u.id = m.user_id WHERE m.sprite_id = $1 ORDER BY u.handle",
    )
    .bind(&id)
    .fetch_all(state.db.pool())
    .await?;
    let members = rows
        .into_iter()
        .map(|(handle, added)| SpriteMember {
            handle,
            added_at: iso_ms(added as u64),
        })
        .collect();
    Ok(SpriteMembers { owner, members })
}

/// Shares sprite `name` with `handle`, a member of its organization.
pub async fn add_member(
    state: &AppState,
    caller: &Caller,
    name: &str,
    handle: &str,
) -> Result<SpriteMembers, ApiError> {
    let id = sharer(state, caller, name).await?;
    let user = user_by_handle(state, handle).await?;
    if caller_for_user(&state.db, &user, &caller.org_id)
        .await?
        .is_none()
    {
        return Err(ApiError::Conflict(format!(
            "{handle} is not in {}: add them to it first",
            caller.org_slug
        )));
    }
    let inserted = sqlx::query(
        "INSERT INTO sprite_members (sprite_id, user_id, created_at) VALUES ($1, $2, $3)",
    )
    .bind(&id)
    .bind(&user)
    .bind(now_ms())
    .execute(state.db.pool())
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => {}
        other => {
            other?;
        }
    }
    access::forget_views(state);
    members(state, caller, name).await
}

/// Stops sharing sprite `name` with `handle` (anyone may leave).
pub async fn remove_member(
    state: &AppState,
    caller: &Caller,
    name: &str,
    handle: &str,
) -> Result<(), ApiError> {
    let user = user_by_handle(state, handle).await?;
    let id = if user == caller.user_id {
        access::identity(state, caller, name).await?.0
    } else {
        sharer(state, caller, name).await?
    };
    let gone = sqlx::query("DELETE FROM sprite_members WHERE sprite_id = $1 AND user_id = $2")
        .bind(&id)
        .bind(&user)
        .execute(state.db.pool())
        .await?;
    if gone.rows_affected() == 0 {
        return Err(ApiError::NotFound(format!("member {handle} of {name}")));
    }
    access::forget_views(state);
    Ok(())
}

// ---- assignments

#[derive(sqlx::FromRow)]
struct Assignment {
    id: String,
    name: String,
    title: String,
    instructions: String,
    image: String,
    #[sqlx(rename = "open_path")]
    open: Option<String>,
    created_at: i64,
}

async fn find_assignment(
    state: &AppState,
    org_id: &str,
    name: &str,
) -> Result<Assignment, ApiError> {
    sqlx::query_as("SELECT * FROM assignments WHERE org_id = $1 AND name = $2")
        .bind(org_id)
        .bind(name)
        .fetch_optional(state.db.pool())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("assignment {name}")))
}

/// A student's work on an assignment: the sprite's name and its start.
#[derive(sqlx::FromRow)]
struct Work {
    #[sqlx(rename = "name")]
    sprite: String,
    #[sqlx(rename = "host_name", try_from = "String")]
    host: SpriteName,
    start: String,
    started_at: i64,
}

async fn work_of(
    state: &AppState,
    assignment_id: &str,
    user_id: &str,
) -> Result<Option<Work>, ApiError> {
    Ok(sqlx::query_as(
        "SELECT s.name AS name, s.host_name AS host_name, \
         w.start_checkpoint AS start, w.started_at AS started_at FROM assignment_work w \
         JOIN sprites s ON s.id = w.sprite_id WHERE w.assignment_id = $1 AND w.user_id = $2",
    )
    .bind(assignment_id)
    .bind(user_id)
    .fetch_optional(state.db.pool())
    .await?)
}

fn view(a: &Assignment) -> AssignmentView {
    AssignmentView {
        name: a.name.clone(),
        title: a.title.clone(),
        instructions: a.instructions.clone(),
        open: a.open.clone(),
        created_at: iso_ms(a.created_at as u64),
        mine: None,
        started: None,
        students: None,
    }
}

/// A sprite's state as the teacher's view lists it.
async fn sprite_view(
    state: &AppState,
    member: &Caller,
    sprite: &str,
) -> Result<Option<SpriteState>, ApiError> {
    match sprites::get(state, member, sprite).await {
        Ok(s) => Ok(Some(SpriteState {
            name: s.name,
            status: s.status,
            url: s.url,
            last_active_at: s.last_active_at,
        })),
        Err(ApiError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The caller's own sprite for assignment `a`, if they started it.
async fn mine(
    state: &AppState,
    caller: &Caller,
    member: &Caller,
    a: &Assignment,
) -> Result<Option<SpriteState>, ApiError> {
    match work_of(state, &a.id, &caller.user_id).await? {
        Some(w) => sprite_view(state, member, &w.sprite).await,
        None => Ok(None),
    }
}

/// Publishes checkpoint `checkpoint` of the teacher's sprite as assignment.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    req: NewAssignment,
) -> Result<AssignmentView, ApiError> {
    let teacher = as_teacher(state, caller, slug).await?;
    SpriteName::parse(&req.name).map_err(|e| ApiError::Invalid(format!("name: {e}")))?;
    if req.name.len() > 30 {
        return Err(ApiError::Invalid(
            "name: at most 30 characters (students' sprites add their handle)".into(),
        ));
    }
    let title = req.title.trim();
    if title.is_empty() || title.chars().count() > 120 {
        return Err(ApiError::Invalid("title: 1 to 120 characters".into()));
    }
    if req.instructions.chars().count() > 20_000 {
        return Err(ApiError::Invalid(
            "instructions: at most 20000 characters".into(),
        ));
    }
    if let Some(open) = &req.open {
        if !open.starts_with('/') || open.len() > 4096 {
            return Err(ApiError::Invalid(
                "open: an absolute path in the sprite".into(),
            ));
        }
    }
    let host = access::host_sprite(state, &teacher, &req.sprite).await?;
    let checkpoint = req
        .checkpoint
        .parse()
        .map_err(|_| ApiError::NotFound(format!("checkpoint {}", req.checkpoint)))?;
    let id = new_id();
    let image = format!("assignment-{}", &id[..15]);
    let inserted = sqlx::query(
        "INSERT INTO assignments (id, org_id, name, title, instructions, image, open_path, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(&teacher.org_id)
    .bind(&req.name)
    .bind(title)
    .bind(&req.instructions)
    .bind(&image)
    .bind(&req.open)
    .bind(&caller.user_id)
    .bind(now_ms())
    .execute(state.db.pool())
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(format!(
                "an assignment named {} exists",
                req.name
            )))
        }
        other => other?,
    };
    if let Err(e) = state.host.save_image(&host, checkpoint, &image).await {
        sqlx::query("DELETE FROM assignments WHERE id = $1")
            .bind(&id)
            .execute(state.db.pool())
            .await?;
        return Err(e.into());
    }
    Ok(view(
        &find_assignment(state, &teacher.org_id, &req.name).await?,
    ))
}

/// The class's assignments; each with the caller's own sprite for it, and
/// for teachers how many students started it.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    slug: &str,
) -> Result<AssignmentList, ApiError> {
    let (member, role) = in_org(state, caller, slug).await?;
    let teacher = orgs::manages(&role);
    let rows: Vec<Assignment> =
        sqlx::query_as("SELECT * FROM assignments WHERE org_id = $1 ORDER BY created_at")
            .bind(&member.org_id)
            .fetch_all(state.db.pool())
            .await?;
    let mut assignments = Vec::new();
    for a in &rows {
        let mut v = view(a);
        v.mine = mine(state, caller, &member, a).await?;
        if teacher {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) AS n FROM assignment_work WHERE assignment_id = $1",
            )
            .bind(&a.id)
            .fetch_one(state.db.pool())
            .await?;
            v.started = Some(n as u64);
        }
        assignments.push(v);
    }
    Ok(AssignmentList {
        assignments,
        teacher,
    })
}

/// One assignment; teachers also get every student with their sprite for
/// it (state, last activity, URL) or null before they start.
pub async fn get(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    name: &str,
) -> Result<AssignmentView, ApiError> {
    let (member, role) = in_org(state, caller, slug).await?;
    let a = find_assignment(state, &member.org_id, name).await?;
    let mut v = view(&a);
    v.mine = mine(state, caller, &member, &a).await?;
    if orgs::manages(&role) {
        let students: Vec<(String, String)> = sqlx::query_as(
            "SELECT u.id AS id, u.handle AS handle FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND m.role = 'member' ORDER BY u.handle",
        )
        .bind(&member.org_id)
        .fetch_all(state.db.pool())
        .await?;
        let mut out = Vec::new();
        for (user, handle) in students {
            let (sprite, started_at) = match work_of(state, &a.id, &user).await? {
                Some(w) => (
                    sprite_view(state, &member, &w.sprite).await?,
                    Some(iso_ms(w.started_at as u64)),
                ),
                None => (None, None),
            };
            out.push(Student {
                handle,
                sprite,
                started_at,
            });
        }
        v.students = Some(out);
    }
    Ok(v)
}

/// The caller's own sprite for the assignment, made now from it (or the
/// one they already have).
pub async fn start(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    name: &str,
) -> Result<Started, ApiError> {
    let (member, _) = in_org(state, caller, slug).await?;
    let a = find_assignment(state, &member.org_id, name).await?;
    if let Some(w) = work_of(state, &a.id, &caller.user_id).await? {
        return started(state, &member, &a, &w).await;
    }
    let sprite_name = format!("{}-{}", a.name, caller.handle);
    let req = CreateSprite::named(sprite_name);
    let sprite = sprites::create_from_image(state, &member, req, Some(a.image.clone())).await?;
    let host = access::host_sprite(state, &member, &sprite.name).await?;
    let start = state
        .host
        .checkpoint(&host, &format!("start of {}", a.title))
        .await?;
    let (sprite_id, _) = access::identity(state, &member, &sprite.name).await?;
    let recorded = sqlx::query(
        "INSERT INTO assignment_work (assignment_id, user_id, sprite_id, start_checkpoint, started_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&a.id)
    .bind(&caller.user_id)
    .bind(&sprite_id)
    .bind(start.id.to_string())
    .bind(now_ms())
    .execute(state.db.pool())
    .await;
    if let Err(e) = recorded {
        // Pressed twice at once: the other press made it first.
        let _ = sprites::destroy(state, &member, &sprite.name).await;
        if is_unique_violation(&e) {
            if let Some(w) = work_of(state, &a.id, &caller.user_id).await? {
                return started(state, &member, &a, &w).await;
            }
        }
        return Err(e.into());
    }
    let w = work_of(state, &a.id, &caller.user_id)
        .await?
        .ok_or_else(|| ApiError::Internal("the work just recorded is gone".into()))?;
    started(state, &member, &a, &w).await
}

async fn started(
    state: &AppState,
    member: &Caller,
    a: &Assignment,
    w: &Work,
) -> Result<Started, ApiError> {
    Ok(Started {
        assignment: a.name.clone(),
        sprite: sprite_view(state, member, &w.sprite).await?,
        start_checkpoint: w.start.clone(),
        open: a.open.clone(),
    })
}

/// A student's sprite back to the assignment's start; their work is kept
/// as a checkpoint first (the restore's own), named in the answer.
pub async fn reset(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    name: &str,
    student: &str,
) -> Result<ResetDone, ApiError> {
    let teacher = as_teacher(state, caller, slug).await?;
    let a = find_assignment(state, &teacher.org_id, name).await?;
    let user = user_by_handle(state, student).await?;
    let w = work_of(state, &a.id, &user)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{student}'s sprite for {name}")))?;
    let start = w
        .start
        .parse()
        .map_err(|_| ApiError::Internal(format!("bad checkpoint {}", w.start)))?;
    let (_, backup) = state
        .host
        .restore(&w.host, start)
        .await
        .map_err(|e| match e {
            vmhost::Error::CheckpointNotFound(..) => ApiError::Conflict(format!(
                "the starting checkpoint {} of {} was deleted; it cannot be reset",
                w.start, w.sprite
            )),
            e => e.into(),
        })?;
    state.activity.touch(&w.host);
    state.events.publish(
        &teacher.org_id,
        "checkpoint.restored",
        &w.sprite,
        None,
        Some(start.to_string()),
    );
    Ok(ResetDone {
        student: student.to_string(),
        sprite: w.sprite,
        restored: w.start,
        work_kept_as: backup.id.to_string(),
    })
}

/// One checkpoint labelled `label` of every student's sprite for the
/// assignment, listed per student.
pub async fn collect(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    name: &str,
    label: &str,
) -> Result<Collection, ApiError> {
    let teacher = as_teacher(state, caller, slug).await?;
    let a = find_assignment(state, &teacher.org_id, name).await?;
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 200 {
        return Err(ApiError::Invalid("label: 1 to 200 characters".into()));
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT w.user_id AS user_id, u.handle AS handle FROM assignment_work w \
         JOIN users u ON u.id = w.user_id WHERE w.assignment_id = $1 ORDER BY u.handle",
    )
    .bind(&a.id)
    .fetch_all(state.db.pool())
    .await?;
    let id = new_id();
    sqlx::query(
        "INSERT INTO collections (id, assignment_id, label, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(&a.id)
    .bind(label)
    .bind(&caller.user_id)
    .bind(now_ms())
    .execute(state.db.pool())
    .await?;
    for (user, _) in &rows {
        let Some(w) = work_of(state, &a.id, user).await? else {
            continue;
        };
        // One student's failure (a full disk) is reported, not fatal.
        let (checkpoint, error) = match state.host.checkpoint(&w.host, label).await {
            Ok(c) => (Some(c.id.to_string()), None),
            Err(e) => (None, Some(ApiError::from(e).public_message())),
        };
        if let Some(c) = &checkpoint {
            state.events.publish(
                &teacher.org_id,
                "checkpoint.created",
                &w.sprite,
                None,
                Some(c.clone()),
            );
        }
        sqlx::query(
            "INSERT INTO collected (collection_id, user_id, sprite_name, checkpoint, error) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(user)
        .bind(&w.sprite)
        .bind(&checkpoint)
        .bind(&error)
        .execute(state.db.pool())
        .await?;
    }
    collection(state, &id).await
}

async fn collection(state: &AppState, id: &str) -> Result<Collection, ApiError> {
    let (label, created_at): (String, i64) =
        sqlx::query_as("SELECT label, created_at FROM collections WHERE id = $1")
            .bind(id)
            .fetch_one(state.db.pool())
            .await?;
    #[derive(sqlx::FromRow)]
    struct Row {
        handle: String,
        sprite: String,
        checkpoint: Option<String>,
        error: Option<String>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT u.handle AS handle, c.sprite_name AS sprite, c.checkpoint AS checkpoint, c.error AS error \
         FROM collected c JOIN users u ON u.id = c.user_id WHERE c.collection_id = $1 ORDER BY u.handle",
    )
    .bind(id)
    .fetch_all(state.db.pool())
    .await?;
    Ok(Collection {
        id: id.to_string(),
        label,
        created_at: iso_ms(created_at as u64),
        students: rows
            .into_iter()
            .map(|r| Collected {
                handle: r.handle,
                sprite: r.sprite,
                checkpoint: r.checkpoint,
                error: r.error,
            })
            .collect(),
    })
}

/// Every collection of the assignment, newest first.
pub async fn collections(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    name: &str,
) -> Result<CollectionList, ApiError> {
    let teacher = as_teacher(state, caller, slug).await?;
    let a = find_assignment(state, &teacher.org_id, name).await?;
    let ids: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM collections WHERE assignment_id = $1 ORDER BY created_at DESC",
    )
    .bind(&a.id)
    .fetch_all(state.db.pool())
    .await?;
    let mut collections = Vec::new();
    for (id,) in &ids {
        collections.push(collection(state, id).await?);
    }
    Ok(CollectionList { collections })
}

/// Deletes the assignment; the students' sprites stay theirs.
pub async fn remove(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    name: &str,
) -> Result<(), ApiError> {
    let teacher = as_teacher(state, caller, slug).await?;
    let a = find_assignment(state, &teacher.org_id, name).await?;
    sqlx::query("DELETE FROM assignments WHERE id = $1")
        .bind(&a.id)
        .execute(state.db.pool())
        .await?;
    match state.host.remove_image(&a.image).await {
        Ok(()) | Err(vmhost::Error::ImageMissing(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
