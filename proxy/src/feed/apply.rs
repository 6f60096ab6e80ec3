//! From a decoded commit to the relations whose entries it makes stale.
//!
//! The stream names every table whose rows changed, including the changes
//! triggers, rules and FK cascades made inside the transaction (they are WAL
//! records like any other). So the closure needed here is smaller than for a
//! statement the proxy relays: a written table's partition ancestors (a read
//! of the parent sees the child's rows) and nothing the trigger flags ask for.
//! Views need nothing: an entry read through a view recorded the view's base
//! tables too. [`Snapshot::write_closure`] gives the ancestors; its
//! `triggered` list is ignored for that reason.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_core::RelationId;

use super::decode::{Committed, TableName};
use crate::catalog::{DbCatalog, RelName, Snapshot};
use crate::engine::{Engine, WriteSet};

/// At most one catalog reload per this long is asked for by unknown names:
/// tables created, written and dropped around the proxy (staging tables)
/// would otherwise reload the catalog at every commit, and the stream
/// waits for each reload.
const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// When unknown names last asked for a catalog reload.
#[derive(Debug, Default)]
pub struct ReloadLimit {
    last: Option<Instant>,
}

impl ReloadLimit {
    fn allow(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) if now.duration_since(last) < RELOAD_AT_MOST_EVERY => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

/// What `committed` changed, as relation ids of `catalog`'s database.
/// Names the snapshot does not know (a table created behind the proxy's back
/// since the last load) make it "everything", and ask for a reload.
pub async fn write_set(
    engine: &Engine,
    catalog: &DbCatalog,
    committed: &Committed,
    reloads: &mut ReloadLimit,
) -> WriteSet {
    let Some(tables) = &committed.tables else {
        return WriteSet::Everything;
    };
    if tables.is_empty() {
        return WriteSet::Nothing;
    }
    let snapshot = match catalog.snapshot().await {
        Ok(snapshot) => snapshot,
        Err(_) => return WriteSet::Everything,
    };
    match resolve(engine, catalog.index(), &snapshot, tables) {
        Some(ids) => WriteSet::Relations(ids),
        None => {
            if reloads.allow(Instant::now()) {
                catalog.mark_stale();
            }
            WriteSet::Everything
        }
    }
}

/// `None` if any name or relation is unknown to `snapshot`.
fn resolve(
    engine: &Engine,
    db_index: u32,
    snapshot: &Arc<Snapshot>,
    tables: &[TableName],
) -> Option<Vec<RelationId>> {
    let mut oids = Vec::with_capacity(tables.len());
    for table in tables {
        let name = RelName {
            schema: Some(table.schema.clone()),
            name: table.name.clone(),
        };
        // A qualified name: neither the search_path nor the role matters.
        oids.push(snapshot.resolve(&name, &[], "")?.oid);
    }
    let closure = snapshot.write_closure(&oids, false);
    if !closure.unknown.is_empty() {
        return None;
    }
    let mut ids: Vec<RelationId> = closure
        .relations
        .iter()
        .map(|&oid| {
            let id = Engine::relation_id(db_index, oid);
            if let Some(rel) = snapshot.relation(oid) {
                engine.tables.note(id, &rel.schema, &rel.name);
            }
            id
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_ask_for_one_reload_a_second() {
        let mut limit = ReloadLimit::default();
        let t0 = Instant::now();
        assert!(limit.allow(t0));
        assert!(!limit.allow(t0 + Duration::from_millis(999)));
        assert!(limit.allow(t0 + Duration::from_secs(1)));
    }
}
