//! The second bump: once a decoded commit is surely visible to new snapshots.
//!
//! A backend writes and flushes its commit record, and only then leaves the
//! proc array; the walsender may decode the record in between. A reader that
//! takes its generations after the feed's first bump, but its snapshot while
//! the writer is still in the proc array, misses the commit and would store
//! a stale entry under the new generations.
//!
//! So each commit is bumped again after the server says its xid is no longer
//! in progress (`txid_status` is not `in progress`: that function consults
//! the proc array, the same one snapshots are built from). Any snapshot taken
//! after that answer sees the commit. A reader whose snapshot is older took
//! its generations before the second bump, so its entry is refused at insert
//! or dead at lookup; a reader that takes its generations after the second
//! bump takes its snapshot later still, and sees the commit. Nothing else is
//! needed: the first bump only makes the window shorter.
//!
//! Commits are checked in batches (one round trip for all of those decoded
//! meanwhile), over a connection of its own as the service account.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::gate::DbGate;
use crate::catalog::DbCatalog;
use crate::engine::{Source, WriteSet};
use crate::shared::Shared;

/// How many decoded commits may wait for their check; beyond, the stream
/// waits (bounded memory, and the walsender simply holds back).
const QUEUE: usize = 4096;

/// After this many failed checks in a row, a batch is bumped without an
/// answer: the window is microseconds wide, and a bump never hurts.
const MAX_FAILED_CHECKS: u32 = 3;

const APPLICATION_NAME: &str = "pgcache-feed-visibility";

/// How long a stream start waits for the transactions running when it
/// started. Those still running after this are taken for long transactions
/// whose commits come later in the stream (which bumps them itself); only a
/// commit flushed before the slot's consistent point and kept out of
/// snapshots longer than this (a synchronous standby that long behind) could
/// be missed.
const START_PATIENCE: Duration = Duration::from_secs(1);

/// What waits for the server to make commits visible.
pub enum Check {
    /// A decoded commit and what it changed.
    Commit { xid: u32, writes: WriteSet },
    /// A stream (re)started and everything was bumped. Commits flushed just
    /// before the slot's consistent point are never decoded, and may not be
    /// visible yet: everything is bumped again once the transactions
    /// running at this point have left the proc array, then `then` runs.
    Started { then: Box<dyn FnOnce() + Send> },
    /// The database is being released (DROP DATABASE and the like): close
    /// the connection, then say so.
    Release {
        done: tokio::sync::oneshot::Sender<()>,
    },
}

/// The xids to wait for.
pub(super) enum Pending {
    /// Decoded 32-bit xids.
    Decoded(Vec<u32>),
    /// Whatever is in progress when the check begins.
    RunningNow,
}

/// Starts the checker of one database; checks are sent to the returned
/// sender. The task ends when the sender is dropped.
pub fn spawn(
    shared: Arc<Shared>,
    catalog: Arc<DbCatalog>,
    gate: Arc<DbGate>,
) -> mpsc::Sender<Check> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(shared, catalog, gate, rx));
    tx
}

async fn run(
    shared: Arc<Shared>,
    catalog: Arc<DbCatalog>,
    gate: Arc<DbGate>,
    mut rx: mpsc::Receiver<Check>,
) {
    let mut client: Option<Client> = None;
    let mut held: Option<Check> = None;
    let mut marks = Marks::new(&shared, &catalog);
    loop {
        let first = match held.take() {
            Some(check) => check,
            None => {
                tokio::select! {
                    check = rx.recv() => match check {
                        Some(check) => check,
                        None => return,
                    },
                    _ = tokio::time::sleep_until(marks.due) => {
                        marks.take(&shared, &gate, &mut client, &catalog).await;
                        continue;
                    }
                    _ = gate.wake.notified() => {
                        marks.take(&shared, &gate, &mut client, &catalog).await;
                        continue;
                    }
                }
            }
        };
        // Lag marks go on while a check waits for visibility.
        let mut meanwhile = Some(Meanwhile {
            marks: &mut marks,
            shared: &shared,
            gate: &gate,
        });
        match first {
            Check::Release { done } => {
                client = None;
                let _ = done.send(());
            }
            Check::Started { then } => {
                wait_visible(
                    &mut client,
                    &catalog,
                    Pending::RunningNow,
                    Some(START_PATIENCE),
                    &mut meanwhile,
                )
                .await;
                shared
                    .engine
                    .invalidate_database(catalog.index(), Source::FeedRestart);
                then();
            }
            Check::Commit { xid, mut writes } => {
                let mut xids = vec![xid];
                while let Ok(more) = rx.try_recv() {
                    match more {
                        Check::Commit { xid, writes: more } => {
                            xids.push(xid);
                            writes.add(&more);
                        }
                        started => {
                            held = Some(started);
                            break;
                        }
                    }
                }
                wait_visible(
                    &mut client,
                    &catalog,
                    Pending::Decoded(xids),
                    None,
                    &mut meanwhile,
                )
                .await;
                shared.engine.invalidate(&writes, Source::Feed);
            }
        }
    }
}

