//! Per-fingerprint traffic, for the admin API's "top queries". Bounded: beyond
//! `MAX_FINGERPRINTS` distinct shapes, new ones are counted under one entry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

const MAX_FINGERPRINTS: usize = 2000;
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
pub struct QueryStats {
    by_id: Mutex<HashMap<u64, QueryStat>>,
}

impl QueryStats {
    pub fn record(&self, id: u64, fingerprint: &Arc<str>, served: Served, took: Duration) {
        let mut map = self.by_id.lock();
        let id = if map.len() >= MAX_FINGERPRINTS && !map.contains_key(&id) {
            OVERFLOW_ID
        } else {
            id
        };
        let stat = map.entry(id).or_insert_with(|| QueryStat {
            fingerprint: if id == OVERFLOW_ID {
                Arc::from("(other queries)")
            } else {
                fingerprint.clone()
            },
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
        let map = self.by_id.lock();
        let mut all: Vec<(u64, QueryStat)> = map.iter().map(|(k, v)| (*k, v.clone())).collect();
        all.sort_by_key(|(_, s)| std::cmp::Reverse(s.hits + s.misses + s.bypasses));
        all.truncate(limit);
        all
    }

    /// The id of a fingerprint text seen before.
    pub fn id_of(&self, fingerprint: &str) -> Option<u64> {
        let map = self.by_id.lock();
        map.iter()
            .find(|(_, s)| &*s.fingerprint == fingerprint)
            .map(|(id, _)| *id)
    }
}
