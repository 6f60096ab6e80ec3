//! Property tests of the store's invariants.
//!
//! Random sequences of operations run against a real `Store` and
//! `Generations` and against a model that only remembers *when* things
//! happened: each operation gets a sequence number, each snapshot the number
//! it was taken at, each relation the number of its last bump. After every
//! step:
//!
//! (a) `bytes() <= max_bytes()`;
//! (b) a hit is never an entry whose snapshot is older than a bump of one of
//!     its relations, or a `bump_all`;
//! (c) a hit is never past its TTL;
//! (d) `bytes()` equals the sum of `size()` over the stored entries (and
//!     `len()`, the stats gauges agree).
//!
//! A second run with a budget too large to ever evict also checks the other
//! direction: every servable entry is found, so the store is not passing (b)
//! and (c) by dropping everything.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::{
    Entry, GenerationSnapshot, Generations, InsertOutcome, Key, KeyBuilder, Lookup, RelationId,
    Store, StoreConfig,
};
use proptest::prelude::*;

const KEYS: u32 = 6;
const RELS: u64 = 4;
const SLOTS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    /// Take a snapshot now, as a miss would before going upstream, and park
    /// the would-be entry in a slot. Inserting it later models a slow query.
    Snapshot {
        slot: usize,
        key: u32,
        rels: Vec<RelationId>,
        len: usize,
        ttl: u64,
    },
    /// Insert the entry parked in a slot, if any.
    Insert {
        slot: usize,
    },
    Get {
        key: u32,
    },
    Bump {
        rels: Vec<RelationId>,
    },
    BumpAll,
    Advance {
        secs: u64,
    },
    SetMaxBytes {
        max: u64,
    },
    Sweep,
    RemoveTagParity {
        odd: bool,
    },
}

fn op(exact: bool) -> impl Strategy<Value = Op> {
    let rels = || proptest::collection::vec(0..RELS, 0..3);
    let mut choices = vec![
        (
            4,
            (0..SLOTS, 0..KEYS, rels(), 0usize..1500, 0u64..5)
                .prop_map(|(slot, key, rels, len, ttl)| Op::Snapshot {
                    slot,
                    key,
                    rels,
                    len,
                    ttl,
                })
                .boxed(),
        ),
        (4, (0..SLOTS).prop_map(|slot| Op::Insert { slot }).boxed()),
        (5, (0..KEYS).prop_map(|key| Op::Get { key }).boxed()),
        (2, rels().prop_map(|rels| Op::Bump { rels }).boxed()),
        (1, Just(Op::BumpAll).boxed()),
        (2, (0u64..3).prop_map(|secs| Op::Advance { secs }).boxed()),
        (1, Just(Op::Sweep).boxed()),
        (
            1,
            any::<bool>()
                .prop_map(|odd| Op::RemoveTagParity { odd })
                .boxed(),
        ),
    ];
    if !exact {
        choices.push((
            1,
            (0u64..12_000)
                .prop_map(|max| Op::SetMaxBytes { max })
                .boxed(),
        ));
    }
    proptest::strategy::Union::new_weighted(choices)
}

/// What the model knows about an entry, found by its (unique) tag.
#[derive(Clone)]
struct Meta {
    key: u32,
    rels: Vec<RelationId>,
    snap_seq: u64,
    inserted_secs: u64,
    ttl: u64,
}

struct Parked {
    tag: u64,
    snap: GenerationSnapshot,
    len: usize,
}

struct Model {
    seq: u64,
    now_secs: u64,
    last_bump: HashMap<RelationId, u64>,
    last_bump_all: Option<u64>,
    metas: HashMap<u64, Meta>,
    /// The last successfully inserted tag per key: the only one a hit may
    /// return (a replaced entry must never come back).
    latest: HashMap<u32, u64>,
    /// Exact mode only: keys whose latest entry is still stored.
    stored: HashMap<u32, u64>,
}

impl Model {
    fn invalidated(&self, meta: &Meta) -> bool {
        self.last_bump_all.is_some_and(|s| s > meta.snap_seq)
            || meta
                .rels
                .iter()
                .any(|r| self.last_bump.get(r).is_some_and(|s| *s > meta.snap_seq))
    }

    fn expired(&self, meta: &Meta) -> bool {
        self.now_secs - meta.inserted_secs >= meta.ttl
    }
}

fn key(k: u32) -> Key {
    KeyBuilder::new().u32_part(k).finish()
}

