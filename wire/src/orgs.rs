//! Organizations, their members and the caller's profile and tokens: the
//! bodies of `/v1/organizations`, `/v1/join`, `/v1/auth/me` and
//! `/v1/tokens`.
//!
//! An organization can be a class: its owners and admins teach, its
//! members are students who joined with the class's code.

use serde::{Deserialize, Serialize};

/// The roles in an organization, most powerful first.
pub const ROLES: [&str; 3] = ["owner", "admin", "member"];

/// Whether `role` teaches in a class (and manages a team).
pub fn manages(role: &str) -> bool {
    role == "owner" || role == "admin"
}

/// An organization as one of its members sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Organization {
    pub slug: String,
    pub name: String,
    /// Every user's own organization, with them as its one member.
    #[serde(default)]
    pub personal: bool,
    /// A class: owners and admins teach, members are students.
    #[serde(default)]
    pub class: bool,
    /// The caller's role: `owner`, `admin` or `member`.
    #[serde(default)]
    pub role: String,
    /// Per-student limits (`GET /v1/organizations/{slug}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// The class's join code, for its teachers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_code: Option<String>,
}

impl Organization {
    /// Whether the caller teaches this class.
    pub fn teaches(&self) -> bool {
        self.class && manages(&self.role)
    }
}

/// `GET /v1/organizations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrganizationList {
    pub organizations: Vec<Organization>,
}

/// `POST /v1/organizations`: a team organization, or a class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    pub slug: String,
    pub name: String,
    /// A class: teachers and students who join with a code.
    #[serde(default)]
    pub class: bool,
}

/// What each student of a class may use; null is no limit. The body of
/// `PUT /v1/organizations/{slug}/limits` too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Sprites each student may have.
    pub max_sprites_per_member: Option<i64>,
    /// Bytes of disk each student's sprites may use together.
    pub max_disk_per_member: Option<i64>,
}

/// `POST /v1/organizations/{slug}/join-code`: the class's new code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct JoinCode {
    pub join_code: String,
}

/// `POST /v1/join`: joins the class whose code this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Join {
    pub code: String,
}

/// A member of an organization; `POST /v1/organizations/{slug}/members`
/// adds one or changes their role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Member {
    pub handle: String,
    #[serde(default = "member_role")]
    pub role: String,
}

fn member_role() -> String {
    "member".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MemberList {
    pub members: Vec<Member>,
}

/// `GET /v1/auth/me`: the signed-in user and their organizations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Profile {
    pub email: String,
    pub handle: String,
    #[serde(default)]
    pub is_admin: bool,
    /// The organization the caller acts in now.
    pub organization: String,
    #[serde(default)]
    pub organizations: Vec<Organization>,
    /// A browser session's token against cross-site requests, sent back
    /// as `X-CSRF-Token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

/// `GET /v1/auth/session`: who is signed in (null for nobody) and whether
/// anyone may sign up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionState {
    pub profile: Option<Profile>,
    #[serde(default)]
    pub signup_open: bool,
}

/// `POST /v1/auth/organization`: act in another of one's organizations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SwitchOrganization {
    pub slug: String,
}

/// An API token without its secret. Times are milliseconds since the
/// Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Token {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    #[serde(default)]
    pub last_used_at: Option<i64>,
}

/// `GET /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TokenList {
    pub tokens: Vec<Token>,
}

/// `POST /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NewToken {
    pub name: String,
    /// The organization it acts in (default: the caller's current one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
}

/// The answer to `POST /v1/tokens`: the secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MintedToken {
    pub name: String,
    pub token: String,
    pub organization: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_entry_reads_without_limits_or_code() {
        let o: Organization = serde_json::from_str(
            r#"{"slug":"cs101","name":"CS 101","personal":false,"class":true,"role":"admin"}"#,
        )
        .unwrap();
        assert!(o.teaches());
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"slug":"cs101","name":"CS 101","personal":false,"class":true,"role":"admin"})
        );
    }

    #[test]
    fn limits_say_null_for_none() {
        assert_eq!(
            serde_json::to_string(&Limits::default()).unwrap(),
            r#"{"max_sprites_per_member":null,"max_disk_per_member":null}"#
        );
    }
}
