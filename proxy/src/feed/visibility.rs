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

use crate::catalog::DbCatalog;
use crate::engine::WriteSet;
use crate::server::Shared;

/// How many decoded commits may wait for their check; beyond, the stream
/// waits (bounded memory, and the walsender simply holds back).
const QUEUE: usize = 4096;

/// After this many failed checks in a row, a batch is bumped without an
/// answer: the window is microseconds wide, and a bump never hurts.
const MAX_FAILED_CHECKS: u32 = 3;

const APPLICATION_NAME: &str = "pgcache-feed-visibility";

/// A commit waiting for its second bump.
pub struct Decoded {
    pub xid: u32,
    pub writes: WriteSet,
}

/// Starts the checker of one database; commits are sent to the returned
/// sender. The task ends when the sender is dropped.
pub fn spawn(shared: Arc<Shared>, catalog: Arc<DbCatalog>) -> mpsc::Sender<Decoded> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(shared, catalog, rx));
    tx
}

async fn run(shared: Arc<Shared>, catalog: Arc<DbCatalog>, mut rx: mpsc::Receiver<Decoded>) {
    let mut client: Option<Client> = None;
    while let Some(first) = rx.recv().await {
        let mut xids = vec![first.xid];
        let mut writes = first.writes;
        while let Ok(more) = rx.try_recv() {
            xids.push(more.xid);
            writes.add(&more.writes);
        }
        let mut failures = 0;
        let mut pause = Duration::from_millis(1);
        while !xids.is_empty() {
            match still_running(&mut client, &catalog, &xids).await {
                Ok(running) => {
                    failures = 0;
                    xids = running;
                }
                Err(error) => {
                    client = None;
                    failures += 1;
                    if failures >= MAX_FAILED_CHECKS {
                        tracing::warn!(database = %catalog.database(), %error,
                            "cannot ask the server whether commits are visible; invalidating without its answer");
                        break;
                    }
                }
            }
            if !xids.is_empty() {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
        shared.engine.invalidate(&writes);
    }
}

/// Which of `xids` are still in progress on the server.
async fn still_running(
    client: &mut Option<Client>,
    catalog: &DbCatalog,
    xids: &[u32],
) -> Result<Vec<u32>, String> {
    let client = match client.take() {
        Some(c) if !c.is_closed() => client.insert(c),
        _ => client.insert(
            catalog
                .open_connection(APPLICATION_NAME)
                .await
                .map_err(|e| e.to_string())?,
        ),
    };
    // The stream gives 32-bit xids; txid_status wants them with their epoch.
    // Every decoded xid is older than the next one to be assigned.
    let next: i64 = client
        .query_one("SELECT txid_snapshot_xmax(txid_current_snapshot())", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    let full: Vec<i64> = xids.iter().map(|&x| with_epoch(x, next)).collect();
    let rows = client
        .query(
            "SELECT x FROM unnest($1::int8[]) AS x WHERE txid_status(x) = 'in progress'",
            &[&full],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows.iter().map(|row| row.get::<_, i64>(0) as u32).collect())
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
