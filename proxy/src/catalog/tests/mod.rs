//! Against a real PostgreSQL (testkit's shared cluster), each test in its
//! own fresh database and with its own role names.

mod closures;
mod functions;
mod hidden_calls;
mod refresh;
mod resolution;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use testkit::Cluster;

use super::{CatalogConfig, Catalogs, DbCatalog, Oid, RelName, Snapshot};

pub(super) fn config() -> CatalogConfig {
    let pg = Cluster::shared();
    let mut config = CatalogConfig::new(
        pg.host(),
        pg.port(),
        pg.superuser(),
        Some(pg.superuser_password().to_string()),
    );
    config.refresh_interval = Duration::from_secs(3600);
    config
}

/// A fresh database `name` set up with `sql`, its catalog and a snapshot.
pub(super) async fn fresh(name: &str, sql: &str) -> (Catalogs, Arc<DbCatalog>, Arc<Snapshot>) {
    let pg = Cluster::shared();
    pg.create_database(name).expect("create database");
    if !sql.is_empty() {
        pg.psql(name, sql).expect("setup sql");
    }
    let catalogs = Catalogs::new(config());
    let catalog = catalogs.get(name).await.expect("catalog");
    let snapshot = catalog.snapshot().await.expect("snapshot");
    (catalogs, catalog, snapshot)
}

pub(super) fn path(entries: &[&str]) -> Vec<String> {
    entries.iter().map(|s| s.to_string()).collect()
}

pub(super) fn rel(schema: Option<&str>, name: &str) -> RelName {
    RelName {
        schema: schema.map(str::to_string),
        name: name.to_string(),
    }
}

/// The oid of `schema.name` (panics if missing: a broken test setup).
pub(super) fn oid(snapshot: &Snapshot, qualified: &str) -> Oid {
    let (schema, name) = qualified.split_once('.').expect("schema.name");
    snapshot
        .resolve(&rel(Some(schema), name), &[], "nobody")
        .unwrap_or_else(|| panic!("{qualified} not in the catalog"))
        .oid
}

/// Sorted qualified names, for readable assertions.
pub(super) fn names(snapshot: &Snapshot, oids: &[Oid]) -> Vec<String> {
    let mut names: Vec<String> = oids
        .iter()
        .map(|&o| match snapshot.relation(o) {
            Some(r) => format!("{}.{}", r.schema, r.name),
            None => format!("<{o}>"),
        })
        .collect();
    names.sort();
    names
}

pub(super) fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}
