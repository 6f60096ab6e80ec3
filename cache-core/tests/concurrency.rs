//! The proxy's protocol under real threads: readers that miss take a
//! snapshot, "query upstream" and insert; a writer commits, bumps, then
//! acknowledges. A reader must never be served a version older than a
//! write acknowledged before its lookup began.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::{Entry, Generations, KeyBuilder, Lookup, Store, StoreConfig};

const RELS: usize = 3;

/// Stands in for PostgreSQL: one committed version per relation.
struct Database {
    committed: [AtomicU64; RELS],
    /// The last version whose write was acknowledged to its client.
    acked: [AtomicU64; RELS],
}

#[test]
fn readers_never_see_acknowledged_writes_undone() {
    let db = Arc::new(Database {
        committed: Default::default(),
        acked: Default::default(),
    });
    let gens = Arc::new(Generations::new());
    // Small budget so eviction runs concurrently too.
    let store = Arc::new(Store::new(StoreConfig {
        max_bytes: 8 * 1024,
        max_entry_bytes: 1024,
        shards: 4,
    }));
    let stop = Arc::new(AtomicBool::new(false));

    let writer = {
        let (db, gens, stop) = (Arc::clone(&db), Arc::clone(&gens), Arc::clone(&stop));
        std::thread::spawn(move || {
            for i in 0..20_000usize {
                let rel = i % RELS;
                let v = db.committed[rel].fetch_add(1, SeqCst) + 1; // COMMIT
                gens.bump(&[rel as u64]); // CommandComplete relayed: bump first
                db.acked[rel].store(v, SeqCst); // ... then the client learns
            }
            stop.store(true, SeqCst);
        })
    };

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, gens, store, stop) = (
                Arc::clone(&db),
                Arc::clone(&gens),
                Arc::clone(&store),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let mut hits = 0u64;
                let mut i = 0usize;
                while !stop.load(SeqCst) || i < 1000 {
                    let rel = i % RELS;
                    i += 1;
                    let key = KeyBuilder::new().u32_part(rel as u32).finish();
                    let acked = db.acked[rel].load(SeqCst);
                    let now = Instant::now();
                    match store.get(&key, &gens, now) {
                        Lookup::Hit(e) => {
                            let mut v = [0u8; 8];
                            v.copy_from_slice(&e.payload[..8]);
                            let seen = u64::from_le_bytes(v);
                            assert!(seen >= acked, "served v{seen} after v{acked} was acked");
                            hits += 1;
                        }
                        _ => {
                            let snap = gens.snapshot(&[rel as u64]); // before upstream
                            let v = db.committed[rel].load(SeqCst); // the query
                            let entry = Entry::new(
                                Bytes::copy_from_slice(&v.to_le_bytes()),
                                snap,
                                now,
                                Duration::from_secs(60),
                                0,
                            );
                            store.insert(key, entry, &gens);
                        }
                    }
                    assert!(store.bytes() <= store.max_bytes());
                }
                hits
            })
        })
        .collect();

    writer.join().expect("writer");
    let hits: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
    // Not a correctness condition, but the test is only meaningful if the
    // cache served something.
    assert!(hits > 0, "no hits at all");
}
