//! One database's catalog: its control connection, the current snapshot,
//! and when to reload it.
//!
//! Staleness is a pair of counters rather than a flag, so that a reload
//! racing with DDL cannot clear a mark it did not see: `mark_stale` bumps
//! `requested`; a load records the value it read *before* its transaction
//! began; the snapshot is current only while the two are equal.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::{Client, NoTls};

use super::config::CatalogConfig;
use super::error::{describe, CatalogError};
use super::load;
use super::snapshot::Snapshot;

const APPLICATION_NAME: &str = "pgcache-catalog";

/// The catalog of one database. Created by [`Catalogs`](super::Catalogs).
pub struct DbCatalog {
    index: u32,
    database: String,
    config: Arc<CatalogConfig>,
    current: ArcSwapOption<Snapshot>,
    /// Bumped by `mark_stale`.
    requested: AtomicU64,
    /// The `requested` value the current snapshot's load started after.
    loaded_for: AtomicU64,
    /// The control connection; holding this lock is being the one reload in
    /// flight (single-flight).
    control: Mutex<Option<Client>>,
    /// The last failed load, served to callers until the backoff passes.
    failure: StdMutex<Option<Failure>>,
    /// When a session last asked for the snapshot, in milliseconds since
    /// `clock_base()`.
    last_used: AtomicU64,
    /// When a name the snapshot did not know last asked for a reload (millis
    /// since `clock_base()`, plus one; 0: never).
    unknown_name_reload: AtomicU64,
    /// Statements in flight that need this database unused by pgcache (see
    /// [`DbCatalog::release`]); while any is, no connection to it opens.
    releases: AtomicUsize,
    /// Told when `releases` changes.
    release_changed: tokio::sync::Notify,
    /// Whether the change feed holds connections to this database (its
    /// stream, its visibility checks); a release waits until it does not.
    feed_connected: tokio::sync::watch::Sender<bool>,
    /// A change feed supervisor follows this database (set when it is
    /// announced, cleared when the supervisor gives up on a database that
    /// stays unreachable).
    followed: std::sync::atomic::AtomicBool,
}

/// How long a release waits for the change feed to let go of the database
/// (its temporary slot must be gone: the server refuses DROP DATABASE at
/// once while a slot on it is active).
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Held while a statement that needs the database unused by pgcache is in
/// flight: dropping it lets the catalog and the feed connect again.
#[derive(Debug)]
pub struct Released {
    catalog: Arc<DbCatalog>,
}

impl Drop for Released {
    fn drop(&mut self) {
        self.catalog.releases.fetch_sub(1, Ordering::SeqCst);
        self.catalog.release_changed.notify_waiters();
    }
}

/// Names a snapshot does not know ask for a reload at most this often: a
/// table created around the proxy is cached within about this long, and a
/// query naming a table that never exists (or a temporary one, which the
/// catalog never lists) costs one reload a second, not one per query.
pub const UNKNOWN_NAME_RELOAD_EVERY: Duration = Duration::from_secs(1);

/// The origin of `last_used` readings.
fn clock_base() -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn millis_since_base(at: Instant) -> u64 {
    at.saturating_duration_since(clock_base()).as_millis() as u64
}

struct Failure {
    at: Instant,
    error: CatalogError,
}

