//! How the world is saved: a small document plus parts, and after a change
//! only the parts that changed.
//!
//! The world used to be saved whole (a ~350 KB document, serialized through
//! a `Value` tree, sealed and written) after every change: a quarter of an
//! integration test's CPU and the simulation's largest cost (issue #17 §5).
//! Now each client's data (its QBO realm, Ramp business and Plaid item) is a
//! part of its own (`client.{index}`) and Stripe's data another
//! ([`STRIPE_PART`]); the document keeps the rest (clock, faults, webhook
//! queue, OAuth grants) and says how many client parts there are. A save
//! writes the document and the parts whose JSON differs from what the store
//! last took, all in one [`SimStore::save`]: a crash never leaves a part a
//! step ahead of, or behind, the rest.
//!
//! A document saved before parts existed (clients inline) still loads; the
//! first save after it writes every part.

use crate::sim_state::{SimClient, SimState};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// The name of the saved part holding every account's Stripe data.
pub const STRIPE_PART: &str = "stripe";

/// The document field that says how many client parts it has (absent in a
/// document that holds its clients inline).
const CLIENT_PARTS: &str = "client_parts";

/// The part holding the client at `index` of [`SimState::clients`].
pub fn client_part(index: usize) -> String {
    format!("client.{index}")
}

/// One save, all or nothing.
pub struct Snapshot<'a> {
    /// The world's document (JSON text), without what is kept in parts.
    pub doc: &'a str,
    /// The parts that changed since the last save: (name, JSON text).
    pub parts: &'a [(String, String)],
    /// The clock offset the document holds (RowCol also keeps it in a row
    /// of its own, for instances that follow this clock).
    pub clock_offset_secs: i64,
}

/// Where the simulator state is persisted (RowCol stores it in its database).
#[async_trait::async_trait]
pub trait SimStore: Send + Sync {
    /// The document last saved, if any.
    async fn load(&self) -> anyhow::Result<Option<Value>>;
    /// Save the document and, with it, the parts that changed, all or
    /// nothing.
    async fn save(&self, snapshot: &Snapshot<'_>) -> anyhow::Result<()>;
    /// A part of the world saved apart, if it was saved.
    async fn load_part(&self, part: &str) -> anyhow::Result<Option<Value>>;
}

/// The document as saved: the state without its clients (they are parts),
/// and how many client parts hold them.
#[derive(Serialize)]
struct Doc<'a> {
    #[serde(flatten)]
    state: &'a SimState,
    client_parts: usize,
}

/// The JSON of each client part as the store last took it: a part whose
/// JSON is unchanged is not written again.
#[derive(Default)]
pub(crate) struct SavedParts {
    clients: Vec<String>,
}

impl SavedParts {
    /// What the store holds after loading `clients` from their parts.
    pub(crate) fn loaded(clients: &[SimClient]) -> serde_json::Result<SavedParts> {
        Ok(SavedParts {
            clients: clients
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// What one save writes, prepared before it is handed to the store.
pub(crate) struct Batch {
    doc: String,
    /// The changed client parts first, then Stripe's if it is saved.
    parts: Vec<(String, String)>,
    /// The world index of each client part, in `parts`' order.
    clients: Vec<usize>,
    clock_offset_secs: i64,
}

impl Batch {
    /// The document, every client part whose JSON differs from `saved`, and
    /// Stripe's part if `with_stripe`.
    pub(crate) fn of(
        st: &SimState,
        saved: &SavedParts,
        with_stripe: bool,
    ) -> serde_json::Result<Batch> {
        let doc = serde_json::to_string(&Doc {
            state: st,
            client_parts: st.clients.len(),
        })?;
        let mut parts = Vec::new();
        let mut clients = Vec::new();
        for (i, c) in st.clients.iter().enumerate() {
            let json = serde_json::to_string(c)?;
            if saved.clients.get(i) != Some(&json) {
                clients.push(i);
                parts.push((client_part(i), json));
            }
        }
        if with_stripe {
            parts.push((STRIPE_PART.to_owned(), serde_json::to_string(&st.stripe)?));
        }
        Ok(Batch {
            doc,
            parts,
            clients,
            clock_offset_secs: st.clock_offset_secs,
        })
    }

    pub(crate) fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            doc: &self.doc,
            parts: &self.parts,
            clock_offset_secs: self.clock_offset_secs,
        }
    }

    /// Once the store has taken the batch: remember what it now holds.
    pub(crate) fn landed(self, saved: &mut SavedParts) {
        for (index, (_, json)) in self.clients.into_iter().zip(self.parts) {
            if saved.clients.len() <= index {
                saved.clients.resize(index + 1, String::new());
            }
            saved.clients[index] = json;
        }
    }
}

/// How many client parts a loaded document has: `None` for a document that
/// holds its clients inline (saved before parts existed).
pub(crate) fn client_parts_of(doc: &Value) -> Option<usize> {
    doc.get(CLIENT_PARTS)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
}

/// The clients of a document saved with `n` client parts.
pub(crate) async fn load_clients(store: &dyn SimStore, n: usize) -> anyhow::Result<Vec<SimClient>> {
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let part = client_part(i);
        let value = store
            .load_part(&part)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the sandbox's {part} is missing"))?;
        clients.push(
            serde_json::from_value(value)
                .map_err(|e| anyhow::anyhow!("the sandbox's {part} does not parse: {e}"))?,
        );
    }
    Ok(clients)
}

/// An in-memory [`SimStore`], for tests.
#[derive(Default)]
pub struct MemoryStore {
    inner: std::sync::Mutex<Saved>,
}

#[derive(Default)]
struct Saved {
    doc: Option<String>,
    parts: HashMap<String, String>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `doc` as a whole world, clients inline: the form a
    /// world was saved in before parts existed (and the one
    /// [`MemoryStore::snapshot`] gives).
    pub fn holding(doc: &Value) -> Self {
        MemoryStore {
            inner: std::sync::Mutex::new(Saved {
                doc: Some(doc.to_string()),
                parts: HashMap::new(),
            }),
        }
    }

