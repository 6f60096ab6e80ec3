//! Counters and gauges.
//!
//! One [`Stats`] is shared (behind an `Arc`) by the store, the generations
//! and the coalescer that make up a cache, so the proxy reads everything with
//! one [`Stats::snapshot`]. Counters only ever grow (Prometheus counters);
//! `bytes` and `entries` are gauges.
//!
//! Every counter uses `Relaxed`: they are statistics, not synchronization.
//! Nothing reads a counter to decide what to serve.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Number of cells a hot counter is spread over.
const STRIPES: usize = 16;

/// One cell per cache line (128 bytes covers adjacent-line prefetching), so
/// two cores bumping different cells do not fight over one line.
#[derive(Default)]
#[repr(align(128))]
struct Cell(AtomicU64);

/// A counter bumped on every lookup. A single `AtomicU64` would be one cache
/// line written by every core on every hit; striping it by shard keeps hits
/// on different shards from contending. Reads sum the cells.
struct Striped {
    cells: [Cell; STRIPES],
}

impl Striped {
    fn new() -> Striped {
        Striped {
            cells: std::array::from_fn(|_| Cell::default()),
        }
    }

    fn add(&self, stripe: usize, n: u64) {
        self.cells[stripe % STRIPES].0.fetch_add(n, Relaxed);
    }

    fn get(&self) -> u64 {
        self.cells
            .iter()
            .fold(0u64, |acc, c| acc.wrapping_add(c.0.load(Relaxed)))
    }
}

/// Live counters. Cheap to update from any thread.
pub struct Stats {
    hits: Striped,
    misses: Striped,
    inserts: AtomicU64,
    rejected_raced: AtomicU64,
    rejected_too_large: AtomicU64,
    rejected_expired: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
    stale_drops: AtomicU64,
    removals: AtomicU64,
    invalidations: AtomicU64,
    invalidations_all: AtomicU64,
    coalesced: AtomicU64,
    coalesce_fallbacks: AtomicU64,
    bytes: AtomicU64,
    entries: AtomicU64,
}

/// A point-in-time copy of [`Stats`]. Counters are read one by one, so under
/// concurrent traffic two fields may be a few operations apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Lookups that returned an entry.
    pub hits: u64,
    /// Lookups that returned nothing, for any reason (absent, expired or
    /// stale). `expirations` and `stale_drops` say why some of them missed.
    pub misses: u64,
    /// Entries stored (including replacements of an existing key).
    pub inserts: u64,
    /// Inserts refused because a relation's generation moved after the
    /// snapshot: the result may predate a write.
    pub rejected_raced: u64,
    /// Inserts refused for exceeding the per-entry cap or a shard's budget.
    pub rejected_too_large: u64,
    /// Inserts refused because the entry was dead on arrival (zero TTL).
    pub rejected_expired: u64,
    /// Live entries pushed out to make room (byte budget).
    pub evictions: u64,
    /// Entries dropped because their TTL ran out (on lookup or sweep).
    pub expirations: u64,
    /// Entries dropped because a relation they read was invalidated.
    pub stale_drops: u64,
    /// Entries removed by `remove`, `remove_where` or `clear`.
    pub removals: u64,
    /// Calls to `Generations::bump` with at least one relation.
    pub invalidations: u64,
    /// Calls to `Generations::bump_all`.
    pub invalidations_all: u64,
    /// Requests that waited on another request's upstream query.
    pub coalesced: u64,
    /// Coalesced waits that got nothing usable (timeout, leader failure, or
    /// a result invalidated meanwhile) and had to go upstream themselves.
    pub coalesce_fallbacks: u64,
    /// Bytes accounted to stored entries (gauge).
    pub bytes: u64,
    /// Stored entries (gauge).
    pub entries: u64,
}

