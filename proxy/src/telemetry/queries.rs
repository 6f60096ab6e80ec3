//! Per-fingerprint traffic, for the admin API's "top queries".
//!
//! Bounded in count and in bytes, since any client chooses the texts: at most
//! `MAX_FINGERPRINTS` shapes, each fingerprint kept to `MAX_FINGERPRINT_BYTES`
//! (longer ones are cut and marked), and `MAX_TOTAL_BYTES` of fingerprint text
//! in all. Shapes that find the table full are counted under one entry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

const MAX_FINGERPRINTS: usize = 2000;
/// A fingerprint longer than this is stored cut to it, with a marker.
pub const MAX_FINGERPRINT_BYTES: usize = 4 << 10;
/// Fingerprint text held by the whole table.
pub const MAX_TOTAL_BYTES: usize = 2 << 20;
/// The catch-all entry once the table is full.
const OVERFLOW_ID: u64 = u64::MAX;

#[derive(Default, Clone, Serialize)]
pub struct QueryStat {
    pub fingerprint: Arc<str>,
    pub hits: u64,
    pub misses: u64,
    pub bypasses: u64,
    pub last_bypass_reason: Option<&'static str>,
    #[serde(skip)]
    hit_seconds: f64,
    #[serde(skip)]
    miss_seconds: f64,
}

impl QueryStat {
    pub fn mean_hit_seconds(&self) -> f64 {
        self.hit_seconds / self.hits.max(1) as f64
    }

    pub fn mean_miss_seconds(&self) -> f64 {
        self.miss_seconds / self.misses.max(1) as f64
    }
}

/// What happened to one request of a fingerprint.
pub enum Served {
    Hit,
    Miss,
    Bypass(&'static str),
}

#[derive(Default)]
struct Table {
    by_id: HashMap<u64, QueryStat>,
    /// Sum of the stored fingerprints' lengths.
    bytes: usize,
}

#[derive(Default)]
pub struct QueryStats {
    table: Mutex<Table>,
}

impl QueryStats {
    pub fn record(&self, id: u64, fingerprint: &Arc<str>, served: Served, took: Duration) {
        let mut table = self.table.lock();
        let Table { by_id, bytes } = &mut *table;
        let id = if by_id.contains_key(&id) {
            id
        } else {
            let stored = bounded(fingerprint);
            let full = by_id.len() >= MAX_FINGERPRINTS || *bytes + stored.len() > MAX_TOTAL_BYTES;
            if full {
                OVERFLOW_ID
            } else {
                *bytes += stored.len();
                by_id.insert(
                    id,
                    QueryStat {
                        fingerprint: stored,
                        ..QueryStat::default()
                    },
                );
                id
            }
        };
        let stat = by_id.entry(id).or_insert_with(|| QueryStat {
            fingerprint: Arc::from("(other queries)"),
            ..QueryStat::default()
        });
        match served {
            Served::Hit => {
                stat.hits += 1;
                stat.hit_seconds += took.as_secs_f64();
            }
            Served::Miss => {
                stat.misses += 1;
                stat.miss_seconds += took.as_secs_f64();
            }
            Served::Bypass(reason) => {
                stat.bypasses += 1;
                stat.last_bypass_reason = Some(reason);
            }
        }
    }

    /// The `limit` busiest fingerprints, with their ids.
    pub fn top(&self, limit: usize) -> Vec<(u64, QueryStat)> {
        let table = self.table.lock();
        let mut all: Vec<(u64, &QueryStat)> = table.by_id.iter().map(|(k, v)| (*k, v)).collect();
        all.sort_by_key(|(_, s)| std::cmp::Reverse(s.hits + s.misses + s.bypasses));
        all.into_iter()
            .take(limit)
            .map(|(id, s)| (id, s.clone()))
            .collect()
    }

    /// The id of a fingerprint text seen before (as listed, so a cut one
    /// is found by its cut text).
    pub fn id_of(&self, fingerprint: &str) -> Option<u64> {
        let table = self.table.lock();
        table
            .by_id
            .iter()
            .find(|(_, s)| &*s.fingerprint == fingerprint)
            .map(|(id, _)| *id)
    }

    /// Bytes of fingerprint text held.
    pub fn bytes(&self) -> usize {
        self.table.lock().bytes
    }
}

/// The fingerprint as stored: shared when short enough, else a copy of its
/// first `MAX_FINGERPRINT_BYTES` (at a character boundary) and a marker,
/// so the long original can be freed.
fn bounded(fingerprint: &Arc<str>) -> Arc<str> {
    if fingerprint.len() <= MAX_FINGERPRINT_BYTES {
        return fingerprint.clone();
    }
    let marker = format!(" ... (cut: {} bytes)", fingerprint.len());
    let mut end = MAX_FINGERPRINT_BYTES - marker.len();
    while !fingerprint.is_char_boundary(end) {
        end -= 1;
    }
    Arc::from(format!("{}{marker}", &fingerprint[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(stats: &QueryStats, id: u64, text: &str) {
        stats.record(id, &Arc::from(text), Served::Miss, Duration::ZERO);
    }

    #[test]
    fn long_fingerprints_are_cut_and_marked() {
        let stats = QueryStats::default();
        let long = format!("select {}", "é".repeat(600_000));
        record(&stats, 1, &long);
        let (_, stat) = stats.top(1).pop().unwrap();
        assert!(stat.fingerprint.len() <= MAX_FINGERPRINT_BYTES);
        assert!(stat.fingerprint.starts_with("select é"));
        assert!(stat.fingerprint.ends_with("(cut: 1200007 bytes)"));
        assert_eq!(stats.id_of(&stat.fingerprint), Some(1));
        record(&stats, 2, "select $1");
        assert_eq!(
            stats.bytes(),
            stat.fingerprint.len() + "select $1".len(),
            "a cut fingerprint is charged for what is kept"
        );
    }

    #[test]
    fn the_table_holds_a_bounded_number_of_bytes() {
        let stats = QueryStats::default();
        for i in 0..1500u64 {
            record(&stats, i, &format!("select {i} {}", "x".repeat(10_000)));
        }
        assert!(stats.bytes() <= MAX_TOTAL_BYTES, "{} bytes", stats.bytes());
        let all = stats.top(usize::MAX);
        let other = all
            .iter()
            .find(|(id, _)| *id == OVERFLOW_ID)
            .expect("later shapes are counted as other queries");
        assert!(other.1.misses > 900);
        assert_eq!(all.iter().map(|(_, s)| s.misses).sum::<u64>(), 1500);
    }
}