    /// What was saved, even if a panicking holder poisoned the lock (a save
    /// replaces the document whole, so it is never half-written).
    fn lock(&self) -> std::sync::MutexGuard<'_, Saved> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The last saved world as one document, its clients inline (Stripe's
    /// part stays apart: [`SimStore::load_part`]).
    pub fn snapshot(&self) -> Option<Value> {
        let saved = self.lock();
        let mut doc: Value = serde_json::from_str(saved.doc.as_ref()?).ok()?;
        if let Some(n) = client_parts_of(&doc) {
            let clients: Vec<Value> = (0..n)
                .map(|i| {
                    saved
                        .parts
                        .get(&client_part(i))
                        .and_then(|p| serde_json::from_str(p).ok())
                        .unwrap_or(Value::Null)
                })
                .collect();
            let obj = doc.as_object_mut()?;
            obj.remove(CLIENT_PARTS);
            obj.insert("clients".into(), Value::Array(clients));
        }
        Some(doc)
    }
}

#[async_trait::async_trait]
impl SimStore for MemoryStore {
    async fn load(&self) -> anyhow::Result<Option<Value>> {
        let saved = self.lock();
        Ok(match &saved.doc {
            Some(doc) => Some(serde_json::from_str(doc)?),
            None => None,
        })
    }

    async fn save(&self, snapshot: &Snapshot<'_>) -> anyhow::Result<()> {
        // One lock for the document and the parts: a reader never sees half.
        let mut saved = self.lock();
        for (part, json) in snapshot.parts {
            saved.parts.insert(part.clone(), json.clone());
        }
        saved.doc = Some(snapshot.doc.to_owned());
        Ok(())
    }

    async fn load_part(&self, part: &str) -> anyhow::Result<Option<Value>> {
        let saved = self.lock();
        Ok(match saved.parts.get(part) {
            Some(json) => Some(serde_json::from_str(json)?),
            None => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A part is written when its JSON differs from what the store last
    /// took, and only then.
    #[test]
    fn only_changed_clients_are_in_a_batch() {
        let mut st = crate::world::generate_sized(
            chrono::DateTime::from_timestamp(1_764_331_200, 0).expect("instant"),
            7,
            3,
        );
        let mut saved = SavedParts::default();
        let first = Batch::of(&st, &saved, false).expect("batch");
        let names: Vec<&str> = first.parts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["client.0", "client.1", "client.2"]);
        first.landed(&mut saved);
        assert!(Batch::of(&st, &saved, false)
            .expect("batch")
            .parts
            .is_empty());
        st.clients[1].name.push_str(" Renamed");
        let second = Batch::of(&st, &saved, true).expect("batch");
        let names: Vec<&str> = second.parts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["client.1", STRIPE_PART]);
        let doc: Value = serde_json::from_str(&second.doc).expect("doc");
        assert_eq!(client_parts_of(&doc), Some(3));
        assert!(
            doc.get("clients").is_none(),
            "clients are parts, not in the document"
        );
    }
}
