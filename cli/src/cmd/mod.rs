//! The commands, one file per group; each parses nothing itself (clap did)
//! and speaks to the API only through `sprites_wire::client`'s calls.

pub mod checkpoints;
pub mod policy;
pub mod services;
pub mod sessions;
pub mod sprites;
pub mod templates;
