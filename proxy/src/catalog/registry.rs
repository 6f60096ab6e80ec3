//! The catalogs of every database clients have used, by name.

use std::collections::HashMap;
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
    databases: Mutex<HashMap<String, Arc<DbCatalog>>>,
}

impl Catalogs {
    pub fn new(config: CatalogConfig) -> Catalogs {
        Catalogs {
            config: Arc::new(config),
            databases: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &CatalogConfig {
        &self.config
    }

    /// The catalog of `database`: connects and loads on first use (later
    /// calls are a map lookup). An error means the proxy bypasses caching
    /// for that database; a failure is remembered for `retry_backoff`, and
    /// calls in that window return it without contacting the server.
    pub async fn get(&self, database: &str) -> Result<Arc<DbCatalog>, CatalogError> {
        let catalog = {
            let mut databases = self.databases();
            let index = databases.len() as u32;
            Arc::clone(databases.entry(database.to_string()).or_insert_with(|| {
                Arc::new(DbCatalog::new(
                    index,
                    database.to_string(),
                    Arc::clone(&self.config),
                ))
            }))
        };
        if !catalog.has_snapshot() {
            catalog.snapshot().await?;
        }
        Ok(catalog)
    }

    /// Every database's catalog reloads before its next snapshot (after DDL
    /// the proxy relays; roles and their settings are shared by all
    /// databases).
    pub fn mark_all_stale(&self) {
        for catalog in self.databases().values() {
            catalog.mark_stale();
        }
    }

    fn databases(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<DbCatalog>>> {
        // No code panics while holding the lock; a poisoned map is intact.
        self.databases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
