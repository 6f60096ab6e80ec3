//! What the proxy counts: the Prometheus registry and its metrics, and the
//! per-query-shape traffic behind the admin API's top queries. A low room:
//! sessions, the engine's users and the admin surfaces (`observe/`) record
//! and read here; nothing here imports them.

pub mod metrics;
pub mod queries;
