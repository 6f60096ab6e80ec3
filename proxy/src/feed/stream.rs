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

use tokio::sync::mpsc;

use super::apply;
use super::connection::{FeedError, ReplicationConnection};
use super::decode::{self, Transaction};
use super::gate::DbGate;
use super::visibility::Check;
use crate::catalog::DbCatalog;
use crate::engine::{Source, WriteSet};
use crate::shared::Shared;
use crate::wire::backend;
use crate::wire::replication::{self, Lsn, ServerMessage, StandbyStatus};

/// A status update at most this long after the last, when messages keep
/// coming, so the server can recycle WAL. An idle server asks for one with a
/// keepalive before `wal_sender_timeout` (60 s by default) runs out; the
/// update is sent after a message, never by interrupting a read, since a
/// read cut in the middle of a message would lose the framing.
const STATUS_INTERVAL: Duration = Duration::from_secs(10);

/// How long a release waits for the walsender to exit.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

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
    gate: &DbGate,
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
    let result = tokio::select! {
        result = follow(shared, catalog, gate, visible, &mut conn, &slot, began, ready) => result,
        // (Cutting a read short loses the framing; the connection ends anyway.)
        _ = catalog.until_released() => Err(FeedError::Released),
    };
    if matches!(result, Err(FeedError::Released)) {
        conn.close_and_wait(RELEASE_WAIT).await;
    } else {
        conn.close().await;
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn follow(
    shared: &Shared,
    catalog: &Arc<DbCatalog>,
    gate: &DbGate,
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
    shared
        .engine
        .invalidate_database(catalog.index(), Source::FeedRestart);
    if visible.send(Check::Started { then: ready }).await.is_err() {
        return Err(FeedError::Protocol("the visibility checker stopped".into()));
    }

    let metrics = &shared.stats.feed;
    let database = [catalog.database()];
    let transactions = metrics.transactions.with_label_values(&database);
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
            ServerMessage::XLogData { start, data, .. } => {
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
                    shared.engine.invalidate(&writes, Source::Feed);
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
                gate.clock.handled(start.0);
            }
            ServerMessage::Keepalive {
                end,
                reply_requested,
                ..
            } => {
                // Sent after the output of every record before `end`:
                // every commit ending there has been read and bumped
                // (one being output now ends after it).
                gate.clock.handled(end.0);
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
