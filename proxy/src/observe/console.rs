//! The admin console: `psql -h … -p 6432 -U admin pgcache`, like PgBouncer's.
//! Commands are answered by the proxy as ordinary result sets, so psql prints
//! them. The login itself is checked by the upstream server (the session logs
//! in to the upstream's own database); only configured admin users get here.

use std::time::Duration;

use bytes::BytesMut;
use serde_json::Value;

use crate::observe::operations;
use crate::shared::Shared;
use crate::wire::result_set::{write_command_complete, write_result_set};
use crate::wire::{ErrorResponse, SqlState};

const HELP: &str = "commands: SHOW STATS | SHOW QUERIES | SHOW TABLES | SHOW POLICY | SHOW FEED | INVALIDATE TABLE name | INVALIDATE ALL | RELOAD | RELEASE database [seconds] | RESUME database";

/// Answers one console command into `out` (without the ReadyForQuery).
pub async fn answer(shared: &Shared, sql: &str, out: &mut BytesMut) {
    let words: Vec<String> = sql
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
    match upper.as_slice() {
        [] => write_command_complete(out, ""),
        ["SHOW", "STATS"] => show_stats(shared, out),
        ["SHOW", "QUERIES"] => show_objects(out, &operations::queries(shared)["queries"]),
        ["SHOW", "TABLES"] => show_objects(out, &operations::tables(shared)["tables"]),
        ["SHOW", "FEED"] => show_objects(out, &operations::feed(shared)["databases"]),
        ["SHOW", "POLICY"] => show_policy(shared, out),
        ["INVALIDATE", "ALL"] => {
            operations::invalidate_all(shared);
            write_command_complete(out, "INVALIDATE");
        }
        ["INVALIDATE", "TABLE", _] => match operations::invalidate_table(shared, &words[2]) {
            Ok(_) => write_command_complete(out, "INVALIDATE"),
            Err(e) => error(out, SqlState("42P01"), &e),
        },
        ["RELEASE", _] | ["RELEASE", _, _] => {
            let seconds = match words.get(2).map(|s| s.parse::<u64>()) {
                None => Ok(operations::DEFAULT_RELEASE.as_secs()),
                Some(Ok(s)) if s > 0 && s <= crate::catalog::MAX_OPERATOR_RELEASE.as_secs() => {
                    Ok(s)
                }
                Some(_) => Err(()),
            };
            match seconds {
                Ok(seconds) => {
                    let database = unquote(&words[1]);
                    match operations::release(shared, &database, Duration::from_secs(seconds)).await
                    {
                        Ok(()) => write_command_complete(out, "RELEASE"),
                        Err(e) => error(out, SqlState("3D000"), &e),
                    }
                }
                Err(()) => error(
                    out,
                    SqlState("22023"),
                    "RELEASE database [seconds]: seconds is a whole number from 1 to 3600",
                ),
            }
        }
        ["RESUME", _] => match operations::resume(shared, &unquote(&words[1])) {
            Ok(()) => write_command_complete(out, "RESUME"),
            Err(e) => error(out, SqlState("3D000"), &e),
        },
        ["RELOAD"] => match crate::maintenance::reload_policy(shared, "admin console") {
            Ok(_) => write_command_complete(out, "RELOAD"),
            Err(errors) => error(
                out,
                SqlState("F0000"),
                &format!(
                    "the policy file was refused; the previous policy stays in force:\n{errors}"
                ),
            ),
        },
        _ => error(
            out,
            SqlState("42601"),
            &format!("unknown pgcache console command: {}", sql.trim()),
        ),
    }
}

/// A database name as typed: `"Quoted"` as written, bare as written (the
/// console, like PgBouncer's, does not fold case).
fn unquote(word: &str) -> String {
    match word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => word.to_string(),
    }
}

fn error(out: &mut BytesMut, code: SqlState, message: &str) {
    out.extend_from_slice(&ErrorResponse::error(code, message).with_hint(HELP).encode());
}

fn show_stats(shared: &Shared, out: &mut BytesMut) {
    let stats = &shared.stats;
    let engine = &shared.engine;
    let core = engine.stats.snapshot();
    let (hits, misses) = (stats.queries("hit"), stats.queries("miss"));
    let ratio = if hits + misses == 0 {
        0.0
    } else {
        hits as f64 / (hits + misses) as f64
    };
    let rows: Vec<(&str, String)> = vec![
        ("hits", hits.to_string()),
        ("misses", misses.to_string()),
        ("bypasses", stats.queries("bypass").to_string()),
        ("hit_ratio", format!("{ratio:.4}")),
        ("entries", engine.store.len().to_string()),
        ("bytes", engine.store.bytes().to_string()),
        ("max_bytes", engine.store.max_bytes().to_string()),
        ("evictions", core.evictions.to_string()),
        ("expirations", core.expirations.to_string()),
        ("invalidations", core.invalidations.to_string()),
        ("invalidations_all", core.invalidations_all.to_string()),
        ("coalesced", core.coalesced.to_string()),
        (
            "client_connections",
            stats.client_connections.get().to_string(),
        ),
        (
            "upstream_connections",
            stats.upstream_connections.get().to_string(),
        ),
    ];
    let rows: Vec<Vec<Option<String>>> = rows
        .into_iter()
        .map(|(k, v)| vec![Some(k.to_string()), Some(v)])
        .collect();
    write_result_set(out, &["stat", "value"], &rows, "SHOW");
}

fn show_policy(shared: &Shared, out: &mut BytesMut) {
    let engine = &shared.engine;
    let policy = engine.policy.load();
    let mut rows = vec![
        (
            "path",
            engine
                .policy
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(none: defaults)".into()),
        ),
        ("hash", policy.hash_hex().to_string()),
        ("enabled", policy.enabled().to_string()),
        ("max_memory", policies::format_size(policy.max_memory())),
        (
            "default_ttl",
            policies::format_duration(policy.default_ttl()),
        ),
        (
            "max_entry_size",
            policies::format_size(policy.max_entry_size()),
        ),
    ];
    let tables: Vec<(String, String)> = policy
        .tables()
        .map(|(name, rule)| {
            (
                format!("table {name}"),
                serde_json::to_string(rule).unwrap_or_default(),
            )
        })
        .collect();
    let mut rows: Vec<Vec<Option<String>>> = rows
        .drain(..)
        .map(|(k, v)| vec![Some(k.to_string()), Some(v)])
        .collect();
    rows.extend(tables.into_iter().map(|(k, v)| vec![Some(k), Some(v)]));
    write_result_set(out, &["setting", "value"], &rows, "SHOW");
}

/// A JSON array of flat objects as a result set, keys as columns.
fn show_objects(out: &mut BytesMut, items: &Value) {
    let items = items.as_array().cloned().unwrap_or_default();
    let mut columns: Vec<String> = Vec::new();
    for item in &items {
        if let Some(obj) = item.as_object() {
            for k in obj.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let rows: Vec<Vec<Option<String>>> = items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|c| match &item[c] {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                })
                .collect()
        })
        .collect();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    write_result_set(out, &columns, &rows, &format!("SHOW {}", rows.len()));
}