/// The lag marks (see `lag.rs`): the server's WAL insert position, asked
/// every `max_lag / 2` while sessions ask whether the database may be
/// served (within [`BUSY_WINDOW`]), every [`IDLE_MARKS`] otherwise (the gauges stay meaningful, and an
/// idle proxy costs the server one tiny query per database every few
/// seconds).
struct Marks {
    due: tokio::time::Instant,
    lag_seconds: prometheus::Gauge,
    lag_bytes: prometheus::IntGauge,
}

/// Where the server's WAL ends, as the end of a record: the insert
/// position, not the flush one (a commit made with `synchronous_commit =
/// off` is acknowledged before it is flushed, but never before it is
/// inserted). At the start of a page the insert position points past the
/// page header, where no record ends; it is moved back to the page boundary
/// so that a stream that has read everything reaches it.
const WAL_POSITION: &str =
    "SELECT l - CASE WHEN l % seg = 40 THEN 40 WHEN l % blk = 24 THEN 24 ELSE 0 END \
     FROM (SELECT (pg_current_wal_insert_lsn() - '0/0')::int8 AS l, \
                  current_setting('wal_block_size')::int8 AS blk, \
                  pg_size_bytes(current_setting('wal_segment_size')) AS seg) AS wal";

const IDLE_MARKS: Duration = Duration::from_secs(5);
/// A database asked about within this long counts as busy: sporadic
/// traffic keeps the marks frequent (else each read after a pause would
/// find the lag over max_lag and pass through).
const BUSY_WINDOW: Duration = Duration::from_secs(30);
/// Marks never come closer together than this, whatever max_lag says.
const MIN_MARK_INTERVAL: Duration = Duration::from_millis(20);

impl Marks {
    fn new(shared: &Shared, catalog: &DbCatalog) -> Marks {
        let database = [catalog.database()];
        Marks {
            due: tokio::time::Instant::now(),
            lag_seconds: shared.stats.feed.lag_seconds.with_label_values(&database),
            lag_bytes: shared.stats.feed.lag_bytes.with_label_values(&database),
        }
    }

    async fn take(
        &mut self,
        shared: &Shared,
        gate: &DbGate,
        client: &mut Option<Client>,
        catalog: &DbCatalog,
    ) {
        let max_lag = shared.engine.policy.load().max_lag();
        shared.stats.feed.max_lag.set(max_lag.as_secs_f64());
        let asked = gate
            .clock
            .asked_within(std::time::Instant::now(), BUSY_WINDOW);
        if gate.is_streaming() {
            let at = std::time::Instant::now();
            let position = async {
                let connected = connected(client, catalog).await?;
                let row = connected
                    .query_one(WAL_POSITION, &[])
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<i64, String>(row.get(0))
            };
            match position.await {
                Ok(lsn) => gate.clock.mark(u64::try_from(lsn).unwrap_or(0), at),
                // The lag simply grows: hits stop once it passes max_lag.
                Err(_) => *client = None,
            }
            let lag = gate.clock.lag(std::time::Instant::now());
            self.lag_seconds.set(if lag == Duration::MAX {
                f64::INFINITY
            } else {
                lag.as_secs_f64()
            });
            self.lag_bytes
                .set(i64::try_from(gate.clock.bytes_behind()).unwrap_or(i64::MAX));
        }
        let every = if asked {
            (max_lag / 2).max(MIN_MARK_INTERVAL)
        } else {
            IDLE_MARKS
        };
        self.due = tokio::time::Instant::now() + every;
    }
}

