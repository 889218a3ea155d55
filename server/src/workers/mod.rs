//! The server's background work, each on its own task: putting idle
//! sprites to sleep, shipping them to the object store, and counting what
//! `/metrics` reports.

pub mod idle;
pub mod metrics;
pub mod replication;
