//! Who a request acts as, and the cache of who recent tokens stand for.
//! Every layer names the caller; this module names nothing else, so that
//! the database handle (which keeps the cache) and the domain modules that
//! take a caller do not depend on one another through it.

/// Who a request acts as: a user within one organization.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    /// The user's handle (`sprite` for a sprite acting for itself), as
    /// others see them: in presence lists and file events.
    pub handle: String,
    pub org_id: String,
    pub org_slug: String,
    /// A student of a class: sees only the sprites they own or were added to.
    pub student: bool,
}

/// Callers of recently seen tokens, so that a burst of calls (an agent's
/// execs) skips the token query. An entry is trusted for [`Self::TTL`];
/// revoking a token or removing a member clears them all on this server.
/// Other servers sharing a PostgreSQL database notice within the TTL.
#[derive(Clone, Debug, Default)]
pub struct TokenCache(
    std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, (Caller, std::time::Instant)>>,
    >,
);

impl TokenCache {
    const TTL: std::time::Duration = std::time::Duration::from_secs(10);
    const MAX: usize = 10_000;

    pub(crate) fn get(&self, hash: &str) -> Option<Caller> {
        let map = self.0.lock().unwrap();
        map.get(hash)
            .filter(|(_, at)| at.elapsed() < Self::TTL)
            .map(|(c, _)| c.clone())
    }

    pub(crate) fn put(&self, hash: String, caller: Caller) {
        let mut map = self.0.lock().unwrap();
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(hash, (caller, std::time::Instant::now()));
    }

    /// Forgets every entry: a token or a membership ended.
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}
