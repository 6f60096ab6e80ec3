//! What the proxy tells operators: Prometheus metrics (and, with them, the admin
//! HTTP server).

pub mod metrics;
