//! The byte-budgeted, sharded LRU store.
//!
//! Keys are spread over shards so that lookups on different keys rarely
//! contend for a lock. Each shard is an unbounded [`lru::LruCache`] behind a
//! mutex with its own byte count, and gets an equal slice of the budget:
//! `max_bytes / shards`. The shard budgets add up to at most `max_bytes`, so
//! keeping every shard within its slice keeps the whole store within budget
//! without any global lock.
//!
//! A lookup never returns an entry past its TTL or one whose generation
//! snapshot is no longer current: such an entry is removed on the spot and
//! reported as [`Lookup::Expired`] or [`Lookup::Stale`]. That lookup-time
//! check is what makes invalidation correct; the check at insert time only
//! keeps entries that are already dead from pushing out live ones.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use lru::LruCache;
use parking_lot::Mutex;

use crate::entry::Entry;
use crate::generation::Generations;
use crate::key::Key;
use crate::stats::Stats;

/// Upper bound on the shard count, so a bad config cannot allocate without
/// limit. Far more than cores on any machine the proxy runs on.
pub const MAX_SHARDS: usize = 1024;

/// Sizing of a [`Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Total byte budget (payloads, keys and per-entry overhead; see
    /// [`Entry::size`]). Never exceeded.
    pub max_bytes: u64,
    /// Largest single entry accepted. The effective cap is the smaller of
    /// this and a shard's budget, `max_bytes / shards`.
    pub max_entry_bytes: u64,
    /// Number of shards, clamped to `1..=MAX_SHARDS`. More shards mean less
    /// lock contention but a smaller per-shard budget; a few per core is
    /// plenty.
    pub shards: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_bytes: 256 << 20,
            max_entry_bytes: 1 << 20,
            shards: 16,
        }
    }
}

/// What [`Store::get`] found.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// A servable entry.
    Hit(Arc<Entry>),
    /// Nothing stored under the key.
    Miss,
    /// The entry's TTL had run out; it was removed.
    Expired,
    /// A relation the entry read was invalidated after its snapshot; it was
    /// removed.
    Stale,
}

impl Lookup {
    /// The entry, if this is a hit.
    pub fn hit(self) -> Option<Arc<Entry>> {
        match self {
            Lookup::Hit(e) => Some(e),
            _ => None,
        }
    }

    /// True for [`Lookup::Hit`].
    pub fn is_hit(&self) -> bool {
        matches!(self, Lookup::Hit(_))
    }
}

/// What [`Store::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored (replacing any entry under the same key), after evicting as
    /// many least recently used entries as needed.
    Inserted,
    /// Refused: a relation the entry read (or the global generation) moved
    /// since its snapshot, so the result may predate a write.
    Raced,
    /// Refused: larger than `max_entry_bytes` or than a shard's budget.
    TooLarge,
    /// Refused: a zero TTL, so it could never be served.
    Expired,
}

/// Entries and bytes for one tag, for the admin listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagUsage {
    /// Entries carrying the tag.
    pub entries: u64,
    /// Bytes they are charged (see [`Entry::size`]).
    pub bytes: u64,
}

/// Keeps each shard's lock and counters on their own cache lines, so cores
/// working on neighbouring shards do not slow each other down.
#[repr(align(128))]
struct Padded<T>(T);

struct Shard {
    lru: LruCache<Key, Arc<Entry>>,
    /// Sum of `size()` over `lru`. Only changed together with `lru`.
    bytes: u64,
}

/// What an operation took out of a shard, applied to the gauges in one go.
#[derive(Default)]
struct Removed {
    entries: u64,
    bytes: u64,
}

impl Removed {
    fn add(&mut self, entry: &Entry) {
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(entry.size() as u64);
    }
}

impl Shard {
    fn take(&mut self, entry: &Entry, removed: &mut Removed) {
        self.bytes = self.bytes.saturating_sub(entry.size() as u64);
        removed.add(entry);
    }

