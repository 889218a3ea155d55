//! A small in-memory cache for lookups on hot paths, made safe against
//! deletions by generations: whatever could make an entry wrong moves the
//! generation on, and an entry stored by a lookup that began in an older
//! generation is never answered. So a lookup racing a deletion cannot bring
//! the deleted answer back.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

pub struct GenCache<K, V> {
    inner: Arc<Mutex<Inner<K, V>>>,
    max: usize,
}

struct Inner<K, V> {
    generation: u64,
    entries: HashMap<K, V>,
}

impl<K, V> Clone for GenCache<K, V> {
    fn clone(&self) -> Self {
        GenCache {
            inner: self.inner.clone(),
            max: self.max,
        }
    }
}

impl<K: Hash + Eq, V: Clone> GenCache<K, V> {
    /// A cache of at most `max` entries (it empties itself when full).
    pub fn new(max: usize) -> Self {
        GenCache {
            inner: Arc::new(Mutex::new(Inner {
                generation: 0,
                entries: HashMap::new(),
            })),
            max,
        }
    }

    /// Read before a lookup; hand it to [`put`](Self::put) after.
    pub fn generation(&self) -> u64 {
        self.inner.lock().unwrap().generation
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.lock().unwrap().entries.get(key).cloned()
    }

    /// Stores the answer of a lookup that began at `generation`, unless
    /// the cache was invalidated since.
    pub fn put(&self, key: K, value: V, generation: u64) {
        let mut inner = self.inner.lock().unwrap();
        if generation != inner.generation {
            return;
        }
        if inner.entries.len() >= self.max {
            inner.entries.clear();
        }
        inner.entries.insert(key, value);
    }

    /// Forgets everything, and every lookup under way.
    pub fn invalidate(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.generation += 1;
        inner.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_across_an_invalidation_is_not_stored() {
        let c = GenCache::new(2);
        let g = c.generation();
        c.put("a", 1, g);
        assert_eq!(c.get(&"a"), Some(1));
        let g = c.generation();
        c.invalidate();
        c.put("b", 2, g);
        assert_eq!(c.get(&"a"), None);
        assert_eq!(c.get(&"b"), None);
        let g = c.generation();
        for (k, v) in [("x", 1), ("y", 2), ("z", 3)] {
            c.put(k, v, g);
        }
        assert_eq!(c.get(&"z"), Some(3));
        assert_eq!(c.get(&"x"), None, "full: emptied before z");
    }
}