fn run(ops: Vec<Op>, config: StoreConfig, exact: bool) -> Result<(), TestCaseError> {
    let gens = Generations::new();
    let store = Store::new(config);
    let base = Instant::now();
    let at = |secs: u64| base + Duration::from_secs(secs);
    let mut parked: Vec<Option<Parked>> = (0..SLOTS).map(|_| None).collect();
    let mut m = Model {
        seq: 0,
        now_secs: 0,
        last_bump: HashMap::new(),
        last_bump_all: None,
        metas: HashMap::new(),
        latest: HashMap::new(),
        stored: HashMap::new(),
    };
    let mut next_tag = 0u64;

    for op in ops {
        m.seq += 1;
        let now = at(m.now_secs);
        match op {
            Op::Snapshot {
                slot,
                key,
                rels,
                len,
                ttl,
            } => {
                next_tag += 1;
                m.metas.insert(
                    next_tag,
                    Meta {
                        key,
                        rels: rels.clone(),
                        snap_seq: m.seq,
                        inserted_secs: m.now_secs,
                        ttl,
                    },
                );
                parked[slot] = Some(Parked {
                    tag: next_tag,
                    snap: gens.snapshot(&rels),
                    len,
                });
            }
            Op::Insert { slot } => {
                let Some(p) = parked[slot].take() else {
                    continue;
                };
                let meta = m.metas[&p.tag].clone();
                let entry = Entry::new(
                    Bytes::from(vec![0u8; p.len]),
                    p.snap,
                    at(meta.inserted_secs),
                    Duration::from_secs(meta.ttl),
                    p.tag,
                );
                let size = entry.size() as u64;
                let cap = store
                    .max_entry_bytes()
                    .min(store.max_bytes() / store.shard_count() as u64);
                let expected = if meta.ttl == 0 {
                    InsertOutcome::Expired
                } else if size > cap {
                    InsertOutcome::TooLarge
                } else if m.invalidated(&meta) {
                    InsertOutcome::Raced
                } else {
                    InsertOutcome::Inserted
                };
                let got = store.insert(key(meta.key), entry, &gens);
                prop_assert_eq!(got, expected);
                if got == InsertOutcome::Inserted {
                    m.latest.insert(meta.key, p.tag);
                    m.stored.insert(meta.key, p.tag);
                }
            }
            Op::Get { key: k } => {
                let got = store.get(&key(k), &gens, now);
                if let Lookup::Hit(e) = &got {
                    let meta = &m.metas[&e.tag];
                    prop_assert_eq!(meta.key, k);
                    prop_assert_eq!(Some(&e.tag), m.latest.get(&k), "resurrected entry");
                    prop_assert!(!m.invalidated(meta), "(b) served after a bump");
                    prop_assert!(!m.expired(meta), "(c) served past its TTL");
                }
                if exact {
                    let stored = m.stored.get(&k).copied();
                    let servable = stored.filter(|t| {
                        let meta = &m.metas[t];
                        !m.invalidated(meta) && !m.expired(meta)
                    });
                    match &got {
                        Lookup::Hit(e) => prop_assert_eq!(Some(e.tag), servable),
                        Lookup::Miss => prop_assert_eq!(stored, None),
                        Lookup::Expired | Lookup::Stale => {
                            prop_assert!(stored.is_some() && servable.is_none())
                        }
                    }
                    if !got.is_hit() {
                        m.stored.remove(&k);
                    }
                }
            }
            Op::Bump { rels } => {
                gens.bump(&rels);
                for r in rels {
                    m.last_bump.insert(r, m.seq);
                }
            }
            Op::BumpAll => {
                gens.bump_all();
                m.last_bump_all = Some(m.seq);
            }
            Op::Advance { secs } => m.now_secs += secs,
            Op::SetMaxBytes { max } => store.set_max_bytes(max),
            Op::Sweep => {
                let dropped = store.sweep(&gens, now);
                if exact {
                    let dead: Vec<u32> = m
                        .stored
                        .iter()
                        .filter(|(_, t)| {
                            let meta = &m.metas[*t];
                            m.invalidated(meta) || m.expired(meta)
                        })
                        .map(|(k, _)| *k)
                        .collect();
                    prop_assert_eq!(dropped, dead.len());
                    for k in dead {
                        m.stored.remove(&k);
                    }
                }
            }
            Op::RemoveTagParity { odd } => {
                let removed = store.remove_where(|_, e| (e.tag % 2 == 1) == odd);
                if exact {
                    let gone: Vec<u32> = m
                        .stored
                        .iter()
                        .filter(|(_, t)| (*t % 2 == 1) == odd)
                        .map(|(k, _)| *k)
                        .collect();
                    prop_assert_eq!(removed, gone.len());
                    for k in gone {
                        m.stored.remove(&k);
                    }
                }
            }
        }

        // (a) the budget holds at every step.
        prop_assert!(store.bytes() <= store.max_bytes());
        // (d) the books match what is stored.
        let (mut sum, mut n) = (0u64, 0usize);
        store.for_each_entry(|_, e| {
            sum += e.size() as u64;
            n += 1;
        });
        prop_assert_eq!(store.bytes(), sum);
        prop_assert_eq!(store.len(), n);
        let st = store.stats().snapshot();
        prop_assert_eq!((st.bytes, st.entries), (sum, n as u64));
        if exact {
            prop_assert_eq!(n, m.stored.len());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_under_eviction(
        ops in proptest::collection::vec(op(false), 1..80),
        max_bytes in 0u64..12_000,
        max_entry_bytes in 0u64..3_000,
        shards in 1usize..5,
    ) {
        run(ops, StoreConfig { max_bytes, max_entry_bytes, shards }, false)?;
    }

    #[test]
    fn servable_entries_are_found_without_eviction(
        ops in proptest::collection::vec(op(true), 1..80),
        shards in 1usize..5,
    ) {
        let config = StoreConfig { max_bytes: u64::MAX, max_entry_bytes: u64::MAX, shards };
        run(ops, config, true)?;
    }
}
