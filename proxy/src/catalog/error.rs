//! Why a catalog is not available. Every variant means the same thing to the
//! proxy: don't cache in this database, and treat its writes as touching
//! everything.

use std::time::Duration;

/// A failed connect or load. `Clone` because a failure is remembered for a
/// short backoff and handed to every caller in that window, instead of
/// hammering a failing server with reconnects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog connection to database {database:?} failed: {message}")]
    Connect { database: String, message: String },
    #[error("catalog {what} for database {database:?} timed out after {after:?}")]
    Timeout {
        database: String,
        what: &'static str,
        after: Duration,
    },
    #[error("loading the catalog of database {database:?} failed: {message}")]
    Load { database: String, message: String },
    #[error("pgcache follows at most {limit} databases; {database:?} is not cached")]
    TooManyDatabases { database: String, limit: usize },
    /// A statement that needs no other connection to the database (DROP
    /// DATABASE, ALTER DATABASE ... RENAME, CREATE DATABASE ... TEMPLATE) is
    /// in flight: pgcache keeps its own connections to it closed.
    #[error("database {database:?} is released while a statement that needs it unused runs")]
    Released { database: String },
}

/// A tokio-postgres error with the server's message when there is one
/// (its `Display` alone says only "db error").
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}
