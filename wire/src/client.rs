//! The API's calls, each written once: its method, its path, its body and
//! the type its answer reads as. The server routes the same path templates
//! ([`path`]); the CLI (reqwest), the web app (the browser's fetch) and the
//! Rust tests send a [`Call`] through their own transport and read the
//! answer with [`Call::read`], so none of them spells a path or a shape
//! again.
//!
//! ```
//! use sprites_wire::client;
//! let call = client::sprite("my-app");
//! assert_eq!(call.path, "/v1/sprites/my-app");
//! ```

use std::marker::PhantomData;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::accounts::{
    Invitation, InvitationCheck, InvitationList, NewInvitation, SignIn, SignUp, UserList,
    UserSummary,
};
use crate::api::{
    Checkpoint, CheckpointDiff, CreateSprite, ExecSessionList, Fork, KeepAwake, KillSession,
    NewCheckpoint, NewKeepAwake, Progress, Restarted, SaveTemplate, SleepRequest, Sprite,
    SpriteCheck, SpriteList, SpriteUsage, Template, TemplateList, UpdateSprite, Upgraded,
    UsageReport,
};
use crate::classes::{
    Assignment, AssignmentList, Collect, Collection, CollectionList, NewAssignment,
    NewSpriteMember, Reset, ResetDone, SpriteMembers, Started,
};
use crate::fs::{Chmod, Chown, FileEntry, Listing, Mkdir, Move};
use crate::orgs::{
    Join, JoinCode, Limits, Member, MemberList, MintedToken, NewOrganization, NewToken,
    Organization, OrganizationList, Profile, SessionState, SwitchOrganization, TokenList,
};
use crate::policy::{NetworkPolicy, PrivilegesPolicy, ResourcesPolicy};
use crate::services::{Service, ServiceLine, ServiceRequest, ServiceSignal};

