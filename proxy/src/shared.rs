//! What every part of a running proxy shares: its configuration, TLS
//! settings, the cache engine, the metrics, the drain flag and the
//! connection limits. A low room: it imports nothing that uses it.

use std::sync::Arc;

use tokio::sync::{watch, Semaphore};

use crate::config::ProxyConfig;
use crate::engine::Engine;
use crate::liveness::Liveness;
use crate::telemetry::metrics::Metrics;

/// State shared by every session of one proxy.
pub struct Shared {
    pub config: ProxyConfig,
    /// Present when clients may use TLS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// TLS toward the upstream, unless its URL says sslmode=disable.
    pub upstream_tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    /// Set to true when the proxy shuts down; sessions end once idle.
    pub shutdown: watch::Sender<bool>,
    pub stats: Metrics,
    pub engine: Engine,
    /// Decides, when a session loses its server, whether the upstream is gone.
    pub liveness: Liveness,
    pub(crate) connection_slots: Arc<Semaphore>,
    /// Present when --max-upstream-connections is set.
    pub upstream_slots: Option<Arc<Semaphore>>,
}
