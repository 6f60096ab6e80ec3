//! What the proxy tells operators: Prometheus metrics (and, with them, the admin
//! HTTP server).

pub mod admin;
pub mod console;
pub mod metrics;
pub mod queries;
