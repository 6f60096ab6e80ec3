//! One database's stream, from slot creation until the connection breaks.
//!
//! The slot is TEMPORARY: the server drops it when this connection ends,
//! however it ends (a stopped or killed proxy, a network failure), so no WAL
//! is ever held for a proxy that is gone. The price is that a new connection
//! starts from a new consistent point and cannot replay what it missed; the
//! supervisor therefore invalidates everything each time a stream starts.
//!
//! The plugin is test_decoding: it ships with the server and needs no
//! publication. A publication that publishes UPDATE and DELETE makes the
//! server refuse those statements on tables without a replica identity, so a
//! proxy using pgoutput would change what users' statements do.
//! test_decoding never does (see docs/ARCHITECTURE.md).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{Gauge, IntGauge};

use tokio::sync::mpsc;

use super::apply;
use super::connection::{FeedError, ReplicationConnection};
use super::decode::{self, Transaction};
use super::visibility::Check;
use crate::catalog::DbCatalog;
use crate::engine::WriteSet;
use crate::server::Shared;
use crate::wire::backend;
use crate::wire::replication::{self, Lsn, ServerMessage, StandbyStatus};

/// A status update at most this long after the last, when messages keep
/// coming, so the server can recycle WAL. An idle server asks for one with a
/// keepalive before `wal_sender_timeout` (60 s by default) runs out; the
/// update is sent after a message, never by interrupting a read, since a
/// read cut in the middle of a message would lose the framing.
const STATUS_INTERVAL: Duration = Duration::from_secs(10);

/// Numbers the slots of this process.
static SLOTS: AtomicU32 = AtomicU32::new(0);

/// A unique slot name per connection: the pid tells a server's admin which
/// process holds it.
fn slot_name() -> String {
    format!(
        "pgcache_{}_{}",
        std::process::id(),
        SLOTS.fetch_add(1, Ordering::Relaxed)
    )
}

/// Connects, creates the slot, calls `began` once the server streams (and
/// invalidates everything: what committed while no stream listened is
/// unknown), has the checker call `ready` once what committed just before
/// is visible too, then follows the stream until it ends (always with an
/// error).
pub(super) async fn run(
    shared: &Shared,
    catalog: &Arc<DbCatalog>,
    visible: &mpsc::Sender<Check>,
    began: impl FnOnce(),
    ready: Box<dyn FnOnce() + Send>,
) -> Result<(), FeedError> {
    let database = catalog.database();
    let mut conn = ReplicationConnection::open(
        &shared.config.upstream,
        shared.upstream_tls.as_ref(),
        database,
        shared.config.connect_timeout,
    )
    .await?;
    let slot = slot_name();
    let result = follow(shared, catalog, visible, &mut conn, &slot, began, ready).await;
    conn.close().await;
    result
}

