//! The server's background work, each on its own task: putting idle
//! sprites to sleep, shipping them to the object store, counting what
//! `/metrics` reports, and, with host daemons, hearing from every host.

pub mod hosts;
pub mod idle;
pub mod metrics;
pub mod replication;
