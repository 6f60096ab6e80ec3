//! How the control connections reach the server, and how often they reload.

use std::fmt;
use std::time::Duration;

/// Settings for the per-database control connections. They log in with the
/// proxy's own service credentials, not a client's.
#[derive(Clone)]
pub struct CatalogConfig {
    /// A host name, an IP address, or a unix socket directory (leading `/`).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    /// Bound on establishing the control connection (TCP and authentication).
    pub connect_timeout: Duration,
    /// A snapshot older than this is reloaded on its next use, to pick up DDL
    /// the proxy did not relay itself.
    pub refresh_interval: Duration,
    /// Bound on one load (all catalog queries); a server that stops answering
    /// must not hang the sessions waiting for a snapshot.
    pub load_timeout: Duration,
    /// After a failed connect or load, callers get that same error for this
    /// long before the next attempt.
    pub retry_backoff: Duration,
    /// TLS for the control connection (the same as the proxy's sessions use).
    pub tls: Option<CatalogTls>,
    /// A control connection unused this long is closed (and opened again on
    /// the next use): the proxy's own connections must not keep a database
    /// open that no client uses (DROP DATABASE, templates).
    pub idle_close: Duration,
}

/// TLS settings of the control connection.
#[derive(Clone)]
pub struct CatalogTls {
    pub config: std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
    /// Refuse a server without TLS (sslmode=require and stronger); else prefer.
    pub required: bool,
}

impl CatalogConfig {
    /// A config with the default timings: connect 5 s, refresh 60 s, load
    /// 30 s, backoff 5 s.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        password: Option<String>,
    ) -> CatalogConfig {
        CatalogConfig {
            host: host.into(),
            port,
            user: user.into(),
            password,
            connect_timeout: Duration::from_secs(5),
            refresh_interval: Duration::from_secs(60),
            load_timeout: Duration::from_secs(30),
            retry_backoff: Duration::from_secs(5),
            tls: None,
            idle_close: Duration::from_secs(30),
        }
    }
}

// By hand, so that the password never reaches a log line.
impl fmt::Debug for CatalogConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatalogConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("refresh_interval", &self.refresh_interval)
            .field("load_timeout", &self.load_timeout)
            .field("retry_backoff", &self.retry_backoff)
            .field("tls", &self.tls.as_ref().map(|t| t.required))
            .finish()
    }
}
