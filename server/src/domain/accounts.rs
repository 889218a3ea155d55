//! Users, their organizations, and API tokens.
//!
//! Passwords are hashed with argon2id at OWASP's recommended parameters
//! (19 MiB, 2 iterations, 1 lane). API tokens are 32 random bytes shown once
//! and stored as their SHA-256, so a leaked database holds no usable token.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};
use sprites_wire::orgs::{MintedToken, NewToken, Profile, Token, TokenList};

use crate::db::{is_unique_violation, new_id, now_ms, Db};
use crate::domain::caller::Caller;
use crate::error::ApiError;

/// Prefix of every API token, so one found in a log is recognizable.
pub const TOKEN_PREFIX: &str = "sprt_";

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    // A random salt of the recommended length is made by the hasher.
    hasher()
        .hash_password(password.as_bytes())
        .map(|h: PasswordHash| h.to_string())
        .map_err(|e| ApiError::Internal(format!("cannot hash password: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub handle: String,
    pub is_admin: bool,
    /// The user's personal organization.
    pub org_id: String,
}

/// A member in an organization, as the rows that make a caller hold it.
#[derive(sqlx::FromRow)]
struct CallerRow {
    user_id: String,
    handle: String,
    org_id: String,
    slug: String,
    role: String,
    is_class: i64,
}

impl From<CallerRow> for Caller {
    fn from(r: CallerRow) -> Caller {
        Caller {
            student: is_student(&r.role, r.is_class),
            user_id: r.user_id,
            handle: r.handle,
            org_id: r.org_id,
            org_slug: r.slug,
        }
    }
}

/// Whether a member with `role` in an organization (`is_class` 0 or 1) is
/// one of its students.
fn is_student(role: &str, is_class: i64) -> bool {
    is_class == 1 && role == "member"
}

fn valid_handle(handle: &str) -> Result<(), ApiError> {
    sprites_wire::SpriteName::parse(handle)
        .map(|_| ())
        .map_err(|e| ApiError::Invalid(format!("handle: {e}")))
}

/// Creates a user with a personal organization named after their handle.
/// The first user of the server is its admin.
pub async fn create_user(
    db: &Db,
    email: &str,
    handle: &str,
    password: &str,
) -> Result<User, ApiError> {
    check_new_user(email, handle, password)?;
    let hash = hash_password(password)?;
    let mut tx = db.pool().begin().await?;
    let user = insert_user(&mut tx, &new_id(), email, handle, &hash).await?;
    tx.commit().await?;
    Ok(user)
}

/// What lets a person sign up on this server.
pub enum Admission {
    /// Anyone may (open sign-up).
    Open,
    /// Only the first account, an invitation, or a class's join code.
    ByInvitation,
}

/// Signs a person up: with an admin's invitation (`invite`), with a
/// class's join code (they join it as a student, in the same transaction),
/// or freely when `admission` is open or nobody has an account yet. All
/// that can refuse is read before the deliberately slow password hash, so
/// an attempt that cannot succeed costs the server nothing; the invitation
/// is used up only if the account is made.
pub async fn sign_up(
    db: &Db,
    req: &sprites_wire::accounts::SignUp,
    admission: Admission,
) -> Result<User, ApiError> {
    check_new_user(&req.email, &req.handle, &req.password)?;
    let mut tx = db.pool().begin().await?;
    let class = match &req.join_code {
        Some(code) => Some(crate::domain::orgs::class_of_code(&mut tx, code).await?.0),
        None => None,
    };
    // A used invitation says so whatever else is wrong.
    let invitation = match &req.invite {
        Some(token) => {
            Some(crate::domain::admin::usable_invitation(&mut tx, token, &req.email).await?)
        }
        None => None,
    };
    if invitation.is_none()
        && class.is_none()
        && matches!(admission, Admission::ByInvitation)
        && has_users_in(&mut tx).await?
    {
        return Err(closed());
    }
    let hash = hash_password(&req.password)?;
    let user = insert_user(&mut tx, &new_id(), &req.email, &req.handle, &hash).await?;
    if let Some(id) = invitation {
        crate::domain::admin::use_invitation(&mut tx, &id, &user.id).await?;
    }
    if let Some(org_id) = class {
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'member', $3)",
        )
        .bind(&org_id)
        .bind(&user.id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(user)
}

fn closed() -> ApiError {
    ApiError::Forbidden(
        "sign-up is by invitation on this server: ask its admin for an invitation link, \
         or your teacher for your class's join link"
            .into(),
    )
}

/// Checks a new account's fields.
fn check_new_user(email: &str, handle: &str, password: &str) -> Result<(), ApiError> {
    valid_handle(handle)?;
    if !email.contains('@') || email.len() > 254 {
        return Err(ApiError::Invalid("email: not an email address".into()));
    }
    if password.chars().count() < 8 {
        return Err(ApiError::Invalid("password: at least 8 characters".into()));
    }
    Ok(())
}

/// Inserts a user, their personal organization and their ownership of it.
async fn insert_user(
    tx: &mut sqlx::AnyConnection,
    user_id: &str,
    email: &str,
    handle: &str,
    hash: &str,
) -> Result<User, ApiError> {
    let (org_id, now) = (new_id(), now_ms());
    let first = !has_users_in(tx).await?;
    let inserted = sqlx::query(
        "INSERT INTO users (id, email, handle, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(user_id)
    .bind(email.to_lowercase())
    .bind(handle)
    .bind(hash)
    .bind(i64::from(first))
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict("that email or handle is taken".into()))
        }
        other => other?,
    };
    let org = sqlx::query("INSERT INTO organizations (id, slug, name, personal, created_at) VALUES ($1, $2, $3, 1, $4)")
        .bind(&org_id)
        .bind(handle)
        .bind(handle)
        .bind(now)
        .execute(&mut *tx)
        .await;
    match org {
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(
                "an organization with that name exists".into(),
            ))
        }
        other => other?,
    };
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)",
    )
    .bind(&org_id)
    .bind(user_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(User {
        id: user_id.to_string(),
        email: email.to_lowercase(),
        handle: handle.to_string(),
        is_admin: first,
        org_id,
    })
}

