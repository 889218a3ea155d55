//! Who is attached to which terminal session right now, so people sharing
//! a sprite see who else is there. In memory: a connection counts while
//! its WebSocket lives, and a restarted server starts with nobody.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A session of a host sprite.
type Key = (String, u64);
/// Its open connections, each with its user.
type Connections = Vec<(u64, String)>;

#[derive(Clone, Default)]
pub struct Presence {
    here: Arc<Mutex<HashMap<Key, Connections>>>,
}

static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

impl Presence {
    /// `user_id` is attached to `session` of host sprite `host` until the
    /// returned guard goes.
    pub fn join(&self, host: &str, session: u64, user_id: &str) -> Here {
        let conn = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        let key = (host.to_string(), session);
        self.here
            .lock()
            .expect("presence lock")
            .entry(key.clone())
            .or_default()
            .push((conn, user_id.to_string()));
        Here {
            presence: self.clone(),
            key,
            conn,
        }
    }

    /// The users attached to a session, each once, in the order of their
    /// oldest connection still open.
    pub fn users(&self, host: &str, session: u64) -> Vec<String> {
        let here = self.here.lock().expect("presence lock");
        let mut users: Vec<String> = Vec::new();
        for (_, user) in here.get(&(host.to_string(), session)).into_iter().flatten() {
            if !users.contains(user) {
                users.push(user.clone());
            }
        }
        users
    }
}

/// One attached connection; leaving is dropping it.
pub struct Here {
    presence: Presence,
    key: Key,
    conn: u64,
}

impl Drop for Here {
    fn drop(&mut self) {
        let mut here = self.presence.here.lock().expect("presence lock");
        if let Some(list) = here.get_mut(&self.key) {
            list.retain(|(c, _)| *c != self.conn);
            if list.is_empty() {
                here.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_listed_once_while_attached() {
        let p = Presence::default();
        let a1 = p.join("s1", 1, "ada");
        let _b = p.join("s1", 1, "bob");
        let a2 = p.join("s1", 1, "ada");
        let _other = p.join("s1", 2, "cy");
        assert_eq!(p.users("s1", 1), ["ada", "bob"]);
        drop(a1);
        // Ada is still there on her second connection, which came after bob's.
        assert_eq!(p.users("s1", 1), ["bob", "ada"]);
        drop(a2);
        assert_eq!(p.users("s1", 1), ["bob"]);
        assert_eq!(p.users("s1", 2), ["cy"]);
        assert!(p.users("s2", 1).is_empty());
    }
}
