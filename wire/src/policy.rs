//! A sprite's policies (`/v1/sprites/{name}/policy/...`), in the shapes of
//! the Sprites SDKs.

use serde::{Deserialize, Serialize};

/// `GET`/`POST /v1/sprites/{name}/policy/network`: the names a sprite may
/// reach. No rules: the sprite reaches the whole internet. With rules, it
/// reaches only addresses its resolver gave for names the rules allow (for
/// their TTL); every other name is answered REFUSED and every other address
/// is unreachable, IP literals included.
///
/// A name is decided by the most specific rule matching it (`api.x.com`,
/// then the longest `*.x.com` above it, then `*`); a deny wins a tie. A
/// name no rule matches is allowed only if no rule allows anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NetworkPolicy {
    pub rules: Vec<PolicyRule>,
}

/// One rule: a `domain` with its `action`, or `include` of a preset
/// (`"defaults"`: the usual package registries and code hosts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// `example.com`, `*.example.com` (its subdomains) or `*` (any name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<PolicyAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<String>,
}

impl PolicyRule {
    pub fn allow(domain: &str) -> PolicyRule {
        PolicyRule {
            domain: Some(domain.into()),
            action: Some(PolicyAction::Allow),
            include: None,
        }
    }

    pub fn deny(domain: &str) -> PolicyRule {
        PolicyRule {
            domain: Some(domain.into()),
            action: Some(PolicyAction::Deny),
            include: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum PolicyAction {
    Allow,
    Deny,
}

/// `GET`/`POST`/`DELETE /v1/sprites/{name}/policy/resources`: what a
/// sprite may use. Its memory limit is the sprite's cgroup's, in force at
/// once on a running sprite and kept through sleeps and restarts; `DELETE`
/// puts back the host's default. A POST without `memory` changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ResourcesPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MemoryPolicy {
    /// From 64 to 262,144 (256 GiB).
    pub limit_mb: u64,
    /// Growing the limit when the sprite needs more: this server keeps a
    /// sprite at its limit, so only `false` is taken.
    #[serde(default)]
    pub autoscale: bool,
}

/// `GET`/`POST`/`DELETE /v1/sprites/{name}/policy/privileges`: how much of
/// the kernel a sprite's processes may ask for, set when it starts: a
/// change restarts a running sprite onto it (its disk kept).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrivilegesPolicy {
    /// `standard` (also empty: the default) or `minimal`, which also
    /// refuses tracing other processes, reading or writing their memory
    /// and io_uring, and sets no-new-privileges. `privileged` is not
    /// offered.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    /// Devices the sprite may open besides the usual ones: only
    /// `/dev/net/tun` (a tunnel, inside the sprite's own network).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Processes cannot gain privileges by running set-user-ID programs
    /// (`sudo`, `su`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_new_privileges: bool,
}

/// The devices a [`PrivilegesPolicy`] may name.
pub const ALLOWED_DEVICES: &[&str] = &["/dev/net/tun"];

impl PrivilegesPolicy {
    /// Why it cannot be had here, if it cannot.
    pub fn problem(&self) -> Option<String> {
        match self.profile.as_str() {
            "" | "standard" | "minimal" => {}
            "privileged" => {
                return Some(
                    "profile \"privileged\": not offered here; a sprite shares the host's \
                     kernel, and its guards stay on (use \"standard\" or \"minimal\")"
                        .into(),
                )
            }
            other => {
                return Some(format!(
                    "profile {other:?}: use \"standard\" or \"minimal\""
                ))
            }
        }
        self.devices
            .iter()
            .find(|d| !ALLOWED_DEVICES.contains(&d.as_str()))
            .map(|d| {
                format!(
                    "device {d:?}: only {} may be added",
                    ALLOWED_DEVICES.join(", ")
                )
            })
    }

    /// Whether it asks for the stricter profile.
    pub fn minimal(&self) -> bool {
        self.profile == "minimal"
    }
}
