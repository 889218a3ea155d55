//! A sprite's resources policy (`/v1/sprites/{name}/policy/resources`:
//! its memory limit) and privileges policy (`.../policy/privileges`: its
//! seccomp profile, extra devices, no-new-privileges), kept and put in
//! force by the host; a class's students use what their class gives them. Network policies:
//! a sprite's own (`/v1/sprites/{name}/policy/network`), and a class's for
//! all its students' sprites (`/v1/organizations/{slug}/policy/network`). The host keeps a sprite's
//! policy and puts it in force (`Verbs::set_network_policy`); a class's is
//! kept here, given to each student's sprite as it is made and to every
//! one of them when it changes. While a class has one, its students cannot
//! change their sprites' policies; its teachers can.

use sprites_wire::policy::{MemoryPolicy, NetworkPolicy, PrivilegesPolicy, ResourcesPolicy};

use crate::domain::access;
use crate::domain::caller::Caller;
use crate::domain::orgs;
use crate::error::ApiError;
use crate::AppState;

/// The caller's sprite `name`'s network policy.
pub async fn network(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<NetworkPolicy, ApiError> {
    let host = access::host_sprite(state, caller, name).await?;
    Ok(state.host.network_policy(&host).await?)
}

/// Replaces the network policy of the caller's sprite `name`, in force on
/// return.
pub async fn set_network(
    state: &AppState,
    caller: &Caller,
    name: &str,
    policy: NetworkPolicy,
) -> Result<(), ApiError> {
    let host = access::host_sprite(state, caller, name).await?;
    if caller.student && class_network(state, &caller.org_id).await?.is_some() {
        return Err(ApiError::Forbidden(
            "your class sets the network policy of its students' sprites; ask a teacher".into(),
        ));
    }
    Ok(state.host.set_network_policy(&host, policy).await?)
}

/// What the caller's sprite `name` may use.
pub async fn resources(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<ResourcesPolicy, ApiError> {
    let host = access::host_sprite(state, caller, name).await?;
    let bytes = state.host.memory_limit(&host).await?;
    Ok(ResourcesPolicy {
        memory: Some(MemoryPolicy {
            limit_mb: bytes >> 20,
            autoscale: false,
        }),
    })
}

/// Sets what the caller's sprite `name` may use (`None`: the host's
/// defaults), in force on return. A class's students use what their class
/// gives them.
pub async fn set_resources(
    state: &AppState,
    caller: &Caller,
    name: &str,
    policy: Option<ResourcesPolicy>,
) -> Result<(), ApiError> {
    let bytes =
        match policy.as_ref().map(|p| p.memory.as_ref()) {
            // Nothing asked, nothing changed.
            Some(None) => None,
            Some(Some(m)) if m.autoscale => return Err(ApiError::Invalid(
                "memory.autoscale: this server keeps a sprite at its limit and does not grow it; \
                 set limit_mb to what it needs"
                    .into(),
            )),
            Some(Some(m)) if !(64..=256 * 1024).contains(&m.limit_mb) => {
                return Err(ApiError::Invalid(
                    "memory.limit_mb: from 64 to 262144".into(),
                ))
            }
            Some(Some(m)) => Some(Some(m.limit_mb << 20)),
            None => Some(None),
        };
    let host = not_a_student(state, caller, name).await?;
    if let Some(bytes) = bytes {
        state.host.set_memory_limit(&host, bytes).await?;
    }
    Ok(())
}

/// The caller's sprite `name`, unless the caller is a student: what their
/// sprites may use and ask for is their class's to decide.
async fn not_a_student(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<vmhost::SpriteName, ApiError> {
    let host = access::host_sprite(state, caller, name).await?;
    if caller.student {
        return Err(ApiError::Forbidden(
            "your class decides what its students' sprites may use; ask a teacher".into(),
        ));
    }
    Ok(host)
}

/// What of the kernel the caller's sprite `name`'s processes may ask for.
pub async fn privileges(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<PrivilegesPolicy, ApiError> {
    let host = access::host_sprite(state, caller, name).await?;
    Ok(state.host.privileges(&host).await?)
}

/// Sets that (`None`: the standard privileges); a running sprite restarts
/// onto a change, its disk kept.
pub async fn set_privileges(
    state: &AppState,
    caller: &Caller,
    name: &str,
    policy: Option<PrivilegesPolicy>,
) -> Result<(), ApiError> {
    let policy = policy.unwrap_or_default();
    if let Some(problem) = policy.problem() {
        return Err(ApiError::Invalid(problem));
    }
    let host = not_a_student(state, caller, name).await?;
    state.host.set_privileges(&host, policy).await?;
    Ok(())
}

/// The network policy of organization `org_id`'s class, if it set one.
pub async fn class_network(
    state: &AppState,
    org_id: &str,
) -> Result<Option<NetworkPolicy>, ApiError> {
    let row: Option<Option<String>> =
        sqlx::query_scalar("SELECT network_policy FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_optional(state.db.pool())
            .await?;
    let Some(json) = row.flatten() else {
        return Ok(None);
    };
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|e| ApiError::Internal(format!("the class's network policy is unreadable: {e}")))
}

/// What a new sprite of the caller is made under: their class's policy
/// for a student, else none.
pub async fn for_new_sprite(state: &AppState, caller: &Caller) -> Result<NetworkPolicy, ApiError> {
    if !caller.student {
        return Ok(NetworkPolicy::default());
    }
    Ok(class_network(state, &caller.org_id)
        .await?
        .unwrap_or_default())
}

/// Class `slug`'s network policy (no rules: none set). Its teachers'.
pub async fn class(
    state: &AppState,
    caller: &Caller,
    slug: &str,
) -> Result<NetworkPolicy, ApiError> {
    let org_id = orgs::teacher(&state.db, caller, slug).await?;
    Ok(class_network(state, &org_id).await?.unwrap_or_default())
}

/// Sets class `slug`'s network policy (no rules: lifts it) and gives it to
/// every student's sprite of the class, in force on return.
pub async fn set_class(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    policy: NetworkPolicy,
) -> Result<NetworkPolicy, ApiError> {
    let org_id = orgs::teacher(&state.db, caller, slug).await?;
    vmhost::check_network_policy(&policy)?;
    let json = (!policy.rules.is_empty())
        .then(|| serde_json::to_string(&policy).expect("a policy serializes"));
    sqlx::query("UPDATE organizations SET network_policy = $1 WHERE id = $2")
        .bind(json)
        .bind(&org_id)
        .execute(state.db.pool())
        .await?;
    let students: Vec<String> = sqlx::query_scalar(
        "SELECT s.host_name FROM sprites s JOIN memberships m \
         ON m.org_id = s.org_id AND m.user_id = s.owner_id \
         WHERE s.org_id = $1 AND m.role = 'member'",
    )
    .bind(&org_id)
    .fetch_all(state.db.pool())
    .await?;
    for host in students {
        let host = vmhost::SpriteName::parse(&host)
            .map_err(|_| ApiError::Internal(format!("bad host name {host}")))?;
        match state.host.set_network_policy(&host, policy.clone()).await {
            Ok(()) => {}
            // Destroyed meanwhile: nothing to keep in line.
            Err(vmhost::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(policy)
}
