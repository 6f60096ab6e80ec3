//! How operators see and steer a running proxy: the admin HTTP server
//! (`/metrics`, `/healthz`, `/readyz`, the JSON API) and the admin console
//! over the wire protocol, both on the same operations. What is counted
//! lives in `telemetry/`.

pub mod admin;
pub mod console;
pub mod operations;
