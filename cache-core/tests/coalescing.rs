//! Request coalescing under real concurrency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::{
    Coalescer, Entry, Generations, InsertOutcome, Join, KeyBuilder, Stats, Store, StoreConfig,
};
use tokio::sync::Barrier;

const TASKS: usize = 50;

fn key() -> cache_core::Key {
    KeyBuilder::new().part(b"select * from t").finish()
}

/// 50 tasks miss on one key at once: exactly one leads, and every follower
/// gets the very entry the leader built, which is also in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_many_followers() {
    let stats = Arc::new(Stats::new());
    let coalescer = Coalescer::with_stats(Arc::clone(&stats));
    let gens = Arc::new(Generations::with_stats(Arc::clone(&stats)));
    let store = Arc::new(Store::with_stats(
        StoreConfig::default(),
        Arc::clone(&stats),
    ));
    // Everyone joins before the leader completes, so nobody can arrive
    // after the flight ended and become a second leader.
    let barrier = Arc::new(Barrier::new(TASKS));
    let leaders = Arc::new(AtomicUsize::new(0));

    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (coalescer, gens, store) =
                (coalescer.clone(), Arc::clone(&gens), Arc::clone(&store));
            let (barrier, leaders) = (Arc::clone(&barrier), Arc::clone(&leaders));
            tokio::spawn(async move {
                match coalescer.join(key()) {
                    Join::Leader(guard) => {
                        leaders.fetch_add(1, Ordering::SeqCst);
                        let snap = gens.snapshot(&[1, 2]);
                        barrier.wait().await;
                        tokio::time::sleep(Duration::from_millis(10)).await; // "upstream"
                        let entry = Arc::new(Entry::new(
                            Bytes::from_static(b"rows"),
                            snap,
                            Instant::now(),
                            Duration::from_secs(60),
                            7,
                        ));
                        let outcome = store.insert_arc(key(), Arc::clone(&entry), &gens);
                        assert_eq!(outcome, InsertOutcome::Inserted);
                        guard.complete(Some(Arc::clone(&entry)));
                        entry
                    }
                    Join::Follower(follower) => {
                        barrier.wait().await;
                        follower
                            .wait(&gens, Duration::from_secs(10))
                            .await
                            .expect("follower gets the leader's entry")
                    }
                }
            })
        })
        .collect();

    let mut entries = Vec::new();
    for t in tasks {
        entries.push(t.await.expect("task"));
    }
    assert_eq!(leaders.load(Ordering::SeqCst), 1);
    assert!(entries.iter().all(|e| Arc::ptr_eq(e, &entries[0])));
    assert_eq!(entries[0].tag, 7);
    assert_eq!(coalescer.in_flight(), 0);
    let st = stats.snapshot();
    assert_eq!(st.coalesced, (TASKS - 1) as u64);
    assert_eq!(st.coalesce_fallbacks, 0);
    assert_eq!(st.inserts, 1);
}

/// A leader whose connection dies (guard dropped, never completed) releases
/// every follower with `None`, and the key is free for a new leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_leader_wakes_followers_with_none() {
    let coalescer = Coalescer::new();
    let gens = Arc::new(Generations::new());
    let Join::Leader(guard) = coalescer.join(key()) else {
        panic!("first join leads");
    };
    let followers: Vec<_> = (0..TASKS - 1)
        .map(|_| {
            let Join::Follower(f) = coalescer.join(key()) else {
                panic!("later joins follow");
            };
            let gens = Arc::clone(&gens);
            tokio::spawn(async move { f.wait(&gens, Duration::from_secs(10)).await })
        })
        .collect();
    let leader = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(guard); // the leader's task dies mid-query
    });
    leader.await.expect("leader");
    let started = Instant::now();
    for f in followers {
        assert!(f.await.expect("follower").is_none());
    }
    // Released by the drop, not by their 10 s timeout.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(coalescer.in_flight(), 0);
    assert!(matches!(coalescer.join(key()), Join::Leader(_)));
}

/// A leader cancelled by its task being aborted behaves like a drop.
#[tokio::test]
async fn aborted_leader_task_releases_followers() {
    let coalescer = Coalescer::new();
    let gens = Generations::new();
    let Join::Leader(guard) = coalescer.join(key()) else {
        panic!();
    };
    let Join::Follower(f) = coalescer.join(key()) else {
        panic!();
    };
    let leader = tokio::spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    });
    tokio::task::yield_now().await;
    leader.abort();
    assert!(f.wait(&gens, Duration::from_secs(10)).await.is_none());
    assert_eq!(coalescer.in_flight(), 0);
}

/// A leader that never answers: followers give up after their timeout.
#[tokio::test(start_paused = true)]
async fn timeout_returns_none() {
    let coalescer = Coalescer::new();
    let gens = Generations::new();
    let Join::Leader(_guard) = coalescer.join(key()) else {
        panic!();
    };
    let Join::Follower(f) = coalescer.join(key()) else {
        panic!();
    };
    let started = tokio::time::Instant::now();
    assert!(f.wait(&gens, Duration::from_millis(250)).await.is_none());
    assert!(started.elapsed() >= Duration::from_millis(250));
    // The flight is still the leader's until it completes or drops.
    assert_eq!(coalescer.in_flight(), 1);
}

/// Completing with `None` (query failed or result not cacheable) sends the
/// followers upstream.
#[tokio::test]
async fn leader_failure_sends_followers_upstream() {
    let coalescer = Coalescer::new();
    let gens = Generations::new();
    let Join::Leader(guard) = coalescer.join(key()) else {
        panic!();
    };
    let Join::Follower(f) = coalescer.join(key()) else {
        panic!();
    };
    guard.complete(None);
    assert!(f.wait(&gens, Duration::from_secs(10)).await.is_none());
}