    /// Evicts least recently used entries until `extra` more bytes fit in
    /// `budget`. Returns how many were evicted.
    fn make_room(&mut self, extra: u64, budget: u64, removed: &mut Removed) -> u64 {
        let mut evicted = 0;
        while self.bytes.saturating_add(extra) > budget {
            let Some((_, victim)) = self.lru.pop_lru() else {
                // Empty, so `bytes` is 0 and the caller checked that `extra`
                // fits: unreachable unless the accounting is broken, and
                // then stopping beats looping forever.
                break;
            };
            self.take(&victim, removed);
            evicted += 1;
        }
        evicted
    }
}

/// The cache's storage: a sharded, byte-budgeted LRU map from [`Key`] to
/// `Arc<Entry>`. Thread-safe; share it behind an `Arc`.
pub struct Store {
    shards: Box<[Padded<Mutex<Shard>>]>,
    max_bytes: AtomicU64,
    max_entry_bytes: AtomicU64,
    /// `max_bytes / shards`. Read under a shard lock; `set_max_bytes` writes
    /// it before taking each shard lock to trim, so every insert either sees
    /// the new budget or is trimmed after it (the mutex orders the two),
    /// which is why `Relaxed` is enough.
    shard_budget: AtomicU64,
    /// Sum of the shards' byte counts and lengths. Updated under the shard
    /// lock that changed, subtracting before adding, so they never run
    /// ahead of what the shards hold.
    bytes: AtomicU64,
    entries: AtomicU64,
    stats: Arc<Stats>,
}

impl Store {
    /// An empty store with its own [`Stats`].
    pub fn new(config: StoreConfig) -> Store {
        Store::with_stats(config, Arc::new(Stats::new()))
    }

    /// An empty store reporting to `stats` (shared with the
    /// [`Generations`] and coalescer of the same cache).
    pub fn with_stats(config: StoreConfig, stats: Arc<Stats>) -> Store {
        let shards = config.shards.clamp(1, MAX_SHARDS);
        Store {
            shards: (0..shards)
                .map(|_| {
                    Padded(Mutex::new(Shard {
                        lru: LruCache::unbounded(),
                        bytes: 0,
                    }))
                })
                .collect(),
            max_bytes: AtomicU64::new(config.max_bytes),
            max_entry_bytes: AtomicU64::new(config.max_entry_bytes),
            shard_budget: AtomicU64::new(config.max_bytes / shards as u64),
            bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            stats,
        }
    }