/// Issues a token for `user` in organization `org_id`; returns it in clear,
/// the only time it exists so.
pub async fn create_token(
    db: &Db,
    user_id: &str,
    org_id: &str,
    name: &str,
) -> Result<String, ApiError> {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(b));
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, org_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id())
    .bind(user_id)
    .bind(org_id)
    .bind(name)
    .bind(token_hash(&token))
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(token)
}

/// The caller a bearer token stands for, if it is valid, not revoked, and
/// its user still belongs to the token's organization.
pub async fn caller_for_token(db: &Db, token: &str) -> Result<Option<Caller>, ApiError> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
        return Ok(None);
    }
    let hash = token_hash(token);
    if let Some(caller) = db.tokens.get(&hash) {
        return Ok(Some(caller));
    }
    #[derive(sqlx::FromRow)]
    struct TokenRow {
        #[sqlx(flatten)]
        caller: CallerRow,
        token_id: String,
        last_used_at: Option<i64>,
    }
    let row: Option<TokenRow> = sqlx::query_as(
        "SELECT t.id AS token_id, t.user_id AS user_id, u.handle AS handle, o.id AS org_id, \
         o.slug AS slug, o.is_class AS is_class, m.role AS role, t.last_used_at AS last_used_at \
         FROM api_tokens t \
         JOIN users u ON u.id = t.user_id \
         JOIN organizations o ON o.id = t.org_id \
         JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
    )
    .bind(&hash)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    // Last use is kept to the minute: a write per request would cost every
    // API call a database commit.
    let now = now_ms();
    if row.last_used_at.is_none_or(|t| now - t > 60_000) {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&row.token_id)
            .execute(db.pool())
            .await?;
    }
    let caller = Caller::from(row.caller);
    db.tokens.put(hash, caller.clone());
    Ok(Some(caller))
}

