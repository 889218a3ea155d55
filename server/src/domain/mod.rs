//! What the server means by its words: sprites as an organization sees
//! them, accounts, organizations and classes, templates, and the live
//! events and presence people see. The transport calls into these; these
//! reach sprites only through the Host's verbs and the database only
//! through [`crate::db`].

pub mod access;
pub mod accounts;
pub mod admin;
pub mod cache;
pub mod caller;
pub mod checkpoints;
pub mod classes;
pub mod events;
pub mod files;
pub mod hosts;
pub mod limits;
pub mod orgs;
pub mod policy;
pub mod ports;
pub mod presence;
pub mod services;
pub mod sessions;
pub mod sprites;
pub mod states;
pub mod templates;