    /// The stats this store reports to.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    fn shard_of(&self, key: &Key) -> usize {
        key.shard_index(self.shards.len())
    }

    /// Applies a shard's change to the totals. Called with that shard's lock
    /// held, so a shard's changes reach the totals in order and a removal
    /// is never applied before the addition it undoes.
    fn account(&self, removed: &Removed, added: Option<u64>) {
        if removed.entries > 0 {
            self.bytes.fetch_sub(removed.bytes, Relaxed);
            self.entries.fetch_sub(removed.entries, Relaxed);
            self.stats.sub_entries(removed.entries, removed.bytes);
        }
        if let Some(size) = added {
            self.bytes.fetch_add(size, Relaxed);
            self.entries.fetch_add(1, Relaxed);
            self.stats.add_entries(1, size);
        }
    }

    /// Looks `key` up. Returns the entry only if it is within its TTL at
    /// `now` and its snapshot is still current in `gens`; a dead entry is
    /// removed and reported as `Expired` or `Stale`. A hit makes the entry
    /// the most recently used.
    ///
    /// Cost of a hit: one uncontended lock, one hash probe, a handful of
    /// atomic loads (one per relation the entry read) and an `Arc` clone.
    pub fn get(&self, key: &Key, gens: &Generations, now: Instant) -> Lookup {
        let idx = self.shard_of(key);
        let mut shard = self.shards[idx].0.lock();
        let verdict = match shard.lru.get(key) {
            None => Lookup::Miss,
            Some(e) if e.is_expired(now) => Lookup::Expired,
            Some(e) if !gens.is_current(&e.generations) => Lookup::Stale,
            Some(e) => Lookup::Hit(Arc::clone(e)),
        };
        match verdict {
            Lookup::Hit(_) => {
                drop(shard);
                self.stats.hit(idx);
            }
            Lookup::Miss => {
                drop(shard);
                self.stats.miss(idx);
            }
            Lookup::Expired | Lookup::Stale => {
                let mut removed = Removed::default();
                if let Some(dead) = shard.lru.pop(key) {
                    shard.take(&dead, &mut removed);
                }
                self.account(&removed, None);
                drop(shard);
                self.stats.miss(idx);
                if matches!(verdict, Lookup::Expired) {
                    self.stats.expired(removed.entries);
                } else {
                    self.stats.stale(removed.entries);
                }
            }
        }
        verdict
    }

    /// Stores `entry` under `key`. See [`Store::insert_arc`].
    pub fn insert(&self, key: Key, entry: Entry, gens: &Generations) -> InsertOutcome {
        self.insert_arc(key, Arc::new(entry), gens)
    }

    /// Stores `entry` under `key`, keeping a handle the caller can also give
    /// to coalesced followers ([`crate::LeaderGuard::complete`]).
    ///
    /// Refused if the TTL is zero, if the entry is larger than
    /// `max_entry_bytes` or a shard's budget, or if `gens` shows a
    /// generation moved since the entry's snapshot (checked under the shard
    /// lock). Otherwise it replaces any entry under `key` and evicts least
    /// recently used entries of the shard until it fits: the budget holds
    /// with the new entry counted.
    pub fn insert_arc(&self, key: Key, entry: Arc<Entry>, gens: &Generations) -> InsertOutcome {
        if entry.ttl.is_zero() {
            self.stats.rejected_expired();
            return InsertOutcome::Expired;
        }
        let size = entry.size() as u64;
        if size > self.max_entry_bytes.load(Relaxed) {
            self.stats.rejected_too_large();
            return InsertOutcome::TooLarge;
        }
        let mut shard = self.shards[self.shard_of(&key)].0.lock();
        let budget = self.shard_budget.load(Relaxed);
        if size > budget {
            drop(shard);
            self.stats.rejected_too_large();
            return InsertOutcome::TooLarge;
        }
        if !gens.is_current(&entry.generations) {
            drop(shard);
            self.stats.rejected_raced();
            return InsertOutcome::Raced;
        }
        let mut removed = Removed::default();
        if let Some(old) = shard.lru.pop(&key) {
            shard.take(&old, &mut removed);
        }
        let evicted = shard.make_room(size, budget, &mut removed);
        shard.lru.put(key, entry);
        shard.bytes = shard.bytes.saturating_add(size);
        self.account(&removed, Some(size));
        drop(shard);
        self.stats.inserted();
        // A replaced entry counts as neither evicted nor removed; it only
        // leaves the gauges, which `account` handled.
        self.stats.evicted(evicted);
        InsertOutcome::Inserted
    }

    /// Removes the entry under `key`. Returns whether there was one.
    pub fn remove(&self, key: &Key) -> bool {
        let mut shard = self.shards[self.shard_of(key)].0.lock();
        let mut removed = Removed::default();
        if let Some(e) = shard.lru.pop(key) {
            shard.take(&e, &mut removed);
        }
        self.account(&removed, None);
        drop(shard);
        self.stats.removed(removed.entries);
        removed.entries > 0
    }

    /// Removes every entry for which `pred` returns true (admin
    /// invalidation by tag, policy changes). Returns how many.
    ///
    /// `pred` runs with a shard lock held: it must not call back into this
    /// store.
    pub fn remove_where(&self, pred: impl Fn(&Key, &Entry) -> bool) -> usize {
        let mut total = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.0.lock();
            let mut removed = Removed::default();
            let Shard { lru, bytes } = &mut *shard;
            lru.retain(|k, e| {
                if pred(k, e) {
                    *bytes = bytes.saturating_sub(e.size() as u64);
                    removed.add(e);
                    false
                } else {
                    true
                }
            });
            self.account(&removed, None);
            drop(shard);
            self.stats.removed(removed.entries);
            total += removed.entries as usize;
        }
        total
    }

    /// Removes every entry.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.0.lock();
            let removed = Removed {
                entries: shard.lru.len() as u64,
                bytes: shard.bytes,
            };
            shard.lru.clear();
            shard.bytes = 0;
            self.account(&removed, None);
            drop(shard);
            self.stats.removed(removed.entries);
        }
    }

    /// Drops every entry that is expired at `now` or whose snapshot is no
    /// longer current. Returns how many. Lookups do this for the entries
    /// they touch; the proxy calls `sweep` periodically so that dead
    /// entries nobody asks for do not hold budget.
    ///
    /// Walks one shard at a time, holding only that shard's lock.
    pub fn sweep(&self, gens: &Generations, now: Instant) -> usize {
        let mut total = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.0.lock();
            let mut removed = Removed::default();
            let (mut expired, mut stale) = (0, 0);
            let Shard { lru, bytes } = &mut *shard;
            lru.retain(|_, e| {
                let dead = if e.is_expired(now) {
                    expired += 1;
                    true
                } else if !gens.is_current(&e.generations) {
                    stale += 1;
                    true
                } else {
                    false
                };
                if dead {
                    *bytes = bytes.saturating_sub(e.size() as u64);
                    removed.add(e);
                }
                !dead
            });
            self.account(&removed, None);
            drop(shard);
            self.stats.expired(expired);
            self.stats.stale(stale);
            total += removed.entries as usize;
        }
        total
    }

    /// Changes the byte budget (policy reload). Shrinking evicts least
    /// recently used entries; when this returns, every shard fits the new
    /// budget. While it runs, `bytes()` may still exceed the new value.
    pub fn set_max_bytes(&self, max_bytes: u64) {
        self.max_bytes.store(max_bytes, Relaxed);
        self.shard_budget
            .store(max_bytes / self.shards.len() as u64, Relaxed);
        for shard in self.shards.iter() {
            let mut shard = shard.0.lock();
            // Read the budget under the lock: with two reloads racing, each
            // shard ends up trimmed to whichever budget was stored last.
            let budget = self.shard_budget.load(Relaxed);
            let mut removed = Removed::default();
            let evicted = shard.make_room(0, budget, &mut removed);
            self.account(&removed, None);
            drop(shard);
            self.stats.evicted(evicted);
        }
    }

    /// Changes the largest entry accepted from now on. Entries already
    /// stored stay.
    pub fn set_max_entry_bytes(&self, max_entry_bytes: u64) {
        self.max_entry_bytes.store(max_entry_bytes, Relaxed);
    }

    /// The byte budget.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes.load(Relaxed)
    }

    /// The largest entry accepted (before the shard budget cap).
    pub fn max_entry_bytes(&self) -> u64 {
        self.max_entry_bytes.load(Relaxed)
    }

    /// The number of shards (after clamping).
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Bytes charged to stored entries, dead or alive.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    /// Stored entries, dead or alive (dead ones go on lookup or sweep).
    pub fn len(&self) -> usize {
        self.entries.load(Relaxed) as usize
    }

    /// True if nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` on every stored entry, dead or alive, one shard at a time,
    /// most recently used first within a shard. Each shard's entries are
    /// copied out (as `Arc`s) before `f` runs, so `f` holds no lock and may
    /// use the store. Meant for admin listings, not the hot path.
    pub fn for_each_entry(&self, mut f: impl FnMut(&Key, &Arc<Entry>)) {
        for shard in self.shards.iter() {
            let batch: Vec<(Key, Arc<Entry>)> = shard
                .0
                .lock()
                .lru
                .iter()
                .map(|(k, e)| (*k, Arc::clone(e)))
                .collect();
            for (k, e) in &batch {
                f(k, e);
            }
        }
    }

    /// Entry count and bytes per tag, for the admin listing.
    pub fn entries_by_tag(&self) -> HashMap<u64, TagUsage> {
        let mut by_tag: HashMap<u64, TagUsage> = HashMap::new();
        for shard in self.shards.iter() {
            let shard = shard.0.lock();
            for (_, e) in shard.lru.iter() {
                let usage = by_tag.entry(e.tag).or_default();
                usage.entries += 1;
                usage.bytes = usage.bytes.saturating_add(e.size() as u64);
            }
        }
        by_tag
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("shards", &self.shards.len())
            .field("max_bytes", &self.max_bytes())
            .field("max_entry_bytes", &self.max_entry_bytes())
            .field("bytes", &self.bytes())
            .field("entries", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::ENTRY_OVERHEAD;
    use crate::generation::RelationId;
    use crate::key::KeyBuilder;
    use bytes::Bytes;
    use std::time::Duration;

    const TTL: Duration = Duration::from_secs(60);

    fn key(n: u32) -> Key {
        KeyBuilder::new().u32_part(n).finish()
    }

    fn entry(gens: &Generations, rels: &[RelationId], len: usize, now: Instant) -> Entry {
        Entry::new(
            Bytes::from(vec![b'x'; len]),
            gens.snapshot(rels),
            now,
            TTL,
            len as u64,
        )
    }

    fn store(max_bytes: u64, shards: usize) -> Store {
        Store::new(StoreConfig {
            max_bytes,
            max_entry_bytes: u64::MAX,
            shards,
        })
    }

    /// Sum of live entry sizes, the long way.
    fn counted(store: &Store) -> (u64, usize) {
        let (mut bytes, mut n) = (0, 0);
        store.for_each_entry(|_, e| {
            bytes += e.size() as u64;
            n += 1;
        });
        (bytes, n)
    }

    #[test]
    fn hit_miss() {
        let g = Generations::new();
        let s = store(1 << 20, 4);
        let now = Instant::now();
        assert!(matches!(s.get(&key(1), &g, now), Lookup::Miss));
        let e = entry(&g, &[1], 10, now);
        let size = e.size() as u64;
        assert_eq!(s.insert(key(1), e, &g), InsertOutcome::Inserted);
        let hit = s.get(&key(1), &g, now).hit().expect("hit");
        assert_eq!(hit.payload.len(), 10);
        assert_eq!((s.bytes(), s.len()), (size, 1));
        let st = s.stats().snapshot();
        assert_eq!((st.hits, st.misses, st.inserts), (1, 1, 1));
        assert_eq!((st.bytes, st.entries), (size, 1));
    }

    #[test]
    fn bump_makes_entry_stale_and_removes_it() {
        let g = Generations::new();
        let s = store(1 << 20, 4);
        let now = Instant::now();
        s.insert(key(1), entry(&g, &[1, 2], 10, now), &g);
        s.insert(key(2), entry(&g, &[3], 10, now), &g);
        g.bump(&[2]);
        assert!(matches!(s.get(&key(1), &g, now), Lookup::Stale));
        assert!(matches!(s.get(&key(1), &g, now), Lookup::Miss));
        assert!(s.get(&key(2), &g, now).is_hit());
        g.bump_all();
        assert!(matches!(s.get(&key(2), &g, now), Lookup::Stale));
        assert_eq!((s.bytes(), s.len()), (0, 0));
        assert_eq!(s.stats().snapshot().stale_drops, 2);
    }

    #[test]
    fn ttl_expires() {
        let g = Generations::new();
        let s = store(1 << 20, 1);
        let now = Instant::now();
        s.insert(key(1), entry(&g, &[1], 10, now), &g);
        assert!(s
            .get(&key(1), &g, now + TTL - Duration::from_millis(1))
            .is_hit());
        assert!(matches!(s.get(&key(1), &g, now + TTL), Lookup::Expired));
        assert_eq!(s.len(), 0);
        assert_eq!(s.stats().snapshot().expirations, 1);
    }

    #[test]
    fn raced_insert_is_refused() {
        let g = Generations::new();
        let s = store(1 << 20, 1);
        let now = Instant::now();
        let e = entry(&g, &[1], 10, now);
        g.bump(&[1]);
        assert_eq!(s.insert(key(1), e, &g), InsertOutcome::Raced);
        let e = entry(&g, &[1], 10, now);
        g.bump_all();
        assert_eq!(s.insert(key(1), e, &g), InsertOutcome::Raced);
        assert!(s.is_empty());
        assert_eq!(s.stats().snapshot().rejected_raced, 2);
    }

    #[test]
    fn zero_ttl_is_refused() {
        let g = Generations::new();
        let s = store(1 << 20, 1);
        let mut e = entry(&g, &[1], 10, Instant::now());
        e.ttl = Duration::ZERO;
        assert_eq!(s.insert(key(1), e, &g), InsertOutcome::Expired);
        assert!(s.is_empty());
    }

    #[test]
    fn too_large() {
        let g = Generations::new();
        let now = Instant::now();
        let s = Store::new(StoreConfig {
            max_bytes: 1 << 20,
            max_entry_bytes: 1000,
            shards: 2,
        });
        assert_eq!(
            s.insert(key(1), entry(&g, &[], 1000, now), &g),
            InsertOutcome::TooLarge
        );
        // The shard budget caps entries too.
        let s = store(2 * (ENTRY_OVERHEAD as u64 + 500), 2);
        assert_eq!(
            s.insert(key(1), entry(&g, &[], 600, now), &g),
            InsertOutcome::TooLarge
        );
        assert_eq!(s.stats().snapshot().rejected_too_large, 1);
        assert!(s.is_empty());
    }

    #[test]
    fn evicts_least_recently_used_to_fit() {
        let g = Generations::new();
        let now = Instant::now();
        let one = entry(&g, &[], 100, now).size() as u64;
        let s = store(3 * one, 1);
        for i in 0..3 {
            assert_eq!(
                s.insert(key(i), entry(&g, &[], 100, now), &g),
                InsertOutcome::Inserted
            );
        }
        assert_eq!(s.bytes(), 3 * one);
        // Touch 0 so 1 is the least recently used.
        assert!(s.get(&key(0), &g, now).is_hit());
        s.insert(key(3), entry(&g, &[], 100, now), &g);
        assert!(matches!(s.get(&key(1), &g, now), Lookup::Miss));
        assert!(s.get(&key(0), &g, now).is_hit());
        assert!(s.get(&key(3), &g, now).is_hit());
        assert_eq!(s.bytes(), 3 * one);
        assert_eq!(s.stats().snapshot().evictions, 1);
        // A bigger entry evicts as many as it needs.
        s.insert(key(4), entry(&g, &[], 100 + 2 * one as usize, now), &g);
        assert_eq!(s.len(), 1);
        assert!(s.bytes() <= s.max_bytes());
        assert_eq!(counted(&s), (s.bytes(), s.len()));
    }

    #[test]
    fn replacing_adjusts_bytes() {
        let g = Generations::new();
        let now = Instant::now();
        let s = store(1 << 20, 2);
        s.insert(key(1), entry(&g, &[1], 100, now), &g);
        s.insert(key(1), entry(&g, &[1], 10, now), &g);
        assert_eq!(s.len(), 1);
        assert_eq!(s.bytes(), entry(&g, &[1], 10, now).size() as u64);
        assert_eq!(s.get(&key(1), &g, now).hit().unwrap().payload.len(), 10);
        let st = s.stats().snapshot();
        assert_eq!((st.entries, st.bytes, st.evictions), (1, s.bytes(), 0));
    }

    #[test]
    fn remove_where_sweep_clear() {
        let g = Generations::new();
        let now = Instant::now();
        let s = store(1 << 20, 4);
        for i in 0..10u32 {
            let mut e = entry(&g, &[u64::from(i % 2)], 10, now);
            e.tag = u64::from(i % 3);
            s.insert(key(i), e, &g);
        }
        let tags = s.entries_by_tag();
        assert_eq!(tags[&0].entries, 4);
        assert_eq!(tags.values().map(|t| t.bytes).sum::<u64>(), s.bytes());

        assert_eq!(s.remove_where(|_, e| e.tag == 0), 4);
        assert_eq!(s.len(), 6);
        assert_eq!(counted(&s), (s.bytes(), 6));

        g.bump(&[1]);
        // Keys 1, 5, 7 read relation 1 (keys 3 and 9 had tag 0).
        assert_eq!(s.sweep(&g, now), 3);
        assert_eq!(s.len(), 3);
        assert_eq!(s.sweep(&g, now + TTL), 3);
        assert!(s.is_empty());
        assert_eq!(s.bytes(), 0);

        s.insert(key(1), entry(&g, &[], 10, now), &g);
        assert!(s.remove(&key(1)));
        assert!(!s.remove(&key(1)));
        s.insert(key(1), entry(&g, &[], 10, now), &g);
        s.insert(key(2), entry(&g, &[], 10, now), &g);
        s.clear();
        assert_eq!((s.len(), s.bytes()), (0, 0));
        let st = s.stats().snapshot();
        assert_eq!((st.entries, st.bytes), (0, 0));
        assert_eq!(st.removals, 4 + 1 + 2);
        assert_eq!((st.stale_drops, st.expirations), (3, 3));
    }

    #[test]
    fn shrinking_budget_evicts() {
        let g = Generations::new();
        let now = Instant::now();
        let s = store(1 << 20, 4);
        for i in 0..100 {
            s.insert(key(i), entry(&g, &[], 100, now), &g);
        }
        assert_eq!(s.len(), 100);
        s.set_max_bytes(2000);
        assert!(s.bytes() <= 2000);
        assert_eq!(counted(&s), (s.bytes(), s.len()));
        s.set_max_bytes(0);
        assert!(s.is_empty());
        assert_eq!(
            s.insert(key(1), entry(&g, &[], 1, now), &g),
            InsertOutcome::TooLarge
        );
    }

    #[test]
    fn degenerate_configs_do_not_panic() {
        let g = Generations::new();
        let now = Instant::now();
        for shards in [0, 1, usize::MAX] {
            let s = store(0, shards);
            assert!(s.shard_count() >= 1 && s.shard_count() <= MAX_SHARDS);
            assert_eq!(
                s.insert(key(1), entry(&g, &[], 0, now), &g),
                InsertOutcome::TooLarge
            );
            assert!(matches!(s.get(&key(1), &g, now), Lookup::Miss));
        }
    }

    #[test]
    fn concurrent_use_keeps_the_books() {
        let g = Arc::new(Generations::new());
        let s = Arc::new(store(50_000, 8));
        let threads: Vec<_> = (0..2u32)
            .map(|t| {
                let (g, s) = (Arc::clone(&g), Arc::clone(&s));
                std::thread::spawn(move || {
                    let now = Instant::now();
                    for i in 0..2000u32 {
                        let k = key(i % 300);
                        match i % 5 {
                            0 => g.bump(&[u64::from(i % 4)]),
                            1 => {
                                s.sweep(&g, now);
                            }
                            _ => {
                                let e =
                                    entry(&g, &[u64::from((i + t) % 4)], (i % 700) as usize, now);
                                s.insert(k, e, &g);
                                s.get(&k, &g, now);
                            }
                        }
                        assert!(s.bytes() <= s.max_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counted(&s), (s.bytes(), s.len()));
        let st = s.stats().snapshot();
        assert_eq!((st.bytes, st.entries), (s.bytes(), s.len() as u64));
    }
}
