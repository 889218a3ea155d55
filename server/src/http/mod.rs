//! The transport: the API's routes, sprites' own URLs (the reverse proxy),
//! who is calling (tokens, sessions, signed hand-offs) and each sprite's
//! management socket. A route parses, makes one domain call and answers.

pub mod auth;
pub mod mgmt;
pub mod proxy;
pub mod routes;
pub mod session;
pub mod signing;
pub mod tls;
