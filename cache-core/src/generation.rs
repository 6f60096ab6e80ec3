//! Relation generations: invalidation as a counter bump.
//!
//! Every relation has a counter, and there is one global counter for
//! "invalidate everything". A [`GenerationSnapshot`] records the counters of
//! the relations a query reads, taken *before* the query goes upstream. An
//! entry is servable only while every counter it recorded is unchanged.
//!
//! Why this is enough: a write is bumped after the server has committed it
//! and before the proxy relays its acknowledgement. A reader's snapshot is
//! taken before its query is sent. So if the reader's query could have run
//! before the write committed, its snapshot was taken before the bump, and
//! the bump moves a counter the snapshot recorded: the insert is refused, or
//! the entry is dead at its next lookup. If the snapshot already saw the
//! bump, the query was sent after the commit and its result includes the
//! write.
//!
//! # Memory ordering
//!
//! Every counter operation is `SeqCst`. The per-counter argument above needs
//! only coherence plus happens-before (a bump's `fetch_add` that
//! happens-before a later load is seen by it), which Release/Acquire would
//! give. `SeqCst` additionally puts bumps and snapshot loads of *different*
//! counters (the global one and each relation's) into one total order, so
//! "the snapshot was taken after the bump completed" means the same thing
//! for every counter the snapshot reads, and nobody has to re-derive the
//! argument when the code changes. The cost is nil where it matters: on
//! x86-64 and AArch64 a `SeqCst` load compiles to the same instruction as an
//! `Acquire` load, and a `fetch_add` is a locked RMW either way.
//!
//! The proxy must supply the happens-before edge itself: finish `bump`
//! before writing the write's CommandComplete (or the COMMIT's) to the
//! client. The client's next request then causally follows the bump.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::stats::Stats;

/// Identifies a relation. Opaque here: the proxy packs the database and the
/// relation's OID into it (e.g. `(db_index << 32) | oid`). Two relations in
/// different databases must get different ids.
pub type RelationId = u64;

const SHARDS: usize = 16;

/// Hands each [`Generations`] a distinct id, so a snapshot taken from one
/// instance is never judged current by another.
static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

type Counter = Arc<AtomicU64>;

/// The generation counters of every relation seen so far, plus the global
/// counter. Thread-safe; share it behind an `Arc`.
///
/// Counters are created on first use (snapshot or bump) and kept for the
/// life of this value: one small allocation per distinct relation, bounded by
/// the size of the catalogs being proxied. Snapshots hold the counters
/// themselves (`Arc<AtomicU64>`), so checking a snapshot on every cache hit
/// is a few atomic loads with no map lookup and no lock.
pub struct Generations {
    instance: u64,
    global: AtomicU64,
    shards: Box<[RwLock<HashMap<RelationId, Counter>>]>,
    stats: Arc<Stats>,
}

/// The generations a query saw, recorded before it went upstream.
#[derive(Clone)]
pub struct GenerationSnapshot {
    instance: u64,
    global: u64,
    /// Sorted by relation id, no duplicates.
    rels: Box<[SnapshotRel]>,
}

#[derive(Clone)]
struct SnapshotRel {
    id: RelationId,
    generation: u64,
    counter: Counter,
}

impl Generations {
    /// A fresh set of counters with its own [`Stats`].
    pub fn new() -> Generations {
        Generations::with_stats(Arc::new(Stats::new()))
    }

    /// A fresh set of counters reporting invalidations to `stats`.
    pub fn with_stats(stats: Arc<Stats>) -> Generations {
        Generations {
            instance: NEXT_INSTANCE.fetch_add(1, SeqCst),
            global: AtomicU64::new(0),
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            stats,
        }
    }

    /// The stats this instance reports to.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    fn shard(&self, rel: RelationId) -> &RwLock<HashMap<RelationId, Counter>> {
        // Relation ids are structured (database in the high bits, OIDs
        // dense in the low ones), so mix before picking a shard.
        let mixed = rel.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        &self.shards[(mixed >> 60) as usize % SHARDS]
    }

    /// The counter for `rel`, created at 0 if it was never seen. Creation
    /// happens under the shard's write lock, so a concurrent snapshot and
    /// bump of a new relation always agree on one counter.
    fn counter(&self, rel: RelationId) -> Counter {
        let shard = self.shard(rel);
        if let Some(c) = shard.read().get(&rel) {
            return Arc::clone(c);
        }
        Arc::clone(shard.write().entry(rel).or_default())
    }

    /// Records the current generations of `rels` and the global generation.
    ///
    /// Take it before the query is sent upstream (not when the response
    /// arrives): only then does a write that the response may not include
    /// leave a trace the snapshot can be checked against.
    pub fn snapshot(&self, rels: &[RelationId]) -> GenerationSnapshot {
        let mut ids: Vec<RelationId> = rels.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let global = self.global.load(SeqCst);
        let rels = ids
            .into_iter()
            .map(|id| {
                let counter = self.counter(id);
                let generation = counter.load(SeqCst);
                SnapshotRel {
                    id,
                    generation,
                    counter,
                }
            })
            .collect();
        GenerationSnapshot {
            instance: self.instance,
            global,
            rels,
        }
    }

    /// True if no relation in `snap` (and not the global generation) has
    /// been bumped since `snap` was taken. A snapshot from another
    /// `Generations` is never current.
    ///
    /// No lock, no allocation: one load per relation plus one.
    pub fn is_current(&self, snap: &GenerationSnapshot) -> bool {
        snap.instance == self.instance
            && self.global.load(SeqCst) == snap.global
            && snap
                .rels
                .iter()
                .all(|r| r.counter.load(SeqCst) == r.generation)
    }

    /// Invalidates every entry that read any of `rels`. Call it after the
    /// server acknowledged the write and before the acknowledgement is
    /// relayed to the client.
    pub fn bump(&self, rels: &[RelationId]) {
        if rels.is_empty() {
            return;
        }
        for &rel in rels {
            // Wrapping after 2^64 bumps of one relation is not a concern.
            self.counter(rel).fetch_add(1, SeqCst);
        }
        self.stats.invalidated();
    }

    /// Invalidates every entry, whatever it read.
    pub fn bump_all(&self) {
        self.global.fetch_add(1, SeqCst);
        self.stats.invalidated_all();
    }

    /// The current generation of `rel` (0 if never bumped).
    pub fn generation(&self, rel: RelationId) -> u64 {
        self.shard(rel)
            .read()
            .get(&rel)
            .map_or(0, |c| c.load(SeqCst))
    }

    /// The current global generation.
    pub fn global(&self) -> u64 {
        self.global.load(SeqCst)
    }

    /// How many relations have a counter.
    pub fn relations(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }
}