impl DbCatalog {
    pub(super) fn new(index: u32, database: String, config: Arc<CatalogConfig>) -> DbCatalog {
        DbCatalog {
            index,
            database,
            config,
            current: ArcSwapOption::empty(),
            requested: AtomicU64::new(0),
            loaded_for: AtomicU64::new(0),
            control: Mutex::new(None),
            failure: StdMutex::new(None),
            last_used: AtomicU64::new(millis_since_base(Instant::now())),
            unknown_name_reload: AtomicU64::new(0),
            releases: AtomicUsize::new(0),
            release_changed: tokio::sync::Notify::new(),
            feed_connected: tokio::sync::watch::Sender::new(false),
            followed: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// A small number unique per database within this process (0, 1, 2, ...
    /// in order of first use), so the proxy can build relation ids as
    /// `(index << 32) | oid`.
    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// The next [`snapshot`](DbCatalog::snapshot) call must reload (after DDL).
    pub fn mark_stale(&self) {
        self.requested.fetch_add(1, Ordering::SeqCst);
    }

    /// Closes pgcache's own connections to this database and keeps them
    /// closed until the returned guard is dropped: the server refuses DROP
    /// DATABASE, ALTER DATABASE ... RENAME and CREATE DATABASE ... TEMPLATE
    /// while any other connection (or an active replication slot) uses the
    /// database, and those connections are the proxy's, not the client's.
    pub async fn release(self: &Arc<Self>) -> Released {
        self.releases.fetch_add(1, Ordering::SeqCst);
        self.release_changed.notify_waiters();
        let guard = Released {
            catalog: Arc::clone(self),
        };
        // A reload in flight finishes first; the next cannot connect.
        self.control.lock().await.take();
        let mut feed = self.feed_connected.subscribe();
        if tokio::time::timeout(RELEASE_WAIT, feed.wait_for(|connected| !connected))
            .await
            .is_err()
        {
            tracing::warn!(database = %self.database, "the change feed did not let go of the database in time");
        }
        guard
    }

    /// Whether a release is in force.
    pub fn is_released(&self) -> bool {
        self.releases.load(Ordering::SeqCst) > 0
    }

    /// Returns once a release is in force (at once if one is).
    pub async fn until_released(&self) {
        loop {
            let changed = self.release_changed.notified();
            if self.is_released() {
                return;
            }
            changed.await;
        }
    }

    /// Returns once no release is in force (at once if none is).
    pub async fn until_not_released(&self) {
        loop {
            let changed = self.release_changed.notified();
            if !self.is_released() {
                return;
            }
            changed.await;
        }
    }

    /// True once for a database whose follower gave up: the caller
    /// announces it to the feed again.
    pub fn claim_follower(&self) -> bool {
        self.followed
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// The feed's supervisor gives up on this database (it stayed
    /// unreachable); the next session that uses it starts another.
    pub fn follower_gone(&self) {
        self.followed.store(false, Ordering::SeqCst);
    }

    /// The change feed says whether it holds connections to the database.
    pub fn set_feed_connected(&self, connected: bool) {
        self.feed_connected.send_replace(connected);
    }

    /// A query named a relation the snapshot does not know (created around
    /// the proxy since the last load?): reload, at most once every
    /// [`UNKNOWN_NAME_RELOAD_EVERY`]. Returns whether a reload was asked for.
    pub fn unknown_name(&self, now: Instant) -> bool {
        let at = millis_since_base(now) + 1;
        let last = self.unknown_name_reload.load(Ordering::Relaxed);
        if last != 0 && u128::from(at - last.min(at)) < UNKNOWN_NAME_RELOAD_EVERY.as_millis() {
            return false;
        }
        if self
            .unknown_name_reload
            .compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            // Another session asked at this very moment.
            return false;
        }
        self.mark_stale();
        true
    }

    /// Closes the control connection if no session asked for the snapshot
    /// for `idle_close` (it is opened again on the next reload). Not while a
    /// reload holds it. Returns whether it closed one.
    pub fn close_if_idle(&self, now: Instant) -> bool {
        let idle = millis_since_base(now).saturating_sub(self.last_used.load(Ordering::Relaxed));
        if u128::from(idle) < self.config.idle_close.as_millis() {
            return false;
        }
        match self.control.try_lock() {
            Ok(mut control) => control.take().is_some(),
            Err(_) => false,
        }
    }

    /// The error of the last load if it failed (for logs and the admin API).
    pub fn last_error(&self) -> Option<CatalogError> {
        self.failure_slot().as_ref().map(|f| f.error.clone())
    }

    /// Whether a load has ever succeeded.
    pub(super) fn has_snapshot(&self) -> bool {
        self.current.load().is_some()
    }

    /// The current snapshot. Reloads first when marked stale (every caller
    /// waits for that one reload) or older than `refresh_interval` (one
    /// caller reloads; callers arriving meanwhile get the old snapshot, which
    /// no DDL relayed by the proxy has invalidated).
    ///
    /// A failed reload is an error, not the old snapshot: after DDL the old
    /// one may name relations wrongly. The error is repeated without
    /// contacting the server until `retry_backoff` has passed.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, CatalogError> {
        self.snapshot_at(Instant::now()).await
    }

    /// [`DbCatalog::snapshot`], with the caller's clock reading for the age
    /// check: sessions read the clock once per request.
    pub async fn snapshot_at(&self, now: Instant) -> Result<Arc<Snapshot>, CatalogError> {
        self.last_used
            .fetch_max(millis_since_base(now), Ordering::Relaxed);
        let requested = self.requested.load(Ordering::SeqCst);
        if let Some(snapshot) = self.current.load_full() {
            if self.loaded_for.load(Ordering::SeqCst) == requested {
                let age = now.saturating_duration_since(snapshot.loaded_at);
                if age < self.config.refresh_interval {
                    return Ok(snapshot);
                }
                return match self.control.try_lock() {
                    Ok(control) => self.refresh(control).await,
                    Err(_) => Ok(snapshot),
                };
            }
        }
        let control = self.control.lock().await;
        self.refresh(control).await
    }

    /// Reloads now, whatever the age of the snapshot and even within the
    /// backoff of a failed load: the change feed has just decoded DDL and
    /// must resolve the commits after it against the catalog it made.
    pub async fn reload_now(&self) -> Result<Arc<Snapshot>, CatalogError> {
        self.mark_stale();
        let control = self.control.lock().await;
        *self.failure_slot() = None;
        self.refresh(control).await
    }

    /// Reloads unless another caller did while this one waited for the lock,
    /// or a recent failure is still in its backoff.
    async fn refresh(
        &self,
        mut control: MutexGuard<'_, Option<Client>>,
    ) -> Result<Arc<Snapshot>, CatalogError> {
        let requested = self.requested.load(Ordering::SeqCst);
        if let Some(snapshot) = self.current.load_full() {
            if self.loaded_for.load(Ordering::SeqCst) == requested
                && snapshot.loaded_at.elapsed() < self.config.refresh_interval
            {
                return Ok(snapshot);
            }
        }
        if let Some(failure) = self.failure_slot().as_ref() {
            if failure.at.elapsed() < self.config.retry_backoff {
                return Err(failure.error.clone());
            }
        }
        match self.load(&mut control).await {
            Ok(snapshot) => {
                let snapshot = Arc::new(snapshot);
                tracing::debug!(
                    database = %self.database,
                    relations = snapshot.relation_count(),
                    took_ms = snapshot.load_duration().as_secs_f64() * 1000.0,
                    "catalog loaded"
                );
                self.current.store(Some(Arc::clone(&snapshot)));
                self.loaded_for.store(requested, Ordering::SeqCst);
                *self.failure_slot() = None;
                Ok(snapshot)
            }
            Err(error) => {
                // The connection may be mid-query or in a failed
                // transaction: start over with a new one next time.
                *control = None;
                tracing::warn!(database = %self.database, %error, "catalog load failed");
                *self.failure_slot() = Some(Failure {
                    at: Instant::now(),
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }

    async fn load(&self, control: &mut Option<Client>) -> Result<Snapshot, CatalogError> {
        let client = match control.take() {
            Some(client) if !client.is_closed() => control.insert(client),
            _ => control.insert(self.connect(APPLICATION_NAME).await?),
        };
        let timeout = self.config.load_timeout;
        match tokio::time::timeout(timeout, load::load(client)).await {
            Ok(Ok(snapshot)) => Ok(snapshot),
            Ok(Err(message)) => Err(CatalogError::Load {
                database: self.database.clone(),
                message,
            }),
            Err(_) => Err(CatalogError::Timeout {
                database: self.database.clone(),
                what: "load",
                after: timeout,
            }),
        }
    }

    /// Another connection to this database as the service account, with the
    /// control connection's settings (the change feed asks the server when a
    /// commit has become visible over one).
    pub async fn open_connection(&self, application_name: &str) -> Result<Client, CatalogError> {
        self.connect(application_name).await
    }

    async fn connect(&self, application_name: &str) -> Result<Client, CatalogError> {
        if self.is_released() {
            return Err(CatalogError::Released {
                database: self.database.clone(),
            });
        }
        let config = &self.config;
        let mut pg = tokio_postgres::Config::new();
        pg.host(&config.host)
            .port(config.port)
            .user(&config.user)
            .dbname(&self.database)
            .application_name(application_name)
            .connect_timeout(config.connect_timeout);
        if let Some(password) = &config.password {
            pg.password(password);
        }
        // tokio-postgres's own timeout covers the TCP connect only; this one
        // also bounds a server that accepts and then never answers.
        let database = self.database.clone();
        let connecting = async {
            match &config.tls {
                None => open(&pg, NoTls, database).await,
                Some(tls) => {
                    pg.ssl_mode(if tls.required {
                        tokio_postgres::config::SslMode::Require
                    } else {
                        tokio_postgres::config::SslMode::Prefer
                    });
                    let connector =
                        tokio_postgres_rustls::MakeRustlsConnect::new((*tls.config).clone());
                    open(&pg, connector, database).await
                }
            }
        };
        let connected = tokio::time::timeout(config.connect_timeout, connecting).await;
        let client = match connected {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                return Err(CatalogError::Connect {
                    database: self.database.clone(),
                    message: describe(&e),
                })
            }
            Err(_) => {
                return Err(CatalogError::Timeout {
                    database: self.database.clone(),
                    what: "connect",
                    after: config.connect_timeout,
                })
            }
        };
        Ok(client)
    }

    fn failure_slot(&self) -> std::sync::MutexGuard<'_, Option<Failure>> {
        // Nothing panics while holding it; if something did, the data (an
        // Option) is still consistent.
        self.failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for DbCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbCatalog")
            .field("index", &self.index)
            .field("database", &self.database)
            .field("loaded", &self.has_snapshot())
            .finish_non_exhaustive()
    }
}

/// Connects with `tls` and runs the connection in the background.
async fn open<T>(
    pg: &tokio_postgres::Config,
    tls: T,
    database: String,
) -> Result<Client, tokio_postgres::Error>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = pg.connect(tls).await?;
    tokio::spawn(async move {
        // Ends when the Client is dropped, or when the server goes away;
        // the next load then notices `is_closed` and reconnects.
        if let Err(e) = connection.await {
            tracing::debug!(%database, error = %describe(&e), "catalog connection closed");
        }
    });
    Ok(client)
}
