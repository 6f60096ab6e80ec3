//! The feed's series: a low file, so the telemetry can hold them without
//! importing the feed.

use prometheus::{Gauge, GaugeVec, IntCounterVec, IntGaugeVec};

/// The feed's series, registered with the proxy's other metrics.
#[derive(Clone)]
pub struct FeedMetrics {
    /// `pgcache_feed_up{database}`: 1 while the stream is streaming.
    pub up: IntGaugeVec,
    /// `pgcache_feed_transactions_total{database}`: commits decoded.
    pub transactions: IntCounterVec,
    /// `pgcache_feed_restarts_total{database,reason}`: streams that ended or
    /// could not start (reason: connection, server, protocol, catalog).
    pub restarts: IntCounterVec,
    /// `pgcache_feed_lag_bytes{database}`: WAL the server has and the stream
    /// has not handled yet.
    pub lag_bytes: IntGaugeVec,
    /// `pgcache_feed_lag_seconds{database}`: how stale a hit may be (see
    /// `lag.rs`).
    pub lag_seconds: GaugeVec,
    /// `pgcache_feed_max_lag_seconds`: the policy's `max_lag`.
    pub max_lag: Gauge,
    /// `pgcache_feed_gating{database}`: 1 when a feed that is down means no
    /// hits for the database (see `gate.rs`).
    pub gating: IntGaugeVec,
}
