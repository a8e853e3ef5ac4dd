//! Per-client values kept in memory between page reads, valid for one
//! revision of the client (`client_revision`, bumped by triggers in the
//! transaction of every change the value is built from).
//!
//! The approvals page judges every open bill of the clients it shows (the
//! suggested batch needs them all): ten thousand rows for a hundred clients,
//! most of a page's time. An advisor reads the page far more often than a
//! client's bills change, so each client's bills are read again only when
//! its revision moved. Decisions never read from here: an approval reads
//! its bills afresh inside the client's lock.
//!
//! Correct on several instances: the revision is read from the database
//! before the value is built, so a value can only be newer than its
//! revision, never older (a change in between moves the revision, and the
//! next read builds the value again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How many clients' values are kept; past it the least recently used half
/// is dropped.
const CAPACITY: usize = 5_000;

struct Entry<T> {
    firm_id: String,
    rev: i64,
    value: Arc<T>,
    used: u64,
}

struct Inner<T> {
    entries: HashMap<String, Entry<T>>,
    clock: u64,
}

pub struct RevisionCache<T> {
    inner: Arc<Mutex<Inner<T>>>,
    capacity: usize,
}

impl<T> Clone for RevisionCache<T> {
    fn clone(&self) -> Self {
        RevisionCache {
            inner: Arc::clone(&self.inner),
            capacity: self.capacity,
        }
    }
}

impl<T> Default for RevisionCache<T> {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl<T> std::fmt::Debug for RevisionCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevisionCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> RevisionCache<T> {
    pub fn with_capacity(capacity: usize) -> Self {
        RevisionCache {
            inner: Arc::new(Mutex::new(Inner {
                entries: HashMap::new(),
                clock: 0,
            })),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // A panic while holding the lock leaves only a cache behind: its
        // entries are still each a whole value.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The client's value at exactly this revision, if kept. The firm is
    /// part of the key: a value is never handed to another firm.
    pub fn get(&self, firm_id: &str, client_id: &str, rev: i64) -> Option<Arc<T>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let e = inner.entries.get_mut(client_id)?;
        if e.firm_id != firm_id || e.rev != rev {
            return None;
        }
        e.used = now;
        Some(Arc::clone(&e.value))
    }

    /// Keep the client's value, built after reading revision `rev`.
    pub fn put(&self, firm_id: &str, client_id: &str, rev: i64, value: Arc<T>) {
        let mut inner = self.lock();
        inner.clock += 1;
        let used = inner.clock;
        inner.entries.insert(
            client_id.to_owned(),
            Entry {
                firm_id: firm_id.to_owned(),
                rev,
                value,
                used,
            },
        );
        if inner.entries.len() > self.capacity {
            let mut ages: Vec<u64> = inner.entries.values().map(|e| e.used).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            inner.entries.retain(|_, e| e.used > cut);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_given_back_only_at_its_revision_and_only_to_its_firm() {
        let c = RevisionCache::<u32>::default();
        c.put("firm_a", "client_1", 3, Arc::new(7));
        assert_eq!(c.get("firm_a", "client_1", 3).as_deref(), Some(&7));
        assert!(c.get("firm_a", "client_1", 4).is_none());
        assert!(c.get("firm_b", "client_1", 3).is_none());
        assert!(c.get("firm_a", "client_2", 3).is_none());
        c.put("firm_a", "client_1", 4, Arc::new(8));
        assert!(c.get("firm_a", "client_1", 3).is_none());
        assert_eq!(c.get("firm_a", "client_1", 4).as_deref(), Some(&8));
    }

    #[test]
    fn past_its_capacity_the_least_recently_used_are_dropped() {
        let c = RevisionCache::<u32>::with_capacity(4);
        for i in 0..4 {
            c.put("f", &format!("c{i}"), 1, Arc::new(i));
        }
        // c0 read last: the most recently used of the four.
        assert!(c.get("f", "c0", 1).is_some());
        c.put("f", "c4", 1, Arc::new(4));
        assert!(c.len() <= 4);
        assert!(c.get("f", "c0", 1).is_some());
        assert!(c.get("f", "c4", 1).is_some());
        assert!(c.get("f", "c1", 1).is_none());
    }
}
