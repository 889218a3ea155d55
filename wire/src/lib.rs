//! Types that cross the wire between the server, the web app and the CLI.
//!
//! This crate does no I/O so it compiles to WebAssembly unchanged.

pub mod api;
pub mod names;

pub use names::{CheckpointId, NameError, SpriteName};
