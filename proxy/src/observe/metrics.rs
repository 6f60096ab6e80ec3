//! The proxy's Prometheus metrics. Names are an interface: dashboards and alert
//! rules in `dashboards/` depend on them.

use prometheus::{IntCounter, IntGauge, Opts, Registry};

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

pub struct Metrics {
    pub registry: Registry,
    pub client_connections: Gauge,
    pub upstream_connections: Gauge,
    pub upstream_errors: IntCounter,
    pub refused_connections: IntCounter,
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
        Metrics {
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
            registry,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
