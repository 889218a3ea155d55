//! Accounts on a server whose sign-up is by invitation: the sign-up body,
//! the admin's invitations and the list of the server's people.
//!
//! Times are milliseconds since the Unix epoch, as API tokens give them.

use serde::{Deserialize, Serialize};

/// `POST /v1/auth/signup`. On a server without open sign-up, a person
/// needs one of `invite` (an admin's invitation) or `join_code` (a class's
/// code, which makes them a student of that class and nothing more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    pub email: String,
    pub handle: String,
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_code: Option<String>,
}

/// `POST /v1/auth/signin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SignIn {
    /// Email or handle.
    pub login: String,
    pub password: String,
}

/// `POST /v1/admin/invitations`: an invitation for one address, or for
/// whoever has the link when `email` is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// An invitation not used yet. Its secret (`token`) is only in the answer
/// that made it: the server keeps a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Invitation {
    pub id: String,
    /// The address it is for; the person signing up with it must use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The admin who made it (a handle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// What goes in the sign-up link: `/signup?invite=<token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl Invitation {
    /// The page that signs a person up with this invitation, on the app
    /// at `origin` (`https://sprites.example.com`).
    pub fn link(origin: &str, token: &str) -> String {
        format!("{}/signup?invite={token}", origin.trim_end_matches('/'))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct InvitationList {
    pub invitations: Vec<Invitation>,
}

/// `GET /v1/auth/invitations/{token}`: what the sign-up page shows before
/// the person types anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct InvitationCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub expires_at: i64,
}

/// One person with an account on the server, as its admins see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UserSummary {
    pub handle: String,
    pub email: String,
    pub is_admin: bool,
    /// A disabled account cannot sign in, and its sessions and tokens
    /// answer 401; nothing of it is deleted.
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UserList {
    pub users: Vec<UserSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitation_link_is_the_sign_up_page_with_its_token() {
        assert_eq!(
            Invitation::link("http://localhost:8080/", "abc"),
            "http://localhost:8080/signup?invite=abc"
        );
    }

    #[test]
    fn a_sign_up_without_invitation_or_code_reads_as_before() {
        let s: SignUp =
            serde_json::from_str(r#"{"email":"a@b.c","handle":"a","password":"12345678"}"#)
                .unwrap();
        assert_eq!((s.invite, s.join_code), (None, None));
    }
}
