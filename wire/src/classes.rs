//! What classes do with sprites: assignments handed out from a teacher's
//! checkpoint, collections of everybody's work, and sprites shared with
//! members (`/v1/organizations/{slug}/assignments`,
//! `/v1/sprites/{name}/members`).

use serde::{Deserialize, Serialize};

/// A sprite as a class's pages list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SpriteState {
    pub name: String,
    /// `running`, `warm` or `cold`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub last_active_at: Option<String>,
}

/// `POST /v1/organizations/{slug}/assignments`: checkpoint `checkpoint`
/// of the teacher's sprite `sprite`, handed out as assignment `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewAssignment {
    /// Students' sprites are named `<name>-<handle>`.
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub instructions: String,
    pub sprite: String,
    pub checkpoint: String,
    /// The file to open first in students' workspaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<String>,
}

/// An assignment as a student or a teacher sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Assignment {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub instructions: String,
    #[serde(default)]
    pub open: Option<String>,
    #[serde(default)]
    pub created_at: String,
    /// The caller's own sprite for it; null before they start.
    #[serde(default)]
    pub mine: Option<SpriteState>,
    /// How many students started it (teachers, in the list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
    /// Every student with their sprite for it (teachers, for one
    /// assignment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub students: Option<Vec<Student>>,
}

/// A student of the class and their work on one assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Student {
    pub handle: String,
    /// Null before they start.
    #[serde(default)]
    pub sprite: Option<SpriteState>,
    #[serde(default)]
    pub started_at: Option<String>,
}

/// `GET /v1/organizations/{slug}/assignments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AssignmentList {
    pub assignments: Vec<Assignment>,
    /// Whether the caller teaches the class.
    #[serde(default)]
    pub teacher: bool,
}

/// The answer to `.../assignments/{name}/start`: the caller's sprite for
/// it and the checkpoint it started from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Started {
    pub assignment: String,
    pub sprite: Option<SpriteState>,
    pub start_checkpoint: String,
    #[serde(default)]
    pub open: Option<String>,
}

/// `POST .../assignments/{name}/reset`: a student's sprite back to the
/// start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Reset {
    /// The student's handle.
    pub student: String,
}

/// The answer to a reset: the checkpoint the student's work was kept as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ResetDone {
    pub student: String,
    pub sprite: String,
    pub restored: String,
    pub work_kept_as: String,
}

/// `POST .../assignments/{name}/collect`: one checkpoint of every
/// student's sprite, labelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Collect {
    pub label: String,
}

/// One collection of everybody's work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Collection {
    pub id: String,
    pub label: String,
    pub created_at: String,
    pub students: Vec<Collected>,
}

/// One student's part of a collection: the checkpoint, or why there is
/// none (a full disk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Collected {
    pub handle: String,
    pub sprite: String,
    pub checkpoint: Option<String>,
    pub error: Option<String>,
}

/// `GET .../assignments/{name}/collections`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CollectionList {
    pub collections: Vec<Collection>,
}

/// `POST /v1/sprites/{name}/members`: shares the sprite with `handle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSpriteMember {
    pub handle: String,
}

/// Someone a sprite is shared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SpriteMember {
    pub handle: String,
    pub added_at: String,
}

/// `GET /v1/sprites/{name}/members`: its owner (a handle; null for a
/// sprite made before owners were kept) and who shares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SpriteMembers {
    pub owner: Option<String>,
    pub members: Vec<SpriteMember>,
}
