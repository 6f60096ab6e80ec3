//! What the change feed's tests share: a proxy with the feed on, waiting for
//! a stream, reading until fresh or cached, ending a walsender.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use pgcache::feed::ChangeFeedMode;
use pgcache::ProxyHandle;
use testkit::Cluster;
use tokio_postgres::Client;

use super::{proxy_with, value};

/// How long a direct write may take to show through the proxy.
pub const BOUND: Duration = Duration::from_secs(2);

/// A proxy with `--change-feed auto` (and `proxy_with`'s relaxed max_lag).
pub async fn proxy_with_feed(cluster: &Cluster) -> ProxyHandle {
    proxy_with(cluster, |c| c.change_feed = ChangeFeedMode::Auto).await
}

/// Waits until `db`'s feed streams (it starts with the database's first query).
pub async fn wait_for_feed(proxy: &ProxyHandle, db: &str) {
    let up = proxy.shared.stats.feed.up.with_label_values(&[db]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.get() != 1 {
        assert!(Instant::now() < deadline, "the feed of {db} never streamed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `sql` through the proxy until it answers `expected`, within [`BOUND`].
pub async fn fresh_within_bound(client: &Client, sql: &str, expected: &str) {
    let deadline = Instant::now() + BOUND;
    loop {
        let got = value(client, sql).await;
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: still {got:?} after {BOUND:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `sql` twice through the proxy until the second read is a hit: the
/// value is cached, so only an invalidation can make it fresh. A few tries:
/// a stream start or a DDL message may bump everything once more between
/// two reads.
pub async fn cached(proxy: &ProxyHandle, client: &Client, sql: &str, expected: &str) {
    for _ in 0..10 {
        assert_eq!(value(client, sql).await, expected, "{sql}");
        let hits = proxy.shared.stats.queries("hit");
        assert_eq!(value(client, sql).await, expected, "{sql}");
        if proxy.shared.stats.queries("hit") > hits {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{sql} was not served from the cache");
}

/// Ends the walsender of this process's feed slot on `db` (as an
/// administrator or `wal_sender_timeout` would); returns how many it ended.
pub async fn terminate_walsender(direct: &Client, db: &str) -> String {
    value(
        direct,
        &format!(
            "SELECT count(pg_terminate_backend(active_pid))::text FROM pg_replication_slots \
             WHERE slot_name LIKE 'pgcache\\_{}\\_%' AND database = '{db}'",
            std::process::id()
        ),
    )
    .await
}
