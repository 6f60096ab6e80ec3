//! The catalogs of every database clients have used, by name.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::config::CatalogConfig;
use super::connection::DbCatalog;
use super::error::CatalogError;

/// One catalog per database name, connected lazily on first use. Entries
/// are never removed, so a database keeps its index for the life of the
/// process (relation ids built from it stay unique).
#[derive(Debug)]
pub struct Catalogs {
    config: Arc<CatalogConfig>,
    databases: Arc<Databases>,
    ddl: Arc<DdlState>,
    /// Told of each database the first time it is used (the change feed
    /// starts one stream per database, lazily, like the catalog itself).
    first_use: Mutex<Option<FirstUse>>,
    /// Releases an operator asked for (console RELEASE, admin API), by
    /// database, with a number telling one request from the next.
    held: Arc<Mutex<HashMap<String, (u64, super::Released)>>>,
}

/// The longest an operator's release lasts.
pub const MAX_OPERATOR_RELEASE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Where [`Catalogs::get`] announces a database it has not seen before.
pub type FirstUse = tokio::sync::mpsc::UnboundedSender<Arc<DbCatalog>>;

type Databases = Mutex<HashMap<String, Arc<DbCatalog>>>;

/// Databases followed at most: only databases a client has logged into
/// (the proxy analyses nothing before AuthenticationOk), and entries stay
/// for the life of the process so relation ids stay unique.
const MAX_DATABASES: usize = 1024;

/// DDL that other sessions' plans may not have seen yet.
///
/// A plan is made against a catalog snapshot before its statement runs. If
/// DDL commits in between (a new trigger, a view redefined), the statement
/// runs against the new definitions while its plan names the old ones. So
/// each plan notes the epoch it was made in; while DDL may be committing
/// (`in_flight`), or once the epoch has moved, the plan is not trusted: its
/// writes become "everything" and its result is not stored.
#[derive(Debug, Default)]
struct DdlState {
    epoch: AtomicU64,
    in_flight: AtomicUsize,
}

/// Held while a statement that may commit DDL is in flight. Dropped when the
/// server has answered it (or the session ended): every catalog is marked
/// stale, then the epoch moves, so a plan made after the move always comes
/// from a snapshot loaded after the commit.
#[derive(Debug)]
pub struct DdlCommit {
    databases: Arc<Databases>,
    ddl: Arc<DdlState>,
    /// Whether dropping it marks the catalogs stale.
    armed: bool,
}