/// What the checker keeps doing while it waits for a commit to become
/// visible: the lag marks. A commit held out of snapshots for long (a
/// synchronous standby that is slow to answer) must not look like a stream
/// that fell behind.
pub(super) struct Meanwhile<'a> {
    marks: &'a mut Marks,
    shared: &'a Shared,
    gate: &'a DbGate,
}

/// Returns once none of `pending` is in progress, once `patience` has
/// passed, or after [`MAX_FAILED_CHECKS`] failed attempts in a row.
pub(super) async fn wait_visible(
    client: &mut Option<Client>,
    catalog: &DbCatalog,
    pending: Pending,
    patience: Option<Duration>,
    meanwhile: &mut Option<Meanwhile<'_>>,
) {
    let began = tokio::time::Instant::now();
    let mut full: Option<Vec<i64>> = None;
    let mut failures = 0;
    let mut pause = Duration::from_millis(1);
    loop {
        let step = async {
            let connected = connected(client, catalog).await?;
            let xids = match full.take() {
                Some(xids) => xids,
                None => full_xids(connected, &pending).await?,
            };
            in_progress(connected, xids).await
        };
        match step.await {
            Ok(running) if running.is_empty() => return,
            Ok(running) => {
                failures = 0;
                full = Some(running);
            }
            Err(error) => {
                *client = None;
                failures += 1;
                if failures >= MAX_FAILED_CHECKS {
                    tracing::warn!(database = %catalog.database(), %error,
                        "cannot ask the server whether commits are visible; invalidating without its answer");
                    return;
                }
            }
        }
        if patience.is_some_and(|p| began.elapsed() >= p) {
            return;
        }
        if let Some(m) = meanwhile {
            if tokio::time::Instant::now() >= m.marks.due {
                m.marks.take(m.shared, m.gate, client, catalog).await;
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

async fn connected<'a>(
    client: &'a mut Option<Client>,
    catalog: &DbCatalog,
) -> Result<&'a Client, String> {
    if client.as_ref().is_none_or(|c| c.is_closed()) {
        *client = Some(
            catalog
                .open_connection(APPLICATION_NAME)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(client.as_ref().expect("just connected"))
}

/// The 64-bit xids to wait for.
async fn full_xids(client: &Client, pending: &Pending) -> Result<Vec<i64>, String> {
    match pending {
        Pending::Decoded(xids) => {
            // The stream gives 32-bit xids; txid_status wants them with their
            // epoch. Every decoded xid is older than the next one assigned.
            let next: i64 = client
                .query_one("SELECT txid_snapshot_xmax(txid_current_snapshot())", &[])
                .await
                .map_err(|e| e.to_string())?
                .get(0);
            Ok(xids.iter().map(|&x| with_epoch(x, next)).collect())
        }
        Pending::RunningNow => {
            let rows = client
                .query("SELECT txid_snapshot_xip(txid_current_snapshot())", &[])
                .await
                .map_err(|e| e.to_string())?;
            Ok(rows.iter().map(|row| row.get::<_, i64>(0)).collect())
        }
    }
}

/// Which of `xids` are still in progress on the server.
async fn in_progress(client: &Client, xids: Vec<i64>) -> Result<Vec<i64>, String> {
    if xids.is_empty() {
        return Ok(xids);
    }
    let rows = client
        .query(
            "SELECT x FROM unnest($1::int8[]) AS x WHERE txid_status(x) = 'in progress'",
            &[&xids],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows.iter().map(|row| row.get::<_, i64>(0)).collect())
}

/// The 64-bit xid of `xid`, given the server's next 64-bit xid.
fn with_epoch(xid: u32, next: i64) -> i64 {
    let full = (next & !0xffff_ffff) | i64::from(xid);
    if full >= next {
        full - (1 << 32)
    } else {
        full
    }
}

#[cfg(test)]
mod tests {
    use super::with_epoch;

    #[test]
    fn an_xid_takes_the_epoch_of_the_next_xid_or_the_one_before() {
        assert_eq!(with_epoch(700, 1000), 700);
        assert_eq!(with_epoch(700, (3 << 32) + 1000), (3 << 32) + 700);
        // Assigned just before the counter wrapped into epoch 3.
        assert_eq!(with_epoch(u32::MAX - 5, (3 << 32) + 10), (3 << 32) - 6);
    }
}
