//! Organizations and their members. Each user has a personal organization;
//! team organizations are made by users, who become their owner. Owners
//! and admins manage members; an admin cannot make or remove an owner, and
//! the last owner cannot leave.
//!
//! An organization can be a **class**: its owners and admins are teachers,
//! its members students, who join with the class's code and see only the
//! sprites they own or were added to (see `access::find`). Teachers may
//! limit how many sprites and how much disk each student uses.

use sprites_wire::orgs::{JoinCode, Limits, Member, MemberList, Organization, OrganizationList};

use crate::db::{is_unique_violation, new_id, now_ms, Db};
use crate::domain::caller::Caller;
use crate::error::ApiError;

pub use sprites_wire::orgs::{manages, ROLES};

/// An organization's row as a member sees it (flags are integers in SQL).
#[derive(sqlx::FromRow)]
struct OrgRow {
    slug: String,
    name: String,
    personal: i64,
    is_class: i64,
    role: String,
}

impl From<OrgRow> for Organization {
    fn from(r: OrgRow) -> Organization {
        Organization {
            slug: r.slug,
            name: r.name,
            personal: r.personal == 1,
            class: r.is_class == 1,
            role: r.role,
            limits: None,
            join_code: None,
        }
    }
}

/// The caller's role in organization `slug`; a non-member gets 404, as if
/// the organization did not exist.
pub async fn role_in(db: &Db, user_id: &str, slug: &str) -> Result<(String, String), ApiError> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT o.id AS id, m.role AS role FROM organizations o \
         JOIN memberships m ON m.org_id = o.id WHERE o.slug = $1 AND m.user_id = $2",
    )
    .bind(slug)
    .bind(user_id)
    .fetch_optional(db.pool())
    .await?;
    match row {
        Some(found) => Ok(found),
        None => Err(ApiError::NotFound(format!("organization {slug}"))),
    }
}

/// A user's role in the organization with id `org_id`, if a member.
pub async fn role_of(db: &Db, user_id: &str, org_id: &str) -> Result<Option<String>, ApiError> {
    let role =
        sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .fetch_optional(db.pool())
            .await?;
    Ok(role)
}

pub async fn list(db: &Db, caller: &Caller) -> Result<OrganizationList, ApiError> {
    let rows: Vec<OrgRow> = sqlx::query_as(
        "SELECT o.slug AS slug, o.name AS name, o.personal AS personal, o.is_class AS is_class, \
         m.role AS role FROM memberships m JOIN organizations o ON o.id = m.org_id \
         WHERE m.user_id = $1 ORDER BY o.slug",
    )
    .bind(&caller.user_id)
    .fetch_all(db.pool())
    .await?;
    Ok(OrganizationList {
        organizations: rows.into_iter().map(Organization::from).collect(),
    })
}

/// A join code: eight letters and digits a person can read out and type,
/// without the ones that look alike.
fn new_join_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..8)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Organization `slug` as the caller sees it; teachers also see the join
/// code and the limits.
pub async fn get(db: &Db, caller: &Caller, slug: &str) -> Result<Organization, ApiError> {
    #[derive(sqlx::FromRow)]
    struct Details {
        #[sqlx(flatten)]
        org: OrgRow,
        max_sprites_per_member: Option<i64>,
        max_disk_per_member: Option<i64>,
        join_code: Option<String>,
    }
    let d: Details = sqlx::query_as(
        "SELECT o.slug AS slug, o.name AS name, o.personal AS personal, o.is_class AS is_class, \
         m.role AS role, o.max_sprites_per_member AS max_sprites_per_member, \
         o.max_disk_per_member AS max_disk_per_member, o.join_code AS join_code \
         FROM organizations o JOIN memberships m ON m.org_id = o.id \
         WHERE o.slug = $1 AND m.user_id = $2",
    )
    .bind(slug)
    .bind(&caller.user_id)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("organization {slug}")))?;
    let mut org = Organization::from(d.org);
    org.limits = Some(Limits {
        max_sprites_per_member: d.max_sprites_per_member,
        max_disk_per_member: d.max_disk_per_member,
    });
    if org.teaches() {
        org.join_code = d.join_code;
    }
    Ok(org)
}

