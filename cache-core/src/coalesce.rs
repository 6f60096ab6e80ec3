//! Request coalescing: one upstream query for many identical misses.
//!
//! When a popular entry is invalidated, every client asking for it misses
//! at once. Without coalescing they would all run the same query upstream
//! (a thundering herd). With it, the first to [`Coalescer::join`] a key
//! becomes the leader and queries upstream; the others become followers and
//! wait for the leader's entry.
//!
//! A follower never trusts the leader blindly. The leader's snapshot was
//! taken before the leader's query went upstream, which may be before a
//! write that the follower's client has already seen acknowledged. So
//! [`Follower::wait`] checks the entry against the generations (and its
//! TTL) when it arrives, exactly as a cache lookup would, and returns
//! `None` if it is no longer servable. `None` always means "go upstream
//! yourself", so a failed, slow or vanished leader costs followers latency,
//! never correctness.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::entry::Entry;
use crate::generation::Generations;
use crate::key::Key;
use crate::stats::Stats;

const SHARDS: usize = 16;

/// `None` while the leader is working; `Some(result)` once it is done.
type Outcome = Option<Option<Arc<Entry>>>;

struct Flight {
    /// Tells this flight apart from a later one for the same key, so a
    /// leader only ever removes its own map entry.
    id: u64,
    /// Cloned by each follower. The leader holds the sender.
    rx: watch::Receiver<Outcome>,
}

struct Inner {
    shards: Box<[Mutex<HashMap<Key, Flight>>]>,
    next_id: AtomicU64,
    stats: Arc<Stats>,
}

impl Inner {
    fn shard(&self, key: &Key) -> &Mutex<HashMap<Key, Flight>> {
        &self.shards[key.shard_index(self.shards.len())]
    }
}

/// Tracks the upstream queries in flight, by key. Cheap to clone (an `Arc`
/// inside); clones share the same flights.
#[derive(Clone)]
pub struct Coalescer {
    inner: Arc<Inner>,
}

/// The result of [`Coalescer::join`].
#[derive(Debug)]
pub enum Join {
    /// Nobody is fetching this key: go upstream, then complete the guard.
    Leader(LeaderGuard),
    /// Someone is: wait for their result.
    Follower(Follower),
}

/// Held by the one request fetching a key. Complete it with the result;
/// dropping it (the leader's connection died, the task was cancelled)
/// releases the followers with `None`.
pub struct LeaderGuard {
    inner: Arc<Inner>,
    key: Key,
    id: u64,
    /// `None` once completed.
    tx: Option<watch::Sender<Outcome>>,
}

/// A request waiting for a leader's result.
pub struct Follower {
    rx: watch::Receiver<Outcome>,
    stats: Arc<Stats>,
}

impl Coalescer {
    /// A coalescer with its own [`Stats`].
    pub fn new() -> Coalescer {
        Coalescer::with_stats(Arc::new(Stats::new()))
    }

    /// A coalescer counting waits in `stats`.
    pub fn with_stats(stats: Arc<Stats>) -> Coalescer {
        Coalescer {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                next_id: AtomicU64::new(0),
                stats,
            }),
        }
    }

    /// Becomes the leader for `key` if no query for it is in flight,
    /// otherwise a follower of the one that is.
    ///
    /// Call it after a cache miss, and before taking the generation
    /// snapshot (the leader takes it; followers rely on the leader's).
    pub fn join(&self, key: Key) -> Join {
        let mut flights = self.inner.shard(&key).lock();
        if let Some(flight) = flights.get(&key) {
            let rx = flight.rx.clone();
            drop(flights);
            self.inner.stats.coalesced();
            return Join::Follower(Follower {
                rx,
                stats: Arc::clone(&self.inner.stats),
            });
        }
        let id = self.inner.next_id.fetch_add(1, Relaxed);
        let (tx, rx) = watch::channel(None);
        flights.insert(key, Flight { id, rx });
        drop(flights);
        Join::Leader(LeaderGuard {
            inner: Arc::clone(&self.inner),
            key,
            id,
            tx: Some(tx),
        })
    }

    /// Number of keys with a leader at work.
    pub fn in_flight(&self) -> usize {
        self.inner.shards.iter().map(|s| s.lock().len()).sum()
    }
}

impl Default for Coalescer {
    fn default() -> Self {
        Coalescer::new()
    }
}