/// The API's path templates, as the server routes them; `{...}` are filled
/// in order by [`Call`].
pub mod path {
    pub const SPRITES: &str = "/v1/sprites";
    pub const SPRITE: &str = "/v1/sprites/{name}";
    pub const FORK: &str = "/v1/sprites/{name}/fork";
    pub const SLEEP: &str = "/v1/sprites/{name}/sleep";
    pub const WAKE: &str = "/v1/sprites/{name}/wake";
    pub const RESTART: &str = "/v1/sprites/{name}/restart";
    pub const UPGRADE: &str = "/v1/sprites/{name}/upgrade";
    pub const CHECK: &str = "/v1/sprites/{name}/check";
    pub const NETWORK_POLICY: &str = "/v1/sprites/{name}/policy/network";
    pub const RESOURCES_POLICY: &str = "/v1/sprites/{name}/policy/resources";
    pub const PRIVILEGES_POLICY: &str = "/v1/sprites/{name}/policy/privileges";
    pub const KEEP_AWAKE: &str = "/v1/sprites/{name}/keep-awake";
    pub const KEEP_AWAKE_TASK: &str = "/v1/sprites/{name}/keep-awake/{id}";
    pub const USAGE: &str = "/v1/usage";
    pub const SPRITE_USAGE: &str = "/v1/sprites/{name}/usage";
    pub const CHECKPOINT: &str = "/v1/sprites/{name}/checkpoint";
    pub const CHECKPOINTS: &str = "/v1/sprites/{name}/checkpoints";
    pub const CHECKPOINT_ONE: &str = "/v1/sprites/{name}/checkpoints/{id}";
    pub const RESTORE: &str = "/v1/sprites/{name}/checkpoints/{id}/restore";
    pub const DIFF: &str = "/v1/sprites/{name}/checkpoints/{id}/diff";
    pub const EXEC: &str = "/v1/sprites/{name}/exec";
    pub const EXEC_KILL: &str = "/v1/sprites/{name}/exec/{session}/kill";
    pub const EXEC_ATTACH: &str = "/v1/sprites/{name}/exec/{session}";
    pub const PROXY: &str = "/v1/sprites/{name}/proxy";
    pub const FS_LIST: &str = "/v1/sprites/{name}/fs/list";
    pub const FS_READ: &str = "/v1/sprites/{name}/fs/read";
    pub const FS_READ_AT: &str = "/v1/sprites/{name}/checkpoints/{id}/fs/read";
    pub const FS_WRITE: &str = "/v1/sprites/{name}/fs/write";
    pub const FS_DELETE: &str = "/v1/sprites/{name}/fs/delete";
    pub const FS_MKDIR: &str = "/v1/sprites/{name}/fs/mkdir";
    pub const FS_RENAME: &str = "/v1/sprites/{name}/fs/rename";
    pub const FS_COPY: &str = "/v1/sprites/{name}/fs/copy";
    pub const FS_CHMOD: &str = "/v1/sprites/{name}/fs/chmod";
    pub const FS_CHOWN: &str = "/v1/sprites/{name}/fs/chown";
    pub const FS_WATCH: &str = "/v1/sprites/{name}/fs/watch";
    pub const PORTS_WATCH: &str = "/v1/sprites/{name}/ports/watch";
    pub const CONTROL: &str = "/v1/sprites/{name}/control";
    pub const SERVICES: &str = "/v1/sprites/{name}/services";
    pub const SERVICE: &str = "/v1/sprites/{name}/services/{service}";
    pub const SERVICE_SIGNAL: &str = "/v1/sprites/{name}/services/signal";
    pub const SERVICE_START: &str = "/v1/sprites/{name}/services/{service}/start";
    pub const SERVICE_STOP: &str = "/v1/sprites/{name}/services/{service}/stop";
    pub const SERVICE_RESTART: &str = "/v1/sprites/{name}/services/{service}/restart";
    pub const SERVICE_LOGS: &str = "/v1/sprites/{name}/services/{service}/logs";
    pub const SPRITE_MEMBERS: &str = "/v1/sprites/{name}/members";
    pub const SPRITE_MEMBER: &str = "/v1/sprites/{name}/members/{handle}";
    pub const TEMPLATES: &str = "/v1/templates";
    pub const TEMPLATE: &str = "/v1/templates/{name}";
    pub const TEMPLATE_PICTURE: &str = "/v1/templates/{name}/picture";
    pub const IMAGES: &str = "/v1/images";
    pub const EVENTS: &str = "/v1/events";
    pub const ME: &str = "/v1/auth/me";
    pub const SESSION: &str = "/v1/auth/session";
    pub const SIGN_IN: &str = "/v1/auth/signin";
    pub const SIGN_UP: &str = "/v1/auth/signup";
    pub const SIGN_OUT: &str = "/v1/auth/signout";
    pub const SWITCH_ORGANIZATION: &str = "/v1/auth/organization";
    pub const INVITATION_CHECK: &str = "/v1/auth/invitations/{token}";
    pub const INVITATIONS: &str = "/v1/admin/invitations";
    pub const INVITATION: &str = "/v1/admin/invitations/{id}";
    pub const USERS: &str = "/v1/admin/users";
    pub const USER_DISABLE: &str = "/v1/admin/users/{handle}/disable";
    pub const USER_ENABLE: &str = "/v1/admin/users/{handle}/enable";
    pub const HOSTS: &str = "/v1/admin/hosts";
    pub const HOST_DRAIN: &str = "/v1/admin/hosts/{host}/drain";
    pub const HOST_OPEN: &str = "/v1/admin/hosts/{host}/open";
    pub const SPRITE_MOVE: &str = "/v1/admin/sprites/{org}/{name}/move";
    pub const TOKENS: &str = "/v1/tokens";
    pub const TOKEN: &str = "/v1/tokens/{id}";
    pub const ORGANIZATIONS: &str = "/v1/organizations";
    pub const ORGANIZATION: &str = "/v1/organizations/{slug}";
    pub const JOIN_CODE: &str = "/v1/organizations/{slug}/join-code";
    pub const LIMITS: &str = "/v1/organizations/{slug}/limits";
    pub const CLASS_NETWORK_POLICY: &str = "/v1/organizations/{slug}/policy/network";
    pub const JOIN: &str = "/v1/join";
    pub const MEMBERS: &str = "/v1/organizations/{slug}/members";
    pub const MEMBER: &str = "/v1/organizations/{slug}/members/{handle}";
    pub const ASSIGNMENTS: &str = "/v1/organizations/{slug}/assignments";
    pub const ASSIGNMENT: &str = "/v1/organizations/{slug}/assignments/{name}";
    pub const ASSIGNMENT_START: &str = "/v1/organizations/{slug}/assignments/{name}/start";
    pub const ASSIGNMENT_RESET: &str = "/v1/organizations/{slug}/assignments/{name}/reset";
    pub const ASSIGNMENT_COLLECT: &str = "/v1/organizations/{slug}/assignments/{name}/collect";
    pub const ASSIGNMENT_COLLECTIONS: &str =
        "/v1/organizations/{slug}/assignments/{name}/collections";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// What a path segment or a query value escapes: all but the characters
/// RFC 3986 leaves unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `s` as one path segment or query value.
pub fn escape(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// `template` with each `{...}` replaced, in order, by the next of `args`
/// (escaped).
fn fill(template: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut args = args.iter();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        let arg = args
            .next()
            .unwrap_or_else(|| panic!("{template}: a value for each placeholder"));
        out.push_str(&escape(arg));
        rest = &rest[close..];
    }
    out.push_str(rest);
    debug_assert!(
        args.next().is_none(),
        "{template}: more values than placeholders"
    );
    out
}

/// One call of the API. `A` is what its answer reads as: `()` for an
/// answer without a body, and for an NDJSON answer (checkpoint, restore,
/// kill) the type of each line.
#[derive(Debug, Clone)]
pub struct Call<A> {
    pub method: Method,
    /// The path and query, escaped.
    pub path: String,
    pub body: Option<Value>,
    answer: PhantomData<fn() -> A>,
}

impl<A: DeserializeOwned> Call<A> {
    fn new(method: Method, template: &str, args: &[&str]) -> Call<A> {
        Call {
            method,
            path: fill(template, args),
            body: None,
            answer: PhantomData,
        }
    }

