//! What operators can ask of a running proxy, whichever way they ask: the
//! admin HTTP API (`admin.rs`) and the admin console (`console.rs`) both
//! call these, and neither calls the other.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::engine::Source;
use crate::shared::Shared;

/// Query shapes listed, busiest first.
const TOP_QUERIES: usize = 50;

/// The busiest query shapes with their traffic and what they hold cached.
pub fn queries(shared: &Shared) -> Value {
    let usage = shared.engine.store.entries_by_tag();
    let rows: Vec<Value> = shared
        .stats
        .by_fingerprint
        .top(TOP_QUERIES)
        .into_iter()
        .map(|(id, s)| {
            let cached = usage.get(&id);
            json!({
                "fingerprint": &*s.fingerprint,
                "hits": s.hits,
                "misses": s.misses,
                "bypasses": s.bypasses,
                "bypass_reason": s.last_bypass_reason,
                "mean_hit_ms": s.mean_hit_seconds() * 1e3,
                "mean_miss_ms": s.mean_miss_seconds() * 1e3,
                "cached_entries": cached.map_or(0, |u| u.entries),
                "cached_bytes": cached.map_or(0, |u| u.bytes),
            })
        })
        .collect();
    json!({ "queries": rows })
}

/// Every table seen, with what is cached from it and its policy.
pub fn tables(shared: &Shared) -> Value {
    let engine = &shared.engine;
    let mut entries: HashMap<u64, (u64, u64)> = HashMap::new();
    engine.store.for_each_entry(|_, entry| {
        for (id, _) in entry.generations.relations() {
            let e = entries.entry(id).or_default();
            e.0 += 1;
            e.1 += entry.size() as u64;
        }
    });
    let invalidations = invalidations_by_table(shared);
    let policy = engine.policy.load();
    let mut rows: Vec<Value> = engine
        .tables
        .all()
        .into_iter()
        .map(|(id, name)| {
            let (schema, table) = name.split_once('.').unwrap_or(("public", &name));
            let rule = policy.table(schema, table);
            let (count, bytes) = entries.get(&id).copied().unwrap_or_default();
            json!({
                "table": &*name,
                "database_index": id >> 32,
                "entries": count,
                "bytes": bytes,
                "invalidations": invalidations.get(&*name).map_or(0, |(total, _)| *total),
                "invalidations_by_source": invalidations.get(&*name).map(|(_, by)| by.clone()).unwrap_or_default(),
                "policy": {
                    "cache": rule.cache,
                    "ttl": policies::format_duration(rule.ttl),
                    "max_entry_size": policies::format_size(rule.max_entry_size),
                    "source": format!("{:?}", rule.source).to_lowercase(),
                },
            })
        })
        .collect();
    rows.sort_by(|a, b| a["table"].as_str().cmp(&b["table"].as_str()));
    json!({ "tables": rows })
}

/// How long a release lasts when the operator does not say.
pub const DEFAULT_RELEASE: Duration = Duration::from_secs(60);

/// Closes pgcache's connections to `database` (its catalog's, its change
/// feed's) for `hold`, so DROP DATABASE and the like can run straight on
/// the server; returns once they are closed.
pub async fn release(shared: &Shared, database: &str, hold: Duration) -> Result<(), String> {
    if shared.engine.catalogs.hold_released(database, hold).await {
        tracing::info!(%database, ?hold, "released by an operator");
        Ok(())
    } else {
        Err(format!(
            "pgcache holds no connection to database {database:?}: nothing to release"
        ))
    }
}

/// Ends an operator's release early.
pub fn resume(shared: &Shared, database: &str) -> Result<(), String> {
    if shared.engine.catalogs.resume(database) {
        Ok(())
    } else {
        Err(format!("database {database:?} is not released"))
    }
}

/// Each table's invalidations: the total, and by source (from the metric,
/// without creating series for tables never invalidated).
fn invalidations_by_table(
    shared: &Shared,
) -> HashMap<String, (u64, serde_json::Map<String, Value>)> {
    use prometheus::core::Collector;
    let mut by_table: HashMap<String, (u64, serde_json::Map<String, Value>)> = HashMap::new();
    for family in shared.stats.invalidations.collect() {
        for metric in family.get_metric() {
            let label = |name: &str| {
                metric
                    .get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_string())
                    .unwrap_or_default()
            };
            let count = metric.get_counter().get_value() as u64;
            let entry = by_table.entry(label("table")).or_default();
            entry.0 += count;
            entry.1.insert(label("source"), json!(count));
        }
    }
    by_table
}

/// Invalidates everything and frees the memory at once.
pub fn invalidate_all(shared: &Shared) {
    shared
        .engine
        .invalidate(&crate::engine::WriteSet::Everything, Source::Operator);
    shared.engine.store.clear();
}

/// Invalidates a table ("schema.name"; no schema means public) in every
/// database where it was seen. Returns its name and how many relations matched.
pub fn invalidate_table(shared: &Shared, table: &str) -> Result<(String, usize), String> {
    let q = policies::QualifiedName::parse(table)
        .map_err(|e| format!("bad table name {table:?}: {e}"))?;
    let name = format!("{}.{}", q.schema, q.name);
    let ids = shared.engine.tables.find(&name);
    if ids.is_empty() {
        return Err(format!("no cached query has read {name}"));
    }
    let n = ids.len();
    shared
        .engine
        .invalidate(&crate::engine::WriteSet::Relations(ids), Source::Operator);
    Ok((name, n))
}

/// The change feed of each database followed: whether it streams, from
/// which slot, how far behind, and why it last failed.
pub fn feed(shared: &Shared) -> Value {
    let metrics = &shared.stats.feed;
    let databases: Vec<Value> = shared
        .engine
        .feed_board
        .databases()
        .into_iter()
        .map(|(database, feed)| {
            let db = [database.as_str()];
            let restarts: u64 = crate::feed::connection::FeedError::REASONS
                .iter()
                .map(|&reason| {
                    metrics
                        .restarts
                        .with_label_values(&[&database, reason])
                        .get()
                })
                .sum();
            json!({
                "database": database,
                "up": metrics.up.with_label_values(&db).get() == 1,
                "slot": feed.slot,
                "transactions": metrics.transactions.with_label_values(&db).get(),
                "restarts": restarts,
                "lag_bytes": metrics.lag_bytes.with_label_values(&db).get(),
                "lag_seconds": metrics.lag_seconds.with_label_values(&db).get(),
                "last_error": feed.last_error,
            })
        })
        .collect();
    json!({ "mode": shared.config.change_feed.as_str(), "databases": databases })
}