/// An account as signing in finds it.
#[derive(sqlx::FromRow)]
pub struct Login {
    pub id: String,
    pub password_hash: String,
    /// When an admin disabled it.
    pub disabled_at: Option<i64>,
}

/// A user's id and password hash, found by email or handle.
pub async fn find_login(db: &Db, login: &str) -> Result<Option<Login>, ApiError> {
    let login = login.trim().to_lowercase();
    Ok(sqlx::query_as::<_, Login>(
        "SELECT id, password_hash, disabled_at FROM users WHERE email = $1 OR handle = $1",
    )
    .bind(&login)
    .fetch_optional(db.pool())
    .await?)
}

/// The caller a signed-in user is in organization `org_id`, if a member.
pub async fn caller_for_user(
    db: &Db,
    user_id: &str,
    org_id: &str,
) -> Result<Option<Caller>, ApiError> {
    let row: Option<CallerRow> = sqlx::query_as(
        "SELECT m.user_id AS user_id, u.handle AS handle, m.org_id AS org_id, o.slug AS slug, \
         o.is_class AS is_class, m.role AS role \
         FROM memberships m JOIN organizations o ON o.id = m.org_id \
         JOIN users u ON u.id = m.user_id \
         WHERE m.user_id = $1 AND m.org_id = $2 AND u.disabled_at IS NULL",
    )
    .bind(user_id)
    .bind(org_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(Caller::from))
}

/// A user's handle; a sprite acting for itself (its management socket) is
/// named `sprite`.
pub async fn handle_of(db: &Db, user_id: &str) -> Result<String, ApiError> {
    if user_id.starts_with("sprite:") {
        return Ok("sprite".into());
    }
    Ok(sqlx::query_scalar("SELECT handle FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(db.pool())
        .await?
        .unwrap_or_else(|| "someone".into()))
}

/// The personal organization of a user.
pub async fn personal_org(db: &Db, user_id: &str) -> Result<String, ApiError> {
    Ok(sqlx::query_scalar(
        "SELECT o.id AS id FROM memberships m JOIN organizations o ON o.id = m.org_id \
         WHERE m.user_id = $1 AND o.personal = 1",
    )
    .bind(user_id)
    .fetch_one(db.pool())
    .await?)
}

/// Whether the caller is one of the server's admins (never a sprite
/// acting for itself).
pub async fn is_admin(db: &Db, caller: &Caller) -> Result<bool, ApiError> {
    let admin: Option<i64> = sqlx::query_scalar("SELECT is_admin FROM users WHERE id = $1")
        .bind(&caller.user_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(admin == Some(1))
}

/// The signed-in user and the organizations they belong to.
pub async fn profile(db: &Db, caller: &Caller) -> Result<Profile, ApiError> {
    let (email, handle, is_admin): (String, String, i64) =
        sqlx::query_as("SELECT email, handle, is_admin FROM users WHERE id = $1")
            .bind(&caller.user_id)
            .fetch_one(db.pool())
            .await?;
    Ok(Profile {
        email,
        handle,
        is_admin: is_admin == 1,
        organization: caller.org_slug.clone(),
        organizations: crate::domain::orgs::list(db, caller).await?.organizations,
        csrf_token: None,
    })
}

/// A new token of the caller named `req.name`, acting in their current
/// organization or in `req.organization` (one they belong to); its secret
/// is in this answer only.
pub async fn mint_token(db: &Db, caller: &Caller, req: &NewToken) -> Result<MintedToken, ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::Invalid("name: 1 to 100 characters".into()));
    }
    let (org_id, org_slug) = match &req.organization {
        Some(slug) => (
            crate::domain::orgs::role_in(db, &caller.user_id, slug)
                .await?
                .0,
            slug.clone(),
        ),
        None => (caller.org_id.clone(), caller.org_slug.clone()),
    };
    let token = create_token(db, &caller.user_id, &org_id, name).await?;
    Ok(MintedToken {
        name: name.to_string(),
        token,
        organization: org_slug,
    })
}

