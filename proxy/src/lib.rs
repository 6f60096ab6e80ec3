//! pgcache: a caching proxy for PostgreSQL that speaks the wire protocol.
//!
//! The `pgcache` binary is a thin shell over this library; integration tests use
//! the library to run a proxy in-process. See `docs/ARCHITECTURE.md` for the map.

pub mod access;
pub mod bypass;
pub mod catalog;
pub mod config;
pub mod demo;
pub mod engine;
pub mod fd_limit;
pub mod feed;
pub mod liveness;
pub mod maintenance;
pub mod maybe_tls;
pub mod observe;
pub mod server;
pub mod session;
pub mod setup;
pub mod shared;
pub mod sql;
pub mod telemetry;
pub mod tls;
pub mod upstream;
pub mod wire;

pub use config::{ProxyConfig, Upstream};
pub use server::{Proxy, ProxyHandle};
