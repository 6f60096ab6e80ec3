//! The change feed: every commit the server makes, whoever made it, turned
//! into invalidations, from one logical replication stream per database.
//!
//! Writes relayed by the proxy are still invalidated synchronously by the
//! sessions (read-your-writes on one proxy stays exact); the feed adds the
//! writes made around the proxy: other apps, other proxies, psql on the server.
//!
//! A database's stream starts the first time its catalog is used, and is
//! restarted with backoff whenever it breaks. Each (re)start invalidates
//! everything once the new slot streams: commits made while no stream was
//! listening are never reported.
//!
//! Files: `connection.rs` the replication connection and its login;
//! `decode.rs` test_decoding's lines and per-transaction table sets;
//! `stream.rs` one stream's life; `apply.rs` names to relation ids;
//! `visibility.rs` the second bump once a commit is visible; `ddl.rs` the
//! catalog reload at a DDL message from `pgcache setup`'s event triggers.

mod apply;
pub mod board;
pub mod connection;
mod ddl;
mod decode;
pub mod gate;
mod lag;
pub mod metrics;
pub mod mode;
mod stream;
mod visibility;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::catalog::DbCatalog;
use crate::engine::Source;
use crate::shared::Shared;

pub use board::{DbFeed, FeedBoard};
pub use connection::FeedError;
pub use gate::{DbGate, FeedGate};
pub use metrics::FeedMetrics;
pub use mode::ChangeFeedMode;

/// First wait after a stream breaks; doubled on each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Catalog loads failed this many times in a row (about five minutes at the
/// longest backoff): the supervisor stops.
const GIVE_UP_AFTER: u32 = 30;
/// A stream that lasted this long counts as healthy: the backoff resets.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// Starts the feed: from now on each database whose catalog is used for
/// the first time gets its stream. The tasks end with the runtime.
pub fn start(shared: Arc<Shared>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    shared.engine.catalogs.announce_first_use(tx);
    tokio::spawn(async move {
        while let Some(catalog) = rx.recv().await {
            tokio::spawn(supervise(shared.clone(), catalog));
        }
    });
}

/// Which attempt at a stream is current, and whether it began streaming.
/// The checker declares a stream ready later, from its own task: under this
/// lock, a stream that has ended meanwhile can no longer be declared up.
#[derive(Default)]
struct Attempt {
    number: u64,
    began: bool,
}

/// Keeps one database's stream running.
async fn supervise(shared: Arc<Shared>, catalog: Arc<DbCatalog>) {
    let database = catalog.database().to_string();
    let up = shared.stats.feed.up.with_label_values(&[&database]);
    shared
        .stats
        .feed
        .transactions
        .with_label_values(&[&database]);
    shared.engine.feed_board.followed(&database);
    let gate = shared.engine.feed_gate.database(&database);
    let gating = shared.stats.feed.gating.with_label_values(&[&database]);
    gating.set(i64::from(
        shared.config.change_feed == ChangeFeedMode::Required || gate.has_streamed(),
    ));
    let visible = visibility::spawn(shared.clone(), catalog.clone(), gate.clone());
    let attempt = Arc::new(parking_lot::Mutex::new(Attempt::default()));
    let mut backoff = FIRST_BACKOFF;
    let mut catalog_failures = 0;
    loop {
        if catalog.is_released() {
            // A statement that needs the database unused is being relayed:
            // the stream is closed; close the checks' connection too, and
            // stay away until it is done.
            let (done, closed) = tokio::sync::oneshot::channel();
            if visible
                .send(visibility::Check::Release { done })
                .await
                .is_ok()
            {
                let _ = closed.await;
            }
            catalog.set_feed_connected(false);
            tracing::info!(%database, "change feed released the database");
            catalog.until_not_released().await;
            backoff = FIRST_BACKOFF;
        }
        catalog.set_feed_connected(true);
        let started = tokio::time::Instant::now();
        let number = attempt.lock().number;
        let began = || {
            attempt.lock().began = true;
            // Everything before this attempt is bumped once the stream
            // starts; its positions start over.
            gate.clock.restart(started.into_std());
        };
        // Once what committed just before the stream began is visible and
        // bumped: hits may resume.
        let ready: Box<dyn FnOnce() + Send> = {
            let (attempt, up, gate, gating) =
                (attempt.clone(), up.clone(), gate.clone(), gating.clone());
            Box::new(move || {
                if attempt.lock().number == number {
                    up.set(1);
                    gating.set(1);
                    gate.set_streaming(true);
                }
            })
        };
        let streaming = async {
            // A database whose catalog cannot load (it does not exist, no
            // access) gets no stream; the catalog's own error says why.
            catalog
                .snapshot()
                .await
                .map_err(|e| FeedError::Catalog(e.to_string()))?;
            stream::run(&shared, &catalog, &gate, &visible, began, ready).await
        };
        let mut shutdown = shared.shutdown.subscribe();
        let result = tokio::select! {
            result = streaming => result,
            // Dropping the stream closes its connection: the server drops
            // the temporary slot.
            _ = shutdown.wait_for(|&stop| stop) => {
                let mut attempt = attempt.lock();
                attempt.number += 1;
                gate.set_streaming(false);
                up.set(0);
                return;
            }
        };
        let (was_up, had_begun) = {
            let mut attempt = attempt.lock();
            attempt.number += 1;
            let was_up = up.get() == 1;
            gate.set_streaming(false);
            up.set(0);
            (was_up, std::mem::take(&mut attempt.began))
        };
        if had_begun {
            // Entries read after the last decoded commit may miss what the
            // server commits until the next stream starts: drop this
            // database's now.
            shared
                .engine
                .invalidate_database(catalog.index(), Source::FeedRestart);
        }
        if started.elapsed() >= HEALTHY_AFTER {
            backoff = FIRST_BACKOFF;
        }
        let on_purpose = matches!(result, Err(FeedError::Released));
        catalog_failures = match &result {
            Err(FeedError::Catalog(_)) => catalog_failures + 1,
            _ => 0,
        };
        if catalog_failures >= GIVE_UP_AFTER {
            // The database is gone (dropped around the proxy) or closed to
            // the service account: stop knocking every 10 s. A session that
            // uses it again starts another supervisor.
            tracing::info!(%database, "change feed stops following a database whose catalog cannot load");
            shared
                .engine
                .feed_board
                .failed(&database, "not followed: its catalog cannot load".into());
            catalog.set_feed_connected(false);
            catalog.follower_gone();
            return;
        }
        if let (Err(error), false) = (&result, on_purpose) {
            shared
                .engine
                .feed_board
                .failed(&database, error.to_string());
            shared
                .stats
                .feed
                .restarts
                .with_label_values(&[&database, error.reason()])
                .inc();
            if was_up {
                tracing::warn!(%database, %error, "change feed lost; reconnecting");
            } else if backoff == FIRST_BACKOFF {
                let hint = error.hint(&shared.config.upstream.user).unwrap_or_default();
                tracing::warn!(%database, %error, %hint, "change feed cannot start; retrying with backoff");
            } else {
                // Said once per run of failures: no log line every 10 s.
                tracing::debug!(%database, %error, retry_in = ?backoff, "change feed cannot start");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = catalog.until_released() => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