/// A new join code for a class (the old one stops working).
pub async fn new_code(db: &Db, caller: &Caller, slug: &str) -> Result<JoinCode, ApiError> {
    let org_id = teacher(db, caller, slug).await?;
    let code = new_join_code();
    sqlx::query("UPDATE organizations SET join_code = $1 WHERE id = $2")
        .bind(&code)
        .bind(&org_id)
        .execute(db.pool())
        .await?;
    Ok(JoinCode { join_code: code })
}

/// The class `slug`'s id when the caller teaches it.
pub async fn teacher(db: &Db, caller: &Caller, slug: &str) -> Result<String, ApiError> {
    let (org_id, role) = role_in(db, &caller.user_id, slug).await?;
    if !manages(&role) {
        return Err(ApiError::Forbidden(
            "only the class's teachers (its owners and admins) may do this".into(),
        ));
    }
    let class: i64 = sqlx::query_scalar("SELECT is_class FROM organizations WHERE id = $1")
        .bind(&org_id)
        .fetch_one(db.pool())
        .await?;
    if class != 1 {
        return Err(ApiError::Conflict(format!("{slug} is not a class")));
    }
    Ok(org_id)
}

/// Sets (or, with null, lifts) the per-student limits of a class.
pub async fn set_limits(
    db: &Db,
    caller: &Caller,
    slug: &str,
    limits: Limits,
) -> Result<Organization, ApiError> {
    let org_id = teacher(db, caller, slug).await?;
    let Limits {
        max_sprites_per_member: max_sprites,
        max_disk_per_member: max_disk,
    } = limits;
    if max_sprites.is_some_and(|n| !(0..=10_000).contains(&n)) {
        return Err(ApiError::Invalid(
            "max_sprites_per_member: from 0 to 10000, or null".into(),
        ));
    }
    if max_disk.is_some_and(|n| n < 0) {
        return Err(ApiError::Invalid(
            "max_disk_per_member: bytes, 0 or more, or null".into(),
        ));
    }
    sqlx::query(
        "UPDATE organizations SET max_sprites_per_member = $1, max_disk_per_member = $2 WHERE id = $3",
    )
    .bind(max_sprites)
    .bind(max_disk)
    .bind(&org_id)
    .execute(db.pool())
    .await?;
    get(db, caller, slug).await
}

/// The organization (id and slug) of the class whose join code is `code`.
pub async fn class_of_code(
    conn: &mut sqlx::AnyConnection,
    code: &str,
) -> Result<(String, String), ApiError> {
    let code = code.trim().to_lowercase();
    sqlx::query_as("SELECT id, slug FROM organizations WHERE join_code = $1 AND is_class = 1")
        .bind(&code)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "a class with the code {code} (ask your teacher for the class's link again)"
            ))
        })
}

/// Joins the class whose code is `code` as a student.
pub async fn join(db: &Db, caller: &Caller, code: &str) -> Result<Organization, ApiError> {
    let (org_id, slug) = class_of_code(&mut *db.pool().acquire().await?, code).await?;
    let inserted = sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'member', $3)",
    )
    .bind(&org_id)
    .bind(&caller.user_id)
    .bind(now_ms())
    .execute(db.pool())
    .await;
    match inserted {
        // Already in it: joining again changes nothing.
        Err(e) if is_unique_violation(&e) => {}
        other => {
            other?;
        }
    }
    get(db, caller, &slug).await
}

pub async fn create(
    db: &Db,
    caller: &Caller,
    slug: &str,
    name: &str,
) -> Result<Organization, ApiError> {
    create_kind(db, caller, slug, name, false).await
}

/// A team organization, or (`class`) a class with a join code.
pub async fn create_kind(
    db: &Db,
    caller: &Caller,
    slug: &str,
    name: &str,
    class: bool,
) -> Result<Organization, ApiError> {
    sprites_wire::SpriteName::parse(slug).map_err(|e| ApiError::Invalid(format!("slug: {e}")))?;
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::Invalid("name: 1 to 100 characters".into()));
    }
    let (id, now) = (new_id(), now_ms());
    let mut tx = db.pool().begin().await?;
    let code = class.then(new_join_code);
    let made = sqlx::query(
        "INSERT INTO organizations (id, slug, name, personal, created_at, is_class, join_code) \
         VALUES ($1, $2, $3, 0, $4, $5, $6)",
    )
    .bind(&id)
    .bind(slug)
    .bind(name)
    .bind(now)
    .bind(i64::from(class))
    .bind(&code)
    .execute(&mut *tx)
    .await;
    match made {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(format!("the name {slug} is taken")))
        }
        other => other?,
    };
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)",
    )
    .bind(&id)
    .bind(&caller.user_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Organization {
        slug: slug.to_string(),
        name: name.to_string(),
        personal: false,
        class,
        role: "owner".into(),
        limits: None,
        join_code: code,
    })
}

