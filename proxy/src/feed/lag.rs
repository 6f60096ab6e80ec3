//! How far behind the server a database's stream is, in time: the bound on
//! how stale a hit may be while the feed is the only thing that would have
//! invalidated it.
//!
//! The stream alone cannot tell: test_decoding's messages carry positions
//! the walsender has reached, not where the server's WAL ends, and a stalled
//! stream (a hung walsender, a half-open network path) sends nothing at all.
//! So the visibility checker's connection asks the server now and then for
//! its WAL insert position (a *mark*: "at local time t, every commit
//! acknowledged so far ends at or before this LSN"). Once the stream has
//! handled that position, every commit acknowledged before t is
//! invalidated: the feed is *covered* up to t, and its lag is `now - t`.
//!
//! The stream handles a position when it finishes a COMMIT (its end), and
//! when a keepalive arrives: the walsender sends a keepalive only after the
//! output of every record before its position, so every commit that ends
//! there has been read and bumped. A walsender that has read new WAL sends
//! such keepalives on its own while the proxy has not confirmed it, so an
//! idle stream keeps up with the marks without being asked.
//!
//! (A commit made with `synchronous_commit = off` is acknowledged before it
//! is flushed, and the walsender decodes only flushed WAL: the lag then
//! includes the WAL writer's delay, `wal_writer_delay`, 200 ms by default;
//! the bound holds, and max_lag must be above that delay for hits to be
//! served while such commits come.)

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Marks waiting for the stream to reach them; beyond this many, the oldest
/// go (only newer marks can then cover, which overstates the lag, never
/// understates it).
const MAX_MARKS: usize = 64;

/// A database's lag clock, shared by its stream, its checker and the gate.
#[derive(Debug, Default)]
pub struct LagClock {
    inner: Mutex<Marks>,
    /// Covered up to this local time (millis since [`base`]); 0: never.
    covered: AtomicU64,
    /// When a session last asked for the lag (millis since [`base`], to
    /// the second: most asks only read it).
    asked: AtomicU64,
}

#[derive(Debug, Default)]
struct Marks {
    pending: VecDeque<(u64, Instant)>,
    handled: u64,
    /// The server's WAL end at the newest mark, for the bytes gauge.
    server_end: u64,
}

impl LagClock {
    /// The server's WAL insert position was `lsn` at `at` (taken before the
    /// question was sent).
    pub fn mark(&self, lsn: u64, at: Instant) {
        let mut marks = self.inner.lock();
        marks.server_end = marks.server_end.max(lsn);
        if lsn <= marks.handled {
            self.cover(at);
            return;
        }
        if marks.pending.len() == MAX_MARKS {
            marks.pending.pop_front();
        }
        marks.pending.push_back((lsn, at));
    }

    /// The stream has read and bumped every commit ending at or before `lsn`.
    pub fn handled(&self, lsn: u64) {
        let mut marks = self.inner.lock();
        if lsn <= marks.handled {
            return;
        }
        marks.handled = lsn;
        let mut newest = None;
        while let Some(&(mark, at)) = marks.pending.front() {
            if mark > lsn {
                break;
            }
            newest = Some(at);
            marks.pending.pop_front();
        }
        if let Some(at) = newest {
            self.cover(at);
        }
    }

    /// A new stream: nothing it has not handled is covered, and positions
    /// of the old one mean nothing to it. `at`: when the new stream's
    /// start is known to be invalidated (everything before it was bumped).
    pub fn restart(&self, at: Instant) {
        let mut marks = self.inner.lock();
        *marks = Marks::default();
        self.covered.store(0, Ordering::SeqCst);
        drop(marks);
        self.cover(at);
    }

    fn cover(&self, at: Instant) {
        self.covered.fetch_max(millis(at), Ordering::SeqCst);
    }

    /// How stale a hit may be now: the time since the newest covered mark.
    pub fn lag(&self, now: Instant) -> Duration {
        let covered = self.covered.load(Ordering::SeqCst);
        if covered == 0 {
            return Duration::MAX;
        }
        Duration::from_millis(millis(now).saturating_sub(covered))
    }

    /// [`LagClock::lag`] for the gate: also tells the checker that the lag
    /// matters, so it keeps marking.
    pub fn lag_for_serving(&self, now: Instant) -> Duration {
        let at = millis(now);
        if at.saturating_sub(self.asked.load(Ordering::Relaxed)) >= 1000 {
            self.asked.store(at, Ordering::Relaxed);
        }
        self.lag(now)
    }

    /// Whether a session asked within `window` before `now` (the checker
    /// marks often only then, so an idle proxy costs the server little).
    pub fn asked_within(&self, now: Instant, window: Duration) -> bool {
        let asked = self.asked.load(Ordering::Relaxed);
        asked != 0 && u128::from(millis(now).saturating_sub(asked)) <= window.as_millis()
    }

    /// WAL the server had at the newest mark that the stream has not handled.
    pub fn bytes_behind(&self) -> u64 {
        let marks = self.inner.lock();
        marks.server_end.saturating_sub(marks.handled)
    }
}

/// Milliseconds since the first call, plus one (so 0 can mean "never").
fn millis(at: Instant) -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(|| Instant::now() - Duration::from_secs(1));
    u64::try_from(at.saturating_duration_since(base).as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_covers_its_time_once_the_stream_reaches_its_position() {
        let clock = LagClock::default();
        let t0 = Instant::now();
        assert_eq!(clock.lag(t0), Duration::MAX, "never covered");
        clock.restart(t0);
        clock.handled(100);
        let t1 = t0 + Duration::from_millis(50);
        clock.mark(200, t1);
        let later = t0 + Duration::from_millis(300);
        assert_eq!(clock.lag(later), Duration::from_millis(300));
        assert_eq!(clock.bytes_behind(), 100);
        clock.handled(150);
        assert_eq!(
            clock.lag(later),
            Duration::from_millis(300),
            "not there yet"
        );
        clock.handled(200);
        assert_eq!(clock.lag(later), Duration::from_millis(250));
        assert_eq!(clock.bytes_behind(), 0);
        // A mark the stream has already passed covers at once.
        clock.mark(180, t0 + Duration::from_millis(280));
        assert_eq!(clock.lag(later), Duration::from_millis(20));
    }

    #[test]
    fn a_restart_forgets_the_old_stream() {
        let clock = LagClock::default();
        let t0 = Instant::now();
        clock.restart(t0);
        clock.handled(1000);
        clock.mark(2000, t0 + Duration::from_millis(10));
        let t1 = t0 + Duration::from_millis(500);
        clock.restart(t1);
        // Positions start over; the old pending mark is gone.
        clock.handled(1500);
        clock.handled(2500);
        assert_eq!(
            clock.lag(t1 + Duration::from_millis(5)),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn marks_are_bounded_and_only_overstate() {
        let clock = LagClock::default();
        let t0 = Instant::now();
        clock.restart(t0);
        for i in 0..1000u64 {
            clock.mark(10 + i, t0 + Duration::from_millis(i));
        }
        assert!(clock.inner.lock().pending.len() <= MAX_MARKS);
        clock.handled(10 + 999);
        let now = t0 + Duration::from_millis(1000);
        assert_eq!(clock.lag(now), Duration::from_millis(1));
    }

    #[test]
    fn asking_is_remembered_for_a_while() {
        let clock = LagClock::default();
        let now = Instant::now();
        let window = Duration::from_secs(30);
        assert!(!clock.asked_within(now, window));
        clock.lag_for_serving(now);
        assert!(clock.asked_within(now + Duration::from_secs(29), window));
        assert!(!clock.asked_within(now + Duration::from_secs(32), window));
    }
}