impl fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coalescer")
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl LeaderGuard {
    /// The key being fetched.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Hands the result to the followers and ends the flight. Pass the
    /// entry the leader built (also the one given to
    /// [`crate::Store::insert_arc`], whatever that returned): followers
    /// re-check it themselves. Pass `None` if the query failed or the
    /// response was not cacheable.
    pub fn complete(mut self, result: Option<Arc<Entry>>) {
        self.finish(result);
    }

    fn finish(&mut self, result: Option<Arc<Entry>>) {
        let Some(tx) = self.tx.take() else {
            return;
        };
        // Leave the map first: a request arriving from now on starts a new
        // flight instead of joining one that is over. Everyone who joined
        // before holds a receiver and gets the value sent below.
        {
            let mut flights = self.inner.shard(&self.key).lock();
            if flights.get(&self.key).is_some_and(|f| f.id == self.id) {
                flights.remove(&self.key);
            }
        }
        // `send_replace` stores the value even if every follower has gone.
        tx.send_replace(Some(result));
    }
}

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        self.finish(None);
    }
}

impl fmt::Debug for LeaderGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderGuard")
            .field("key", &self.key)
            .field("done", &self.tx.is_none())
            .finish()
    }
}

impl Follower {
    /// Waits up to `timeout` for the leader's result. Returns the entry only
    /// if it is still servable now: within its TTL and with every relation
    /// it read unchanged in `gens` since the leader's snapshot. `None` (the
    /// leader failed, vanished, was too slow, or its result is already
    /// stale) means: forward the query upstream yourself.
    ///
    /// Must run inside a Tokio runtime with the time driver enabled.
    /// Cancel-safe: dropping the future just stops waiting.
    pub async fn wait(mut self, gens: &Generations, timeout: Duration) -> Option<Arc<Entry>> {
        let result = match tokio::time::timeout(timeout, self.rx.wait_for(Option::is_some)).await {
            Ok(Ok(outcome)) => outcome.clone().flatten(),
            // Timed out, or the sender vanished without a value (cannot
            // happen through `LeaderGuard`, which always sends).
            _ => None,
        };
        let result = result.filter(|e| e.is_servable(gens, Instant::now()));
        if result.is_none() {
            self.stats.coalesce_fallback();
        }
        result
    }
}

impl fmt::Debug for Follower {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Follower").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyBuilder;
    use bytes::Bytes;

    fn key(n: u32) -> Key {
        KeyBuilder::new().u32_part(n).finish()
    }

    fn entry(gens: &Generations) -> Arc<Entry> {
        Arc::new(Entry::new(
            Bytes::from_static(b"rows"),
            gens.snapshot(&[1]),
            Instant::now(),
            Duration::from_secs(60),
            0,
        ))
    }

    #[test]
    fn first_leads_second_follows_then_a_new_flight() {
        let c = Coalescer::new();
        let Join::Leader(l) = c.join(key(1)) else {
            panic!("first join must lead")
        };
        assert!(matches!(c.join(key(1)), Join::Follower(_)));
        assert!(matches!(c.join(key(2)), Join::Leader(_)));
        // key(2)'s guard was dropped at once: only key(1) is in flight.
        assert_eq!(c.in_flight(), 1);
        l.complete(None);
        assert_eq!(c.in_flight(), 0);
        assert!(matches!(c.join(key(1)), Join::Leader(_)));
        assert_eq!(c.in_flight(), 0);
    }

    #[tokio::test]
    async fn follower_gets_the_entry() {
        let c = Coalescer::new();
        let g = Generations::new();
        let Join::Leader(l) = c.join(key(1)) else {
            panic!()
        };
        let Join::Follower(f) = c.join(key(1)) else {
            panic!()
        };
        let e = entry(&g);
        l.complete(Some(Arc::clone(&e)));
        let got = f.wait(&g, Duration::from_secs(1)).await.expect("entry");
        assert!(Arc::ptr_eq(&got, &e));
    }

    #[tokio::test]
    async fn follower_rejects_an_entry_invalidated_meanwhile() {
        let c = Coalescer::new();
        let g = Generations::new();
        let Join::Leader(l) = c.join(key(1)) else {
            panic!()
        };
        let e = entry(&g);
        // A write is acknowledged, then a client that saw it asks.
        g.bump(&[1]);
        let Join::Follower(f) = c.join(key(1)) else {
            panic!()
        };
        l.complete(Some(e));
        assert!(f.wait(&g, Duration::from_secs(1)).await.is_none());
        let st = c.inner.stats.snapshot();
        assert_eq!((st.coalesced, st.coalesce_fallbacks), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_returns_none() {
        let c = Coalescer::new();
        let g = Generations::new();
        let Join::Leader(_l) = c.join(key(1)) else {
            panic!()
        };
        let Join::Follower(f) = c.join(key(1)) else {
            panic!()
        };
        assert!(f.wait(&g, Duration::from_millis(50)).await.is_none());
    }
}