pub async fn members(db: &Db, caller: &Caller, slug: &str) -> Result<MemberList, ApiError> {
    let (org_id, _) = role_in(db, &caller.user_id, slug).await?;
    let members: Vec<(String, String)> = sqlx::query_as(
        "SELECT u.handle AS handle, m.role AS role FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 ORDER BY u.handle",
    )
    .bind(&org_id)
    .fetch_all(db.pool())
    .await?;
    Ok(MemberList {
        members: members
            .into_iter()
            .map(|(handle, role)| Member { handle, role })
            .collect(),
    })
}

/// Checks that the caller may manage members of `slug` and touch `role`.
async fn manager(db: &Db, caller: &Caller, slug: &str, role: &str) -> Result<String, ApiError> {
    let (org_id, mine) = role_in(db, &caller.user_id, slug).await?;
    match (mine.as_str(), role) {
        ("owner", _) => Ok(org_id),
        ("admin", "admin" | "member") => Ok(org_id),
        ("admin", _) => Err(ApiError::Forbidden(
            "only an owner can make or remove an owner".into(),
        )),
        _ => Err(ApiError::Forbidden(
            "only owners and admins manage members".into(),
        )),
    }
}

async fn personal(db: &Db, org_id: &str) -> Result<bool, ApiError> {
    let p: i64 = sqlx::query_scalar("SELECT personal FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_one(db.pool())
        .await?;
    Ok(p == 1)
}

/// Adds a user (by handle) or changes their role.
pub async fn set_member(
    db: &Db,
    caller: &Caller,
    slug: &str,
    handle: &str,
    role: &str,
) -> Result<Member, ApiError> {
    if !ROLES.contains(&role) {
        return Err(ApiError::Invalid(format!(
            "role {role:?}: owner, admin or member"
        )));
    }
    let org_id = manager(db, caller, slug, role).await?;
    if personal(db, &org_id).await? {
        return Err(ApiError::Conflict(
            "a personal organization has one member".into(),
        ));
    }
    let user_id: String = sqlx::query_scalar("SELECT id FROM users WHERE handle = $1")
        .bind(handle)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {handle}")))?;
    let current: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(&org_id)
            .bind(&user_id)
            .fetch_optional(db.pool())
            .await?;
    match current {
        Some(was) => {
            manager(db, caller, slug, &was).await?;
            if was == "owner" && role != "owner" {
                last_owner_guard(db, &org_id).await?;
            }
            sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
                .bind(role)
                .bind(&org_id)
                .bind(&user_id)
                .execute(db.pool())
                .await?;
            // Callers carry whether they are a class's students.
            db.tokens.clear();
        }
        None => {
            sqlx::query("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&org_id)
                .bind(&user_id)
                .bind(role)
                .bind(now_ms())
                .execute(db.pool())
                .await?;
        }
    }
    Ok(Member {
        handle: handle.to_string(),
        role: role.to_string(),
    })
}

async fn last_owner_guard(db: &Db, org_id: &str) -> Result<(), ApiError> {
    let owners: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) AS n FROM memberships WHERE org_id = $1 AND role = 'owner'",
    )
    .bind(org_id)
    .fetch_one(db.pool())
    .await?;
    if owners <= 1 {
        return Err(ApiError::Conflict(
            "an organization keeps at least one owner".into(),
        ));
    }
    Ok(())
}

pub async fn remove_member(
    db: &Db,
    caller: &Caller,
    slug: &str,
    handle: &str,
) -> Result<(), ApiError> {
    let (org_id, _) = role_in(db, &caller.user_id, slug).await?;
    let (user_id, role): (String, String) = sqlx::query_as(
        "SELECT m.user_id AS user_id, m.role AS role FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 AND u.handle = $2",
    )
    .bind(&org_id)
    .bind(handle)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("member {handle}")))?;
    // Anyone may leave; removing others needs the right role.
    if user_id != caller.user_id {
        manager(db, caller, slug, &role).await?;
    }
    if role == "owner" {
        last_owner_guard(db, &org_id).await?;
    }
    sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(&org_id)
        .bind(&user_id)
        .execute(db.pool())
        .await?;
    db.tokens.clear();
    Ok(())
}
