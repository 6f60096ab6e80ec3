//! DDL at its place in the stream.
//!
//! `pgcache setup`'s event triggers write a transactional logical message
//! (prefix `pgcache`) inside every DDL transaction, so the stream shows it
//! exactly at that transaction's commit. There the stream stops, reloads
//! the catalog, and only then goes on to the commits after it: a table
//! created, renamed or dropped around the proxy is resolved by name as it
//! was at each later commit (a renamed table's new name, not a newcomer
//! under its old one), and the sessions' next plans see the new definitions
//! (a new trigger is in the next relayed write's closure).
//!
//! The invalidation is the one DDL relayed by the proxy gets: everything.
//! The message names the objects, but what depends on them (views, rules,
//! functions inlined into cached plans, triggers of other tables) is not
//! something the old snapshot can be trusted to list completely.

use std::time::Duration;

use super::visibility::{wait_visible, Pending};
use crate::catalog::DbCatalog;
use crate::engine::Engine;

/// Attempts at the reload before giving up on it.
const ATTEMPTS: u32 = 3;
/// The pause after the first failed attempt; doubled after each.
const FIRST_PAUSE: Duration = Duration::from_millis(100);

/// Called at the commit of transaction `xid`, which carried a DDL message:
/// returns once the catalog has been reloaded with that DDL in it, or the
/// reload has failed [`ATTEMPTS`] times (the catalog then stays stale, and
/// the next use retries). The caller invalidates everything after.
pub(super) async fn reload_at_commit(engine: &Engine, catalog: &DbCatalog, xid: u32) {
    // The commit is decoded possibly a moment before snapshots see it; a
    // reload in that moment would miss the DDL it is for. The connection is
    // opened for this only: DDL is rare, and an idle connection would keep
    // the database from being dropped. (A commit held back for long, by a
    // synchronous standby, holds the stream back as long; the lag gate then
    // stops this database's hits.)
    let mut client = None;
    wait_visible(
        &mut client,
        catalog,
        Pending::Decoded(vec![xid]),
        None,
        &mut None,
    )
    .await;
    drop(client);
    // Plans made before the reload name the old definitions: while it runs,
    // and once it is done, they are not trusted (their results are not
    // stored; their writes invalidate everything), as for relayed DDL. Not
    // taken during the wait above: the epoch is shared by every database,
    // and a long wait would stop storing everywhere.
    let epoch = engine.catalogs.begin_ddl_commit();
    let mut pause = FIRST_PAUSE;
    for attempt in 1..=ATTEMPTS {
        match catalog.reload_now().await {
            Ok(_) => break,
            Err(error) if attempt == ATTEMPTS => {
                tracing::warn!(database = %catalog.database(), %error,
                    "cannot reload the catalog after DDL in the change feed; it stays stale");
                catalog.mark_stale();
            }
            Err(error) => {
                tracing::debug!(database = %catalog.database(), %error, attempt,
                    "catalog reload after DDL failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
    // Only this database's catalog was reloaded, so not `drop` (which marks
    // every database's catalog stale): disarming still moves the epoch.
    epoch.disarm();
}