impl Default for Generations {
    fn default() -> Self {
        Generations::new()
    }
}

impl fmt::Debug for Generations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generations")
            .field("global", &self.global())
            .field("relations", &self.relations())
            .finish()
    }
}

impl GenerationSnapshot {
    /// The global generation recorded.
    pub fn global(&self) -> u64 {
        self.global
    }

    /// The relations recorded with their generations, sorted by id and
    /// without duplicates.
    pub fn relations(&self) -> impl ExactSizeIterator<Item = (RelationId, u64)> + '_ {
        self.rels.iter().map(|r| (r.id, r.generation))
    }

    /// True if the snapshot recorded `rel`.
    pub fn reads(&self, rel: RelationId) -> bool {
        self.rels.binary_search_by_key(&rel, |r| r.id).is_ok()
    }

    /// Heap bytes held by the snapshot, for the store's byte accounting.
    /// The counters themselves are shared with [`Generations`] and not
    /// counted here.
    pub(crate) fn heap_size(&self) -> usize {
        self.rels.len() * std::mem::size_of::<SnapshotRel>()
    }
}

impl fmt::Debug for GenerationSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerationSnapshot")
            .field("global", &self.global)
            .field("relations", &self.relations().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unseen_relation_is_zero_and_bump_creates_it() {
        let g = Generations::new();
        assert_eq!(g.generation(7), 0);
        assert_eq!(g.relations(), 0);
        g.bump(&[7]);
        assert_eq!(g.generation(7), 1);
        assert_eq!(g.relations(), 1);
    }

    #[test]
    fn bump_invalidates_only_readers() {
        let g = Generations::new();
        let a = g.snapshot(&[1, 2]);
        let b = g.snapshot(&[3]);
        assert!(g.is_current(&a) && g.is_current(&b));
        g.bump(&[2]);
        assert!(!g.is_current(&a));
        assert!(g.is_current(&b));
        // A snapshot taken after the bump sees it.
        let c = g.snapshot(&[1, 2]);
        assert!(g.is_current(&c));
        assert_eq!(c.relations().collect::<Vec<_>>(), vec![(1, 0), (2, 1)]);
    }

    #[test]
    fn bump_all_invalidates_everything() {
        let g = Generations::new();
        let a = g.snapshot(&[1]);
        let none = g.snapshot(&[]);
        g.bump_all();
        assert!(!g.is_current(&a));
        assert!(!g.is_current(&none));
        assert!(g.is_current(&g.snapshot(&[1])));
        assert_eq!(g.global(), 1);
    }

    #[test]
    fn duplicates_are_folded() {
        let g = Generations::new();
        let s = g.snapshot(&[5, 1, 5, 1]);
        assert_eq!(s.relations().len(), 2);
        assert!(s.reads(5) && s.reads(1) && !s.reads(2));
    }

    #[test]
    fn empty_bump_is_a_no_op() {
        let g = Generations::new();
        let s = g.snapshot(&[1]);
        g.bump(&[]);
        assert!(g.is_current(&s));
        assert_eq!(g.stats().snapshot().invalidations, 0);
    }

    #[test]
    fn foreign_snapshot_is_never_current() {
        let g1 = Generations::new();
        let g2 = Generations::new();
        assert!(!g2.is_current(&g1.snapshot(&[1])));
    }

    #[test]
    fn stats_count_bumps() {
        let g = Generations::new();
        g.bump(&[1, 2]);
        g.bump_all();
        let s = g.stats().snapshot();
        assert_eq!((s.invalidations, s.invalidations_all), (1, 1));
    }

    #[test]
    fn concurrent_bumps_are_seen_by_later_snapshots() {
        let g = Arc::new(Generations::new());
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let g = Arc::clone(&g);
                std::thread::spawn(move || {
                    for i in 0..1000u64 {
                        let snap = g.snapshot(&[i % 7]);
                        g.bump(&[i % 7]);
                        // The bump finished after the snapshot: it must show.
                        assert!(!g.is_current(&snap));
                        assert!(g.generation(i % 7) > 0);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let total: u64 = (0..7).map(|r| g.generation(r)).sum();
        assert_eq!(total, 2000);
    }
}