    fn get(template: &str, args: &[&str]) -> Call<A> {
        Call::new(Method::Get, template, args)
    }

    fn post(template: &str, args: &[&str], body: &impl Serialize) -> Call<A> {
        Call::new(Method::Post, template, args).with(body)
    }

    fn put(template: &str, args: &[&str], body: &impl Serialize) -> Call<A> {
        Call::new(Method::Put, template, args).with(body)
    }

    fn delete(template: &str, args: &[&str]) -> Call<A> {
        Call::new(Method::Delete, template, args)
    }

    fn with(mut self, body: &impl Serialize) -> Call<A> {
        self.body = Some(serde_json::to_value(body).expect("API bodies serialize"));
        self
    }

    /// Adds `name=value` to the query.
    pub fn query(mut self, name: &str, value: &str) -> Call<A> {
        let sep = if self.path.contains('?') { '&' } else { '?' };
        self.path = format!("{}{sep}{}={}", self.path, escape(name), escape(value));
        self
    }

    /// The answer's body as `A` (an empty body reads as JSON null).
    pub fn read(&self, text: &str) -> Result<A, serde_json::Error> {
        serde_json::from_str(if text.trim().is_empty() { "null" } else { text })
    }

    /// The answer as `A` when it was first read as JSON.
    pub fn read_value(&self, v: Value) -> Result<A, serde_json::Error> {
        serde_json::from_value(v)
    }
}

// ---- sprites

pub fn sprites(prefix: Option<&str>) -> Call<SpriteList> {
    let call = Call::get(path::SPRITES, &[]);
    match prefix {
        Some(p) => call.query("prefix", p),
        None => call,
    }
}

pub fn sprite(name: &str) -> Call<Sprite> {
    Call::get(path::SPRITE, &[name])
}

pub fn create_sprite(req: &CreateSprite) -> Call<Sprite> {
    Call::post(path::SPRITES, &[], req)
}

pub fn update_sprite(name: &str, req: &UpdateSprite) -> Call<Sprite> {
    Call::put(path::SPRITE, &[name], req)
}

pub fn destroy_sprite(name: &str) -> Call<()> {
    Call::delete(path::SPRITE, &[name])
}

pub fn fork(name: &str, req: &Fork) -> Call<Sprite> {
    Call::post(path::FORK, &[name], req)
}

pub fn sleep(name: &str, cold: bool) -> Call<Sprite> {
    Call::post(path::SLEEP, &[name], &SleepRequest { cold })
}

pub fn wake(name: &str) -> Call<Sprite> {
    Call::post(path::WAKE, &[name], &serde_json::json!({}))
}

/// Stops every process and starts the sprite again, its disk kept.
pub fn restart(name: &str) -> Call<Restarted> {
    Call::new(Method::Post, path::RESTART, &[name])
}

/// Puts the sprite onto the host's current `sprite-init`.
pub fn upgrade(name: &str) -> Call<Upgraded> {
    Call::new(Method::Post, path::UPGRADE, &[name])
}

/// Whether the sprite answers, and how fast.
pub fn check(name: &str) -> Call<SpriteCheck> {
    Call::get(path::CHECK, &[name])
}

/// The names the sprite may reach.
pub fn network_policy(name: &str) -> Call<NetworkPolicy> {
    Call::get(path::NETWORK_POLICY, &[name])
}

/// Replaces them (204); a running sprite is under the new policy at once.
pub fn set_network_policy(name: &str, policy: &NetworkPolicy) -> Call<()> {
    Call::post(path::NETWORK_POLICY, &[name], policy)
}

/// What the sprite may use: its memory limit.
pub fn resources_policy(name: &str) -> Call<ResourcesPolicy> {
    Call::get(path::RESOURCES_POLICY, &[name])
}

/// Sets it (204), in force at once on a running sprite.
pub fn set_resources_policy(name: &str, policy: &ResourcesPolicy) -> Call<()> {
    Call::post(path::RESOURCES_POLICY, &[name], policy)
}

/// Puts back the host's default (204).
pub fn clear_resources_policy(name: &str) -> Call<()> {
    Call::delete(path::RESOURCES_POLICY, &[name])
}

/// What of the kernel the sprite's processes may ask for.
pub fn privileges_policy(name: &str) -> Call<PrivilegesPolicy> {
    Call::get(path::PRIVILEGES_POLICY, &[name])
}

/// Sets it (204); a running sprite restarts onto a change.
pub fn set_privileges_policy(name: &str, policy: &PrivilegesPolicy) -> Call<()> {
    Call::post(path::PRIVILEGES_POLICY, &[name], policy)
}

/// Puts back the standard privileges (204).
pub fn clear_privileges_policy(name: &str) -> Call<()> {
    Call::delete(path::PRIVILEGES_POLICY, &[name])
}

pub fn keep_awake(name: &str, req: &NewKeepAwake) -> Call<KeepAwake> {
    Call::post(path::KEEP_AWAKE, &[name], req)
}

pub fn end_keep_awake(name: &str, id: &str) -> Call<()> {
    Call::delete(path::KEEP_AWAKE_TASK, &[name, id])
}

pub fn usage(name: &str) -> Call<SpriteUsage> {
    Call::get(path::SPRITE_USAGE, &[name])
}

pub fn usage_all() -> Call<UsageReport> {
    Call::get(path::USAGE, &[])
}

// ---- checkpoints and sessions

/// NDJSON: one [`Progress`] a line.
pub fn checkpoint(name: &str, req: &NewCheckpoint) -> Call<Progress> {
    Call::post(path::CHECKPOINT, &[name], req)
}

pub fn checkpoints(name: &str) -> Call<Vec<Checkpoint>> {
    Call::get(path::CHECKPOINTS, &[name])
}

pub fn checkpoint_info(name: &str, id: &str) -> Call<Checkpoint> {
    Call::get(path::CHECKPOINT_ONE, &[name, id])
}

pub fn delete_checkpoint(name: &str, id: &str) -> Call<()> {
    Call::delete(path::CHECKPOINT_ONE, &[name, id])
}

/// NDJSON: one [`Progress`] a line.
pub fn restore(name: &str, id: &str) -> Call<Progress> {
    Call::post(path::RESTORE, &[name, id], &serde_json::json!({}))
}

/// What changed since checkpoint `id`: to the sprite as it is now, or to
/// checkpoint `to`.
pub fn diff(name: &str, id: &str, to: Option<&str>) -> Call<CheckpointDiff> {
    let call = Call::get(path::DIFF, &[name, id]);
    match to {
        Some(t) => call.query("to", t),
        None => call,
    }
}

pub fn exec_sessions(name: &str) -> Call<ExecSessionList> {
    Call::get(path::EXEC, &[name])
}

/// NDJSON: one [`Progress`] a line, until the session ended.
pub fn kill_session(name: &str, session: &str, req: &KillSession) -> Call<Progress> {
    Call::post(path::EXEC_KILL, &[name, session], req)
}

// ---- files

/// A directory's entries, or the one entry of a file.
pub fn list_files(name: &str, path: &str) -> Call<Listing> {
    Call::get(path::FS_LIST, &[name]).query("path", path)
}

/// A file's bytes (the answer is not JSON: read it as bytes); at
/// checkpoint `at` when given.
pub fn read_file(name: &str, path: &str, at: Option<&str>) -> Call<()> {
    let call = match at {
        Some(id) => Call::get(path::FS_READ_AT, &[name, id]),
        None => Call::get(path::FS_READ, &[name]),
    };
    call.query("path", path)
}

/// Writes a file; the body (its bytes) is the transport's to send.
pub fn write_file(name: &str, path: &str) -> Call<FileEntry> {
    Call::new(Method::Put, path::FS_WRITE, &[name]).query("path", path)
}

pub fn delete_file(name: &str, path: &str, recursive: bool) -> Call<()> {
    let call = Call::delete(path::FS_DELETE, &[name]).query("path", path);
    if recursive {
        call.query("recursive", "true")
    } else {
        call
    }
}

pub fn mkdir(name: &str, req: &Mkdir) -> Call<FileEntry> {
    Call::post(path::FS_MKDIR, &[name], req)
}

pub fn rename(name: &str, req: &Move) -> Call<FileEntry> {
    Call::post(path::FS_RENAME, &[name], req)
}

pub fn copy(name: &str, req: &Move) -> Call<FileEntry> {
    Call::post(path::FS_COPY, &[name], req)
}

pub fn chmod(name: &str, req: &Chmod) -> Call<FileEntry> {
    Call::post(path::FS_CHMOD, &[name], req)
}

pub fn chown(name: &str, req: &Chown) -> Call<FileEntry> {
    Call::post(path::FS_CHOWN, &[name], req)
}

// ---- services

pub fn services(name: &str) -> Call<Vec<Service>> {
    Call::get(path::SERVICES, &[name])
}

/// NDJSON: creates or replaces the service and starts it; its events for
/// `follow` (`2s`), then `complete`.
pub fn put_service(
    name: &str,
    service: &str,
    req: &ServiceRequest,
    follow: &str,
) -> Call<ServiceLine> {
    Call::put(path::SERVICE, &[name, service], req).query("duration", follow)
}

/// NDJSON: the last `lines` lines, then new ones for `follow` if given.
pub fn service_logs(
    name: &str,
    service: &str,
    lines: usize,
    follow: Option<&str>,
) -> Call<ServiceLine> {
    let call = Call::get(path::SERVICE_LOGS, &[name, service]).query("lines", &lines.to_string());
    match follow {
        Some(f) => call.query("duration", f),
        None => call,
    }
}

/// NDJSON: starts the service (`restart`: stops it first); its events for
/// `follow`.
pub fn start_service(name: &str, service: &str, restart: bool, follow: &str) -> Call<ServiceLine> {
    let template = if restart {
        path::SERVICE_RESTART
    } else {
        path::SERVICE_START
    };
    Call::new(Method::Post, template, &[name, service]).query("duration", follow)
}

/// NDJSON: SIGTERM, then SIGKILL after `timeout` (`10s`).
pub fn stop_service(name: &str, service: &str, timeout: &str) -> Call<ServiceLine> {
    Call::new(Method::Post, path::SERVICE_STOP, &[name, service]).query("timeout", timeout)
}

pub fn delete_service(name: &str, service: &str) -> Call<()> {
    Call::delete(path::SERVICE, &[name, service])
}

pub fn signal_service(name: &str, req: &ServiceSignal) -> Call<()> {
    Call::post(path::SERVICE_SIGNAL, &[name], req)
}

// ---- templates

pub fn templates() -> Call<TemplateList> {
    Call::get(path::TEMPLATES, &[])
}

pub fn save_template(req: &SaveTemplate) -> Call<Template> {
    Call::post(path::TEMPLATES, &[], req)
}

pub fn delete_template(name: &str) -> Call<()> {
    Call::delete(path::TEMPLATE, &[name])
}

/// A root file system as a template; the body (a tar archive) is the
/// transport's to send.
pub fn import_image(
    name: &str,
    scope: &str,
    title: Option<&str>,
    description: Option<&str>,
) -> Call<Template> {
    let mut call = Call::new(Method::Post, path::IMAGES, &[])
        .query("name", name)
        .query("scope", scope);
    if let Some(t) = title {
        call = call.query("title", t);
    }
    if let Some(d) = description {
        call = call.query("description", d);
    }
    call
}

// ---- the caller, their organizations and tokens

pub fn me() -> Call<Profile> {
    Call::get(path::ME, &[])
}

pub fn session() -> Call<SessionState> {
    Call::get(path::SESSION, &[])
}

pub fn sign_in(req: &SignIn) -> Call<Profile> {
    Call::post(path::SIGN_IN, &[], req)
}

pub fn sign_up(req: &SignUp) -> Call<Profile> {
    Call::post(path::SIGN_UP, &[], req)
}

pub fn sign_out() -> Call<()> {
    Call::post(path::SIGN_OUT, &[], &serde_json::json!({}))
}

pub fn switch_organization(slug: &str) -> Call<Profile> {
    Call::post(
        path::SWITCH_ORGANIZATION,
        &[],
        &SwitchOrganization { slug: slug.into() },
    )
}

/// What an invitation link is for, before anything is typed.
pub fn invitation_check(token: &str) -> Call<InvitationCheck> {
    Call::get(path::INVITATION_CHECK, &[token])
}

// ---- the server's admins

pub fn invitations() -> Call<InvitationList> {
    Call::get(path::INVITATIONS, &[])
}

pub fn invite(req: &NewInvitation) -> Call<Invitation> {
    Call::post(path::INVITATIONS, &[], req)
}

pub fn withdraw_invitation(id: &str) -> Call<()> {
    Call::delete(path::INVITATION, &[id])
}

pub fn users() -> Call<UserList> {
    Call::get(path::USERS, &[])
}

/// The hosts of the cluster, for its admins.
pub fn hosts() -> Call<crate::api::HostList> {
    Call::get(path::HOSTS, &[])
}

/// Moves every sprite off host `host`, which takes no new one until opened.
pub fn drain_host(host: &str) -> Call<crate::api::DrainReport> {
    Call::post(path::HOST_DRAIN, &[host], &serde_json::json!({}))
}

/// Lets host `host` take new sprites again.
pub fn open_host(host: &str) -> Call<crate::api::ClusterHost> {
    Call::post(path::HOST_OPEN, &[host], &serde_json::json!({}))
}

/// Moves sprite `name` of organization `org` to another host.
pub fn move_sprite(
    org: &str,
    name: &str,
    req: &crate::api::MoveSprite,
) -> Call<crate::api::SpriteMoved> {
    Call::post(path::SPRITE_MOVE, &[org, name], req)
}

/// Disables (`disabled`) or enables again the account `handle`.
pub fn set_disabled(handle: &str, disabled: bool) -> Call<UserSummary> {
    let template = if disabled {
        path::USER_DISABLE
    } else {
        path::USER_ENABLE
    };
    Call::post(template, &[handle], &serde_json::json!({}))
}

// ---- tokens and organizations

pub fn tokens() -> Call<TokenList> {
    Call::get(path::TOKENS, &[])
}

pub fn create_token(req: &NewToken) -> Call<MintedToken> {
    Call::post(path::TOKENS, &[], req)
}

pub fn revoke_token(id: &str) -> Call<()> {
    Call::delete(path::TOKEN, &[id])
}

pub fn organizations() -> Call<OrganizationList> {
    Call::get(path::ORGANIZATIONS, &[])
}

pub fn organization(slug: &str) -> Call<Organization> {
    Call::get(path::ORGANIZATION, &[slug])
}

pub fn create_organization(req: &NewOrganization) -> Call<Organization> {
    Call::post(path::ORGANIZATIONS, &[], req)
}

pub fn new_join_code(slug: &str) -> Call<JoinCode> {
    Call::post(path::JOIN_CODE, &[slug], &serde_json::json!({}))
}

pub fn set_limits(slug: &str, limits: &Limits) -> Call<Organization> {
    Call::put(path::LIMITS, &[slug], limits)
}

/// A class's network policy for its students' sprites (teachers).
pub fn class_network_policy(slug: &str) -> Call<NetworkPolicy> {
    Call::get(path::CLASS_NETWORK_POLICY, &[slug])
}

/// Sets it (no rules: lifts it) on every student's sprite of the class.
pub fn set_class_network_policy(slug: &str, policy: &NetworkPolicy) -> Call<NetworkPolicy> {
    Call::put(path::CLASS_NETWORK_POLICY, &[slug], policy)
}

pub fn join(code: &str) -> Call<Organization> {
    Call::post(path::JOIN, &[], &Join { code: code.into() })
}

pub fn members(slug: &str) -> Call<MemberList> {
    Call::get(path::MEMBERS, &[slug])
}

pub fn set_member(slug: &str, member: &Member) -> Call<Member> {
    Call::post(path::MEMBERS, &[slug], member)
}

pub fn remove_member(slug: &str, handle: &str) -> Call<()> {
    Call::delete(path::MEMBER, &[slug, handle])
}

// ---- classes

pub fn assignments(slug: &str) -> Call<AssignmentList> {
    Call::get(path::ASSIGNMENTS, &[slug])
}

pub fn assignment(slug: &str, name: &str) -> Call<Assignment> {
    Call::get(path::ASSIGNMENT, &[slug, name])
}

pub fn create_assignment(slug: &str, req: &NewAssignment) -> Call<Assignment> {
    Call::post(path::ASSIGNMENTS, &[slug], req)
}

pub fn delete_assignment(slug: &str, name: &str) -> Call<()> {
    Call::delete(path::ASSIGNMENT, &[slug, name])
}

pub fn start_assignment(slug: &str, name: &str) -> Call<Started> {
    Call::post(
        path::ASSIGNMENT_START,
        &[slug, name],
        &serde_json::json!({}),
    )
}

pub fn reset_student(slug: &str, name: &str, student: &str) -> Call<ResetDone> {
    Call::post(
        path::ASSIGNMENT_RESET,
        &[slug, name],
        &Reset {
            student: student.into(),
        },
    )
}

pub fn collect(slug: &str, name: &str, label: &str) -> Call<Collection> {
    Call::post(
        path::ASSIGNMENT_COLLECT,
        &[slug, name],
        &Collect {
            label: label.into(),
        },
    )
}

pub fn collections(slug: &str, name: &str) -> Call<CollectionList> {
    Call::get(path::ASSIGNMENT_COLLECTIONS, &[slug, name])
}

pub fn sprite_members(name: &str) -> Call<SpriteMembers> {
    Call::get(path::SPRITE_MEMBERS, &[name])
}

pub fn add_sprite_member(name: &str, handle: &str) -> Call<SpriteMembers> {
    Call::post(
        path::SPRITE_MEMBERS,
        &[name],
        &NewSpriteMember {
            handle: handle.into(),
        },
    )
}

pub fn remove_sprite_member(name: &str, handle: &str) -> Call<()> {
    Call::delete(path::SPRITE_MEMBER, &[name, handle])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_in_order_and_escaped() {
        assert_eq!(
            assignment("cs 101", "hw/1").path,
            "/v1/organizations/cs%20101/assignments/hw%2F1"
        );
        assert_eq!(
            diff("app", "v3", Some("v5")).path,
            "/v1/sprites/app/checkpoints/v3/diff?to=v5"
        );
        assert_eq!(
            import_image("py", "owner", Some("Py & more"), None).path,
            "/v1/images?name=py&scope=owner&title=Py%20%26%20more"
        );
    }

    #[test]
    fn an_empty_answer_reads_as_unit_and_a_body_as_its_type() {
        destroy_sprite("app").read("").unwrap();
        let j = new_join_code("cs101")
            .read(r#"{"join_code":"abc"}"#)
            .unwrap();
        assert_eq!(j.join_code, "abc");
        assert_eq!(
            sleep("app", true).body,
            Some(serde_json::json!({"cold": true}))
        );
    }
}
