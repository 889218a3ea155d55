//! What the server's admins do: invite people (sign-up is by invitation
//! unless the server runs with open sign-up), see who has an account, and
//! disable or enable an account.
//!
//! An invitation is a random secret shown once, in the answer that makes
//! it; the database keeps its SHA-256, as for API tokens. Signing up with
//! it (`accounts::sign_up`) marks it used in the same transaction that
//! makes the account, so one invitation makes at most one account.

use sha2::{Digest, Sha256};
use sprites_wire::accounts::{
    Invitation, InvitationCheck, InvitationList, NewInvitation, UserList, UserSummary,
};

use crate::db::{new_id, now_ms, Db};
use crate::domain::caller::Caller;
use crate::error::ApiError;

/// How long an invitation may wait to be used.
pub const INVITATION_LIFETIME_MS: i64 = 14 * 24 * 3600 * 1000;

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// What an invitation that cannot be used answers, whatever the reason:
/// an unknown secret tells nothing more than a used one.
fn not_usable() -> ApiError {
    ApiError::NotFound(
        "this invitation (it was used, withdrawn or has expired: ask for a new one)".into(),
    )
}

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: String,
    email: Option<String>,
    created_by: Option<String>,
    created_at: i64,
    expires_at: i64,
}

impl From<InvitationRow> for Invitation {
    fn from(r: InvitationRow) -> Invitation {
        Invitation {
            id: r.id,
            email: r.email,
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            token: None,
        }
    }
}

/// Makes an invitation; the answer carries its secret, the only time.
pub async fn invite(db: &Db, admin: &Caller, req: &NewInvitation) -> Result<Invitation, ApiError> {
    let email = match req.email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(e) if e.contains('@') && e.len() <= 254 => Some(e.to_lowercase()),
        Some(_) => return Err(ApiError::Invalid("email: not an email address".into())),
    };
    let token = {
        use rand::RngCore;
        let mut b = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut b);
        hex::encode(b)
    };
    let (id, now) = (new_id(), now_ms());
    let expires_at = now + INVITATION_LIFETIME_MS;
    sqlx::query(
        "INSERT INTO invitations (id, token_hash, email, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(token_hash(&token))
    .bind(&email)
    .bind(&admin.user_id)
    .bind(now)
    .bind(expires_at)
    .execute(db.pool())
    .await?;
    Ok(Invitation {
        id,
        email,
        created_by: Some(admin.handle.clone()),
        created_at: now,
        expires_at,
        token: Some(token),
    })
}

/// The invitations waiting to be used, newest first.
pub async fn invitations(db: &Db) -> Result<InvitationList, ApiError> {
    let rows = sqlx::query_as::<_, InvitationRow>(
        "SELECT i.id AS id, i.email AS email, u.handle AS created_by, i.created_at AS created_at, \
         i.expires_at AS expires_at FROM invitations i LEFT JOIN users u ON u.id = i.created_by \
         WHERE i.used_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > $1 \
         ORDER BY i.created_at DESC",
    )
    .bind(now_ms())
    .fetch_all(db.pool())
    .await?;
    Ok(InvitationList {
        invitations: rows.into_iter().map(Invitation::from).collect(),
    })
}

/// Withdraws an invitation not used yet.
pub async fn withdraw(db: &Db, id: &str) -> Result<(), ApiError> {
    let done = sqlx::query(
        "UPDATE invitations SET revoked_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(id)
    .execute(db.pool())
    .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::NotFound(format!(
            "an invitation {id} not used yet"
        )));
    }
    Ok(())
}

/// What the sign-up page may know of an invitation before it is used.
pub async fn check(db: &Db, token: &str) -> Result<InvitationCheck, ApiError> {
    let row = sqlx::query_as::<_, (Option<String>, i64)>(
        "SELECT email, expires_at FROM invitations WHERE token_hash = $1 \
         AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash(token))
    .bind(now_ms())
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(not_usable)?;
    Ok(InvitationCheck {
        email: row.0,
        expires_at: row.1,
    })
}

/// The id of the invitation `token`, if it can make an account with
/// `email` now; read inside the transaction that makes it.
pub(crate) async fn usable_invitation(
    tx: &mut sqlx::AnyConnection,
    token: &str,
    email: &str,
) -> Result<String, ApiError> {
    let (id, for_email) = sqlx::query_as::<_, (String, Option<String>)>(
        "SELECT id, email FROM invitations WHERE token_hash = $1 \
         AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash(token))
    .bind(now_ms())
    .fetch_optional(tx)
    .await?
    .ok_or_else(not_usable)?;
    if let Some(for_email) = &for_email {
        if !for_email.eq_ignore_ascii_case(email.trim()) {
            return Err(ApiError::Forbidden(format!(
                "this invitation is for {for_email}: sign up with that address"
            )));
        }
    }
    Ok(id)
}

/// Uses up invitation `id` for the account `user_id` just made, in the
/// same transaction. The condition is read again: of two sign-ups racing
/// with one invitation, only one updates the row; the other is refused and
/// its account rolled back.
pub(crate) async fn use_invitation(
    tx: &mut sqlx::AnyConnection,
    id: &str,
    user_id: &str,
) -> Result<(), ApiError> {
    let done = sqlx::query(
        "UPDATE invitations SET used_at = $1, used_by = $2 WHERE id = $3 AND used_at IS NULL",
    )
    .bind(now_ms())
    .bind(user_id)
    .bind(id)
    .execute(tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(not_usable());
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct UserRow {
    handle: String,
    email: String,
    is_admin: i64,
    disabled_at: Option<i64>,
    created_at: i64,
}

impl From<UserRow> for UserSummary {
    fn from(r: UserRow) -> UserSummary {
        UserSummary {
            handle: r.handle,
            email: r.email,
            is_admin: r.is_admin == 1,
            disabled: r.disabled_at.is_some(),
            created_at: r.created_at,
        }
    }
}

const USER_COLUMNS: &str = "SELECT handle, email, is_admin, disabled_at, created_at FROM users";

/// Everyone with an account, oldest first.
pub async fn users(db: &Db) -> Result<UserList, ApiError> {
    let rows = sqlx::query_as::<_, UserRow>(&format!("{USER_COLUMNS} ORDER BY created_at"))
        .fetch_all(db.pool())
        .await?;
    Ok(UserList {
        users: rows.into_iter().map(UserSummary::from).collect(),
    })
}

/// Disables (or enables again) the account `handle`: a disabled account
/// cannot sign in, and its sessions and tokens answer 401 from now on.
/// Nothing of it is deleted. An admin cannot disable their own account.
pub async fn set_disabled(
    db: &Db,
    admin: &Caller,
    handle: &str,
    disabled: bool,
) -> Result<UserSummary, ApiError> {
    let handle = handle.trim().to_lowercase();
    if disabled && handle == admin.handle {
        return Err(ApiError::Conflict(
            "you cannot disable your own account".into(),
        ));
    }
    let change = if disabled {
        // Disabled since the first time it was asked.
        sqlx::query("UPDATE users SET disabled_at = $1 WHERE disabled_at IS NULL AND handle = $2")
            .bind(now_ms())
    } else {
        sqlx::query("UPDATE users SET disabled_at = NULL WHERE handle = $1")
    };
    change.bind(&handle).execute(db.pool()).await?;
    // Tokens seen recently stand for their caller without a query.
    db.tokens.clear();
    let row = sqlx::query_as::<_, UserRow>(&format!("{USER_COLUMNS} WHERE handle = $1"))
        .bind(&handle)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("a user {handle}")))?;
    Ok(row.into())
}
