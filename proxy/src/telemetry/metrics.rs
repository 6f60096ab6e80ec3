//! The proxy's Prometheus metrics. Names are an interface: dashboards and alert
//! rules in `dashboards/` depend on them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use prometheus::{
    GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

use super::queries::{QueryStats, Served};
use crate::bypass::Outcome;
use crate::engine::Engine;

/// A gauge that counts something while a guard is alive.
#[derive(Clone)]
pub struct Gauge(IntGauge);

impl Gauge {
    pub fn guard(&self) -> GaugeGuard {
        self.0.inc();
        GaugeGuard(self.0.clone())
    }

    pub fn get(&self) -> i64 {
        self.0.get()
    }
}

pub struct GaugeGuard(IntGauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Query latency buckets: 10µs to 10s.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Indexes of `Metrics::by_result`.
const HIT: usize = 0;
const MISS: usize = 1;
const BYPASS: usize = 2;

pub struct Metrics {
    pub registry: Registry,
    pub client_connections: Gauge,
    pub upstream_connections: Gauge,
    pub upstream_errors: IntCounter,
    pub refused_connections: IntCounter,
    /// Connections ended by a limit, by limit.
    limits: IntCounterVec,
    queries: IntCounterVec,
    bypasses: IntCounterVec,
    /// The children of `queries` and `durations` for hit, miss and bypass,
    /// resolved once: a label lookup hashes and locks on every request.
    by_result: [(IntCounter, Histogram); 3],
    policy_reloads: IntCounterVec,
    policy_loaded: IntGauge,
    pub invalidations: IntCounterVec,
    /// The change feed's series (registered even with the feed off, so
    /// dashboards find them).
    pub feed: crate::feed::metrics::FeedMetrics,
    pub by_fingerprint: QueryStats,
    cache_bytes: IntGauge,
    cache_entries: IntGauge,
    cache_max_bytes: IntGauge,
    evictions: IntCounter,
    expirations: IntCounter,
    coalesced: IntCounter,
    /// Engine counters already exported: (evictions, expirations, coalesced).
    exported: Mutex<(u64, u64, u64)>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            Gauge(g)
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let counter_vec = |name: &str, help: &str, label: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let build_info = IntGauge::with_opts(
            Opts::new(
                "pgcache_build_info",
                "Build of the running pgcache; always 1.",
            )
            .const_label("version", env!("CARGO_PKG_VERSION")),
        )
        .expect("valid metric");
        build_info.set(1);
        registry
            .register(Box::new(build_info))
            .expect("unique metric");
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "pgcache_query_duration_seconds",
                "Time from a request's arrival to its answer, by result (hit, miss, bypass).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["result"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(durations.clone()))
            .expect("unique metric");
        let queries = counter_vec(
            "pgcache_queries_total",
            "Requests (queries and extended-protocol batches) by result: hit, miss, bypass.",
            "result",
        );
        for result in ["hit", "miss", "bypass"] {
            queries.with_label_values(&[result]);
        }
        let policy_reloads = counter_vec(
            "pgcache_policy_reloads_total",
            "Policy file reloads, by outcome (ok, error).",
            "outcome",
        );
        for outcome in ["ok", "error"] {
            policy_reloads.with_label_values(&[outcome]);
        }
        let policy_loaded = IntGauge::new(
            "pgcache_policy_loaded_timestamp_seconds",
            "When the policy in force was loaded (Unix time).",
        )
        .expect("valid metric");
        policy_loaded.set(unix_now());
        registry
            .register(Box::new(policy_loaded.clone()))
            .expect("unique metric");
        let invalidations = IntCounterVec::new(
            Opts::new(
                "pgcache_invalidations_total",
                "Invalidations by table (schema.name; \"(all)\" for invalidate-everything, \"(database)\" for one database's entries) and source (write, ddl, feed, feed_restart, operator, policy, upstream_lost, desync).",
            ),
            &["table", "source"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(invalidations.clone()))
            .expect("unique metric");
        for source in crate::engine::Source::ALL {
            invalidations.with_label_values(&["(all)", source.label()]);
        }
        let limits = counter_vec(
            "pgcache_limit_refusals_total",
            "Connections refused or ended by a limit (max_client_connections, max_upstream_connections, startup_timeout, idle_timeout, max_message_size, allow_list, tls_required).",
            "limit",
        );
        let by_result = ["hit", "miss", "bypass"].map(|result| {
            (
                queries.with_label_values(&[result]),
                durations.with_label_values(&[result]),
            )
        });
        let feed_up = IntGaugeVec::new(
            Opts::new(
                "pgcache_feed_up",
                "1 while the database's change feed is streaming.",
            ),
            &["database"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(feed_up.clone()))
            .expect("unique metric");
        let feed_lag_bytes = IntGaugeVec::new(
            Opts::new(
                "pgcache_feed_lag_bytes",
                "WAL the server has written that the database's change feed has not handled yet.",
            ),
            &["database"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(feed_lag_bytes.clone()))
            .expect("unique metric");
        let feed_lag_seconds = GaugeVec::new(
            Opts::new(
                "pgcache_feed_lag_seconds",
                "How stale a hit of the database may be: seconds since the newest commit position of the server that the change feed is known to have handled (measured every max_lag/2 while the database is served, every 5 s otherwise).",
            ),
            &["database"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(feed_lag_seconds.clone()))
            .expect("unique metric");
        let feed_gating = IntGaugeVec::new(
            Opts::new(
                "pgcache_feed_gating",
                "1 when the database's hits depend on its change feed: --change-feed required, or auto once its feed has streamed (a feed that is down then means no hits); 0 when a down feed leaves it to its TTLs.",
            ),
            &["database"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(feed_gating.clone()))
            .expect("unique metric");
        let feed_max_lag = prometheus::Gauge::new(
            "pgcache_feed_max_lag_seconds",
            "The policy's max_lag: a database whose change feed is further behind is not served from the cache.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(feed_max_lag.clone()))
            .expect("unique metric");
        let feed_restarts = IntCounterVec::new(
            Opts::new(
                "pgcache_feed_restarts_total",
                "Change feed streams that ended or could not start, by database and reason (connection, server, protocol, catalog).",
            ),
            &["database", "reason"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(feed_restarts.clone()))
            .expect("unique metric");
        Metrics {
            by_result,
            limits,
            invalidations,
            by_fingerprint: QueryStats::default(),
            cache_bytes: gauge("pgcache_cache_bytes", "Bytes held by the cache, keys and overhead included.").0,
            cache_entries: gauge("pgcache_cache_entries", "Entries in the cache.").0,
            cache_max_bytes: gauge("pgcache_cache_max_bytes", "The cache's byte budget (policy max_memory).").0,
            evictions: counter("pgcache_evictions_total", "Entries evicted to stay within the byte budget."),
            expirations: counter("pgcache_expirations_total", "Entries dropped because their TTL passed."),
            coalesced: counter("pgcache_coalesced_total", "Requests that waited for another session's identical query instead of going upstream."),
            exported: Mutex::new((0, 0, 0)),
            policy_reloads,
            policy_loaded,
            client_connections: gauge("pgcache_client_connections", "Client connections open now."),
            upstream_connections: gauge(
                "pgcache_upstream_connections",
                "Connections to the upstream server open now.",
            ),
            upstream_errors: counter(
                "pgcache_upstream_errors_total",
                "Upstream connections that failed or were lost unexpectedly.",
            ),
            refused_connections: counter(
                "pgcache_refused_connections_total",
                "Client connections refused because max_client_connections was reached.",
            ),
            bypasses: counter_vec(
                "pgcache_bypass_total",
                "Requests forwarded without the cache, by reason.",
                "reason",
            ),
            queries,
            feed: crate::feed::metrics::FeedMetrics {
                up: feed_up,
                restarts: feed_restarts,
                lag_bytes: feed_lag_bytes,
                lag_seconds: feed_lag_seconds,
                max_lag: feed_max_lag,
                gating: feed_gating,
                transactions: counter_vec(
                    "pgcache_feed_transactions_total",
                    "Commits decoded by the database's change feed.",
                    "database",
                ),
            },
            registry,
        }
    }

    /// A connection was refused or ended by `limit` (a fixed label).
    pub fn limit_hit(&self, limit: &'static str) {
        self.limits.with_label_values(&[limit]).inc();
    }

    pub fn limit_hits(&self, limit: &str) -> u64 {
        self.limits.with_label_values(&[limit]).get()
    }

    /// A request answered from the cache; `took` runs from its arrival to the
    /// lookup that found the entry.
    pub fn record_hit(&self, took: Duration, fingerprint: Option<(u64, &Arc<str>)>) {
        let (count, duration) = &self.by_result[HIT];
        count.inc();
        duration.observe(took.as_secs_f64());
        if let Some((id, text)) = fingerprint {
            self.by_fingerprint.record(id, text, Served::Hit, took);
        }
    }

    /// A forwarded request got its ReadyForQuery.
    pub fn record_cycle(
        &self,
        outcome: Outcome,
        started: Instant,
        fingerprint: Option<(u64, &Arc<str>)>,
    ) {
        let took = started.elapsed();
        let (result, served) = match outcome {
            Outcome::Miss => (MISS, Served::Miss),
            Outcome::Bypass(reason) => {
                // `reason` comes from a fixed set of labels in the code: bounded.
                self.bypasses.with_label_values(&[reason.as_str()]).inc();
                (BYPASS, Served::Bypass(reason.as_str()))
            }
        };
        let (count, duration) = &self.by_result[result];
        count.inc();
        duration.observe(took.as_secs_f64());
        if let Some((id, text)) = fingerprint {
            self.by_fingerprint.record(id, text, served, took);
        }
    }

    /// Brings the cache's gauges and counters up to date (before a scrape).
    pub fn refresh_cache(&self, engine: &Engine) {
        let stats = engine.stats.snapshot();
        self.cache_bytes.set(engine.store.bytes() as i64);
        self.cache_entries.set(engine.store.len() as i64);
        self.cache_max_bytes.set(engine.store.max_bytes() as i64);
        let mut exported = self.exported.lock();
        let (evictions, expirations, coalesced) = *exported;
        self.evictions
            .inc_by(stats.evictions.saturating_sub(evictions));
        self.expirations
            .inc_by(stats.expirations.saturating_sub(expirations));
        self.coalesced
            .inc_by(stats.coalesced.saturating_sub(coalesced));
        *exported = (
            stats.evictions.max(evictions),
            stats.expirations.max(expirations),
            stats.coalesced.max(coalesced),
        );
    }

    /// The registry in Prometheus' text format.
    pub fn encode(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    pub fn record_policy_reload(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.policy_reloads.with_label_values(&[outcome]).inc();
        if ok {
            self.policy_loaded.set(unix_now());
        }
    }

    pub fn policy_reloads(&self, outcome: &str) -> u64 {
        self.policy_reloads.with_label_values(&[outcome]).get()
    }

    /// Requests answered so far with `result` (hit, miss, bypass).
    pub fn queries(&self, result: &str) -> u64 {
        self.queries.with_label_values(&[result]).get()
    }

    pub fn bypasses(&self, reason: &str) -> u64 {
        self.bypasses.with_label_values(&[reason]).get()
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
