//! Which databases may be served from the cache, as far as the feed goes.
//!
//! A database whose feed streams is served while the feed is within the
//! policy's `max_lag` of the server ([`LagClock`]). One whose feed is down is
//! not served: under `--change-feed required` always, under `auto` once its
//! feed has streamed (a database where the feed never could start, because
//! the server has no logical WAL or the account no REPLICATION, is served
//! with TTLs alone, as without a feed). The supervisor closes a database
//! before it invalidates on a loss, and opens it only after the
//! invalidation that starts a stream, so no hit is ever served from an entry
//! that could have missed a commit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use super::lag::LagClock;
use super::mode::ChangeFeedMode;
use crate::bypass::Bypass;

/// The feed's side of the cache decision, for every database.
#[derive(Debug, Default)]
pub struct FeedGate {
    mode: ChangeFeedMode,
    /// One per followed database: bounded like the catalogs (a supervisor
    /// exists only for a database whose catalog was opened).
    databases: RwLock<HashMap<String, Arc<DbGate>>>,
}

/// One database's feed, as the gate sees it.
#[derive(Debug, Default)]
pub struct DbGate {
    streaming: AtomicBool,
    /// The feed has streamed at least once (under `auto`, from then on a
    /// feed that is down closes the database).
    has_streamed: AtomicBool,
    pub clock: LagClock,
    /// Wakes the checker for a mark now: a request found the lag too high
    /// (after an idle spell, marks are seconds apart).
    pub(super) wake: tokio::sync::Notify,
}

impl FeedGate {
    pub fn new(mode: ChangeFeedMode) -> FeedGate {
        FeedGate {
            mode,
            databases: RwLock::default(),
        }
    }

    /// Why sessions of `database` may not use the cache now, if they may not.
    pub fn check(&self, database: &str, max_lag: Duration, now: Instant) -> Option<Bypass> {
        if self.mode == ChangeFeedMode::Off {
            return None;
        }
        let gate = self.databases.read().get(database).cloned();
        let closed_when_down = |gate: &DbGate| {
            self.mode == ChangeFeedMode::Required || gate.has_streamed.load(Ordering::SeqCst)
        };
        match gate {
            None if self.mode == ChangeFeedMode::Required => Some(Bypass::FeedDown),
            None => None,
            Some(gate) if !gate.streaming.load(Ordering::SeqCst) => {
                closed_when_down(&gate).then_some(Bypass::FeedDown)
            }
            Some(gate) if gate.clock.lag_for_serving(now) > max_lag => {
                gate.wake.notify_one();
                Some(Bypass::FeedLagging)
            }
            Some(_) => None,
        }
    }

    /// The gate of `database`, made on first use by its supervisor.
    pub(super) fn database(&self, database: &str) -> Arc<DbGate> {
        if let Some(gate) = self.databases.read().get(database) {
            return gate.clone();
        }
        self.databases
            .write()
            .entry(database.to_string())
            .or_default()
            .clone()
    }
}

impl DbGate {
    pub(super) fn set_streaming(&self, streaming: bool) {
        if streaming {
            self.has_streamed.store(true, Ordering::SeqCst);
        }
        self.streaming.store(streaming, Ordering::SeqCst);
    }

    pub(super) fn has_streamed(&self) -> bool {
        self.has_streamed.load(Ordering::SeqCst)
    }

    pub(super) fn is_streaming(&self) -> bool {
        self.streaming.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: Duration = Duration::from_millis(250);

    fn check(gate: &FeedGate, db: &str, now: Instant) -> Option<Bypass> {
        gate.check(db, LAG, now)
    }

    #[test]
    fn off_never_closes() {
        let gate = FeedGate::new(ChangeFeedMode::Off);
        gate.database("db");
        assert_eq!(check(&gate, "db", Instant::now()), None);
    }

    #[test]
    fn required_closes_until_streaming_and_within_max_lag() {
        let gate = FeedGate::new(ChangeFeedMode::Required);
        let now = Instant::now();
        assert_eq!(check(&gate, "db", now), Some(Bypass::FeedDown));
        let db = gate.database("db");
        assert_eq!(check(&gate, "db", now), Some(Bypass::FeedDown));
        db.clock.restart(now);
        db.set_streaming(true);
        assert_eq!(check(&gate, "db", now + Duration::from_millis(10)), None);
        assert_eq!(
            check(&gate, "db", now + Duration::from_millis(400)),
            Some(Bypass::FeedLagging)
        );
        assert_eq!(check(&gate, "other", now), Some(Bypass::FeedDown));
        db.set_streaming(false);
        assert_eq!(check(&gate, "db", now), Some(Bypass::FeedDown));
    }

    #[test]
    fn auto_serves_a_database_whose_feed_never_streamed_but_not_one_whose_feed_broke() {
        let gate = FeedGate::new(ChangeFeedMode::Auto);
        let now = Instant::now();
        assert_eq!(check(&gate, "db", now), None);
        let db = gate.database("db");
        assert_eq!(check(&gate, "db", now), None, "never streamed: TTLs alone");
        db.clock.restart(now);
        db.set_streaming(true);
        assert_eq!(check(&gate, "db", now), None);
        db.set_streaming(false);
        assert_eq!(check(&gate, "db", now), Some(Bypass::FeedDown));
    }
}