async fn follow(
    shared: &Shared,
    catalog: &Arc<DbCatalog>,
    visible: &mpsc::Sender<Check>,
    conn: &mut ReplicationConnection,
    slot: &str,
    began: impl FnOnce(),
    ready: Box<dyn FnOnce() + Send>,
) -> Result<(), FeedError> {
    conn.command(&format!(
        "CREATE_REPLICATION_SLOT {slot} TEMPORARY LOGICAL test_decoding NOEXPORT_SNAPSHOT"
    ))
    .await?;
    // Not "skip-empty-xacts": with it, test_decoding writes BEGIN and COMMIT
    // only around row changes, so a DDL-only transaction's message would
    // come alone and be taken for part of the next transaction.
    conn.start_copy_both(&format!(
        "START_REPLICATION SLOT {slot} LOGICAL 0/0 (\"skip-empty-xacts\" '0', \"include-xids\" '1')"
    ))
    .await?;
    tracing::info!(database = %catalog.database(), %slot, "change feed streaming");
    began();
    shared
        .engine
        .feed_board
        .streaming_from(catalog.database(), Some(slot));
    shared.engine.invalidate(&WriteSet::Everything);
    if visible.send(Check::Started { then: ready }).await.is_err() {
        return Err(FeedError::Protocol("the visibility checker stopped".into()));
    }

    let metrics = &shared.stats.feed;
    let database = [catalog.database()];
    let transactions = metrics.transactions.with_label_values(&database);
    let mut lag = Lag::new(
        metrics.lag_bytes.with_label_values(&database),
        metrics.lag_seconds.with_label_values(&database),
    );
    let mut tx = Transaction::default();
    let mut reloads = apply::ReloadLimit::default();
    let mut in_transaction = false;
    let mut flushed = Lsn(0);
    let mut status_due = Instant::now() + STATUS_INTERVAL;
    loop {
        if Instant::now() >= status_due {
            send_status(conn, flushed, false).await?;
            status_due = Instant::now() + STATUS_INTERVAL;
        }
        let keep = replication::XLOG_DATA_HEADER + decode::MAX_LINE_PREFIX + 1;
        let message = conn.read(keep).await?;
        match message.tag {
            replication::COPY_DATA => {}
            backend::ERROR_RESPONSE => return Err(FeedError::from_error_response(&message.body)),
            replication::COPY_DONE => {
                return Err(FeedError::Io("the server ended the stream".into()))
            }
            _ => continue,
        }
        let payload =
            replication::decode(&message.body).map_err(|e| FeedError::Protocol(e.to_string()))?;
        match payload {
            ServerMessage::XLogData {
                start, end, data, ..
            } => {
                lag.at(start, end);
                // Kept only a prefix: a cut line is still read for its names.
                let line = decode::parse_line(&data[..data.len().min(decode::MAX_LINE_PREFIX)]);
                in_transaction = !matches!(line, decode::Line::Commit { .. });
                let Some(committed) = tx.apply(line) else {
                    continue;
                };
                // Transactions that changed no row and no definition (ANALYZE,
                // row locks) are counted out, as before empty ones were shown.
                if committed.ddl || committed.tables.as_ref().is_none_or(|t| !t.is_empty()) {
                    transactions.inc();
                }
                if committed.ddl {
                    // Before any later commit is resolved (see ddl.rs).
                    super::ddl::reload_at_commit(&shared.engine, catalog, committed.xid).await;
                }
                let writes = if committed.ddl {
                    WriteSet::Everything
                } else {
                    apply::write_set(&shared.engine, catalog, &committed, &mut reloads).await
                };
                if !writes.is_empty() {
                    shared.engine.invalidate(&writes);
                    let check = Check::Commit {
                        xid: committed.xid,
                        writes,
                    };
                    if visible.send(check).await.is_err() {
                        return Err(FeedError::Protocol("the visibility checker stopped".into()));
                    }
                }
                // The XLogData of a COMMIT starts at the commit's end: all
                // before it is handled.
                flushed = flushed.max(start);
            }
            ServerMessage::Keepalive {
                end,
                reply_requested,
                ..
            } => {
                lag.at(if in_transaction { flushed } else { end }, end);
                if !in_transaction {
                    // Nothing decoded is pending: everything the server has
                    // sent up to `end` is handled.
                    flushed = flushed.max(end);
                }
                if reply_requested {
                    send_status(conn, flushed, false).await?;
                    status_due = Instant::now() + STATUS_INTERVAL;
                }
            }
        }
    }
}

async fn send_status(
    conn: &mut ReplicationConnection,
    flushed: Lsn,
    reply_requested: bool,
) -> Result<(), FeedError> {
    let status = StandbyStatus {
        written: flushed,
        flushed,
        applied: flushed,
        time: replication::pg_now(),
        reply_requested,
    };
    conn.send(&status.encode()).await
}

/// How far behind the server's WAL the stream is: in bytes, from the last
/// message's position against the server's end of WAL; in seconds, since
/// the stream was last caught up (0 while it is).
struct Lag {
    bytes: IntGauge,
    seconds: Gauge,
    caught_up_at: Instant,
}

impl Lag {
    fn new(bytes: IntGauge, seconds: Gauge) -> Lag {
        bytes.set(0);
        seconds.set(0.0);
        Lag {
            bytes,
            seconds,
            caught_up_at: Instant::now(),
        }
    }

    /// The stream has handled WAL up to `at`; the server's WAL ends at `end`.
    fn at(&mut self, at: Lsn, end: Lsn) {
        let behind = end.0.saturating_sub(at.0);
        self.bytes.set(i64::try_from(behind).unwrap_or(i64::MAX));
        if behind == 0 {
            self.caught_up_at = Instant::now();
            self.seconds.set(0.0);
        } else {
            self.seconds.set(self.caught_up_at.elapsed().as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_zero_when_caught_up_and_grows_while_behind() {
        let mut lag = Lag::new(
            IntGauge::new("b", "b").unwrap(),
            Gauge::new("s", "s").unwrap(),
        );
        lag.at(Lsn(100), Lsn(160));
        assert_eq!(lag.bytes.get(), 60);
        std::thread::sleep(Duration::from_millis(5));
        lag.at(Lsn(120), Lsn(160));
        assert!(lag.seconds.get() >= 0.005, "{}", lag.seconds.get());
        lag.at(Lsn(160), Lsn(160));
        assert_eq!((lag.bytes.get(), lag.seconds.get()), (0, 0.0));
        // A position past the end the server last told (it moves on) is not behind.
        lag.at(Lsn(170), Lsn(160));
        assert_eq!(lag.bytes.get(), 0);
    }
}