impl DdlCommit {
    /// The server rejected the statement before running any of it: nothing
    /// to reload.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for DdlCommit {
    fn drop(&mut self) {
        if self.armed {
            mark_all_stale(&self.databases);
        }
        self.ddl.epoch.fetch_add(1, Ordering::SeqCst);
        self.ddl.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn mark_all_stale(databases: &Databases) {
    // No code panics while holding the lock; a poisoned map is intact.
    let databases = databases.lock().unwrap_or_else(|p| p.into_inner());
    for catalog in databases.values() {
        catalog.mark_stale();
    }
}

impl Catalogs {
    pub fn new(config: CatalogConfig) -> Catalogs {
        Catalogs {
            config: Arc::new(config),
            databases: Arc::new(Mutex::new(HashMap::new())),
            ddl: Arc::default(),
            first_use: Mutex::new(None),
            held: Arc::default(),
        }
    }

    /// From now on, every database used for the first time is sent to `to`.
    pub fn announce_first_use(&self, to: FirstUse) {
        *self.first_use.lock().unwrap_or_else(|p| p.into_inner()) = Some(to);
    }

    pub fn config(&self) -> &CatalogConfig {
        &self.config
    }

    /// The catalog of `database`: connects and loads on first use (later
    /// calls are a map lookup). An error means the proxy bypasses caching
    /// for that database; a failure is remembered for `retry_backoff`, and
    /// calls in that window return it without contacting the server.
    pub async fn get(&self, database: &str) -> Result<Arc<DbCatalog>, CatalogError> {
        let (catalog, new) = {
            let mut databases = self.databases();
            let index = databases.len() as u32;
            if databases.len() >= MAX_DATABASES && !databases.contains_key(database) {
                return Err(CatalogError::TooManyDatabases {
                    database: database.to_string(),
                    limit: MAX_DATABASES,
                });
            }
            let mut new = false;
            let catalog = databases.entry(database.to_string()).or_insert_with(|| {
                new = true;
                Arc::new(DbCatalog::new(
                    index,
                    database.to_string(),
                    Arc::clone(&self.config),
                ))
            });
            (Arc::clone(catalog), new)
        };
        // New, or followed before and given up (the database was gone for
        // a while): the feed is told again.
        if new || catalog.claim_follower() {
            if let Some(to) = &*self.first_use.lock().unwrap_or_else(|p| p.into_inner()) {
                // A closed receiver means no feed runs: nothing to tell.
                let _ = to.send(Arc::clone(&catalog));
            }
        }
        if !catalog.has_snapshot() {
            catalog.snapshot().await?;
        }
        Ok(catalog)
    }

    /// Closes pgcache's connections to `database` until the guard drops
    /// (see [`DbCatalog::release`]); `None` if pgcache never connected to it.
    pub async fn release(&self, database: &str) -> Option<super::Released> {
        let catalog = self.databases().get(database).cloned()?;
        Some(catalog.release().await)
    }

    /// An operator's release: pgcache's connections to `database` close and
    /// stay closed for `hold` (at most [`MAX_OPERATOR_RELEASE`]) or until
    /// [`Catalogs::resume`], so that DROP DATABASE and the like can run
    /// straight on the server. False if pgcache never connected to it.
    pub async fn hold_released(&self, database: &str, hold: std::time::Duration) -> bool {
        let Some(released) = self.release(database).await else {
            return false;
        };
        static REQUESTS: AtomicU64 = AtomicU64::new(0);
        let request = REQUESTS.fetch_add(1, Ordering::Relaxed);
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(database.to_string(), (request, released));
        let (held, database) = (self.held.clone(), database.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(hold.min(MAX_OPERATOR_RELEASE)).await;
            let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
            if held.get(&database).is_some_and(|(r, _)| *r == request) {
                held.remove(&database);
            }
        });
        true
    }

    /// Ends an operator's release of `database`; false if there was none.
    pub fn resume(&self, database: &str) -> bool {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(database)
            .is_some()
    }

    /// Closes the control connections no session used lately (see
    /// [`DbCatalog::close_if_idle`]); returns how many it closed.
    pub fn close_idle(&self, now: std::time::Instant) -> usize {
        let catalogs: Vec<Arc<DbCatalog>> = self.databases().values().cloned().collect();
        catalogs.iter().filter(|c| c.close_if_idle(now)).count()
    }

    /// Every database's catalog reloads before its next snapshot (after DDL
    /// the proxy relays; roles and their settings are shared by all
    /// databases).
    pub fn mark_all_stale(&self) {
        mark_all_stale(&self.databases);
    }

    /// The DDL epoch a plan made now is made in.
    pub fn ddl_epoch(&self) -> u64 {
        self.ddl.epoch.load(Ordering::SeqCst)
    }

    /// Whether no DDL has committed, or may be committing, since a plan
    /// was made in `epoch`.
    pub fn ddl_settled_since(&self, epoch: u64) -> bool {
        self.ddl.in_flight.load(Ordering::SeqCst) == 0 && self.ddl_epoch() == epoch
    }

    /// A statement that may commit DDL is being sent.
    pub fn begin_ddl_commit(&self) -> DdlCommit {
        self.ddl.in_flight.fetch_add(1, Ordering::SeqCst);
        self.ddl.epoch.fetch_add(1, Ordering::SeqCst);
        DdlCommit {
            databases: self.databases.clone(),
            ddl: self.ddl.clone(),
            armed: true,
        }
    }

    fn databases(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<DbCatalog>>> {
        // No code panics while holding the lock; a poisoned map is intact.
        self.databases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