impl Stats {
    /// All zeros.
    pub fn new() -> Stats {
        Stats {
            hits: Striped::new(),
            misses: Striped::new(),
            inserts: AtomicU64::new(0),
            rejected_raced: AtomicU64::new(0),
            rejected_too_large: AtomicU64::new(0),
            rejected_expired: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            expirations: AtomicU64::new(0),
            stale_drops: AtomicU64::new(0),
            removals: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            invalidations_all: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            coalesce_fallbacks: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
        }
    }

    /// Copies every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            hits: self.hits.get(),
            misses: self.misses.get(),
            inserts: self.inserts.load(Relaxed),
            rejected_raced: self.rejected_raced.load(Relaxed),
            rejected_too_large: self.rejected_too_large.load(Relaxed),
            rejected_expired: self.rejected_expired.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            expirations: self.expirations.load(Relaxed),
            stale_drops: self.stale_drops.load(Relaxed),
            removals: self.removals.load(Relaxed),
            invalidations: self.invalidations.load(Relaxed),
            invalidations_all: self.invalidations_all.load(Relaxed),
            coalesced: self.coalesced.load(Relaxed),
            coalesce_fallbacks: self.coalesce_fallbacks.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            entries: self.entries.load(Relaxed),
        }
    }

    pub(crate) fn hit(&self, stripe: usize) {
        self.hits.add(stripe, 1);
    }

    pub(crate) fn miss(&self, stripe: usize) {
        self.misses.add(stripe, 1);
    }

    pub(crate) fn inserted(&self) {
        self.inserts.fetch_add(1, Relaxed);
    }

    pub(crate) fn rejected_raced(&self) {
        self.rejected_raced.fetch_add(1, Relaxed);
    }

    pub(crate) fn rejected_too_large(&self) {
        self.rejected_too_large.fetch_add(1, Relaxed);
    }

    pub(crate) fn rejected_expired(&self) {
        self.rejected_expired.fetch_add(1, Relaxed);
    }

    pub(crate) fn evicted(&self, n: u64) {
        self.evictions.fetch_add(n, Relaxed);
    }

    pub(crate) fn expired(&self, n: u64) {
        self.expirations.fetch_add(n, Relaxed);
    }

    pub(crate) fn stale(&self, n: u64) {
        self.stale_drops.fetch_add(n, Relaxed);
    }

    pub(crate) fn removed(&self, n: u64) {
        self.removals.fetch_add(n, Relaxed);
    }

    pub(crate) fn invalidated(&self) {
        self.invalidations.fetch_add(1, Relaxed);
    }

    pub(crate) fn invalidated_all(&self) {
        self.invalidations_all.fetch_add(1, Relaxed);
    }

    pub(crate) fn coalesced(&self) {
        self.coalesced.fetch_add(1, Relaxed);
    }

    pub(crate) fn coalesce_fallback(&self) {
        self.coalesce_fallbacks.fetch_add(1, Relaxed);
    }

    /// Gauge update: entries and bytes added to a store.
    pub(crate) fn add_entries(&self, entries: u64, bytes: u64) {
        self.entries.fetch_add(entries, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }

    /// Gauge update: entries and bytes taken out of a store. The store only
    /// subtracts what it added before, so these never wrap.
    pub(crate) fn sub_entries(&self, entries: u64, bytes: u64) {
        self.entries.fetch_sub(entries, Relaxed);
        self.bytes.fetch_sub(bytes, Relaxed);
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.snapshot().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn striped_counters_sum() {
        let s = Stats::new();
        for i in 0..100 {
            s.hit(i);
        }
        s.miss(usize::MAX);
        let snap = s.snapshot();
        assert_eq!(snap.hits, 100);
        assert_eq!(snap.misses, 1);
    }

    #[test]
    fn gauges_go_both_ways() {
        let s = Stats::new();
        s.add_entries(3, 300);
        s.sub_entries(1, 100);
        let snap = s.snapshot();
        assert_eq!((snap.entries, snap.bytes), (2, 200));
    }

    #[test]
    fn counters_start_at_zero() {
        assert_eq!(Stats::default().snapshot(), StatsSnapshot::default());
    }
}