/// The caller's tokens in their organization, without their secrets.
pub async fn list_tokens(db: &Db, caller: &Caller) -> Result<TokenList, ApiError> {
    let tokens = sqlx::query_as(
        "SELECT id, name, created_at, last_used_at FROM api_tokens \
         WHERE user_id = $1 AND org_id = $2 AND revoked_at IS NULL ORDER BY created_at",
    )
    .bind(&caller.user_id)
    .bind(&caller.org_id)
    .fetch_all(db.pool())
    .await?
    .into_iter()
    .map(
        |(id, name, created_at, last_used_at): (String, String, i64, Option<i64>)| Token {
            id,
            name,
            created_at,
            last_used_at,
        },
    )
    .collect();
    Ok(TokenList { tokens })
}

/// Revokes one of the caller's tokens; `false` when there is no such token.
pub async fn revoke_token(db: &Db, caller: &Caller, token_id: &str) -> Result<bool, ApiError> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND org_id = $4 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(token_id)
    .bind(&caller.user_id)
    .bind(&caller.org_id)
    .execute(db.pool())
    .await?;
    db.tokens.clear();
    Ok(done.rows_affected() == 1)
}

/// Whether anybody has an account yet (the first one may always sign up).
pub async fn has_users(db: &Db) -> Result<bool, ApiError> {
    let mut conn = db.pool().acquire().await?;
    has_users_in(&mut conn).await
}

async fn has_users_in(conn: &mut sqlx::AnyConnection) -> Result<bool, ApiError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) AS n FROM users")
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

/// Events per key within a window, for refusing what repeats too often:
/// failed sign-ins per account or client address (after `limit` failures
/// within [`Throttle::WINDOW`], further attempts wait until it passes), or
/// sprite URL hand-offs that come back because a browser drops the cookie.
#[derive(Debug, Clone)]
pub struct Throttle {
    limit: u32,
    window: std::time::Duration,
    failures: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, (u32, std::time::Instant)>>,
    >,
}

impl Throttle {
    /// Failures an account may see in a window.
    pub const PER_ACCOUNT: u32 = 5;
    /// Failures one client address may cause in a window, over all the
    /// accounts it tries (guessing many accounts' passwords at once).
    pub const PER_ADDRESS: u32 = 50;
    pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(600);
    /// Keys kept at most; the oldest windows go first beyond it, so a flood
    /// of addresses cannot grow memory without bound.
    const MAX_KEYS: usize = 100_000;

    pub fn new(limit: u32) -> Throttle {
        Throttle::with_window(limit, Self::WINDOW)
    }

    pub fn with_window(limit: u32, window: std::time::Duration) -> Throttle {
        Throttle {
            limit,
            window,
            failures: Default::default(),
        }
    }

    /// Seconds to wait before `key` may try again, if it must wait.
    pub fn wait(&self, key: &str) -> Option<u64> {
        let map = self.failures.lock().unwrap();
        let (n, since) = map.get(key)?;
        let elapsed = since.elapsed();
        (*n >= self.limit && elapsed < self.window)
            .then(|| (self.window - elapsed).as_secs().max(1))
    }

    pub fn failed(&self, key: &str) {
        let mut map = self.failures.lock().unwrap();
        if map.len() >= Self::MAX_KEYS {
            let window = self.window;
            map.retain(|_, (_, since)| since.elapsed() < window);
        }
        if map.len() >= Self::MAX_KEYS {
            let oldest = map
                .iter()
                .min_by_key(|(_, (_, since))| *since)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        let entry = map
            .entry(key.to_string())
            .or_insert((0, std::time::Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, std::time::Instant::now());
        }
        entry.0 += 1;
    }

    pub fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}
