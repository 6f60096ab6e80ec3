//! Run-time configuration of the proxy, from flags and environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

impl std::str::FromStr for SslMode {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-full" => SslMode::VerifyFull,
            "verify-ca" => {
                bail!("sslmode=verify-ca is not supported for the upstream; use verify-full")
            }
            other => bail!("unknown sslmode {other:?} in the upstream URL"),
        })
    }
}

/// TLS toward the upstream, from the URL's `sslmode` and `sslrootcert`.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    pub mode: SslMode,
    pub root_cert: Option<PathBuf>,
}

impl Default for UpstreamTls {
    fn default() -> Self {
        UpstreamTls {
            mode: SslMode::Prefer,
            root_cert: None,
        }
    }
}

/// The server the proxy forwards to, from `--upstream postgres://USER[:PASSWORD]@HOST:PORT/DB`.
///
/// Client sessions never use these credentials: clients authenticate end to end.
/// They are the service account of the proxy's own catalog connection.
#[derive(Clone)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    /// TLS toward the server, from `sslmode` and `sslrootcert` in the URL.
    pub tls: UpstreamTls,
}

impl Upstream {
    /// `host:port`, for connecting and for error messages.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Debug for Upstream {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "postgres://{}@{}/{}",
            self.user,
            self.address(),
            self.dbname
        )
    }
}

impl FromStr for Upstream {
    type Err = anyhow::Error;

    fn from_str(url: &str) -> anyhow::Result<Upstream> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            bail!("the upstream must be a URL like postgres://USER[:PASSWORD]@HOST:PORT/DBNAME");
        }
        // sslmode and sslrootcert are the proxy's to handle (tokio-postgres knows
        // neither verify-full nor sslrootcert); the rest goes to tokio-postgres.
        let mut tls = UpstreamTls::default();
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", mode)) => tls.mode = mode.parse()?,
                Some(("sslrootcert", path)) => tls.root_cert = Some(path.into()),
                _ => rest.push(pair),
            }
        }
        let url = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let config = tokio_postgres::Config::from_str(&url)
            .with_context(|| "the upstream URL is not a valid PostgreSQL connection URL")?;
        let host = match config.get_hosts() {
            [tokio_postgres::config::Host::Tcp(host)] => host.clone(),
            [] => bail!("the upstream URL names no host"),
            [_] => bail!("the upstream must be a TCP host, not a Unix socket"),
            _ => bail!("the upstream URL must name exactly one host"),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config
            .get_user()
            .context("the upstream URL names no user (postgres://USER@HOST:PORT/DBNAME)")?
            .to_string();
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let dbname = config.get_dbname().unwrap_or(&user).to_string();
        Ok(Upstream {
            host,
            port,
            user,
            password,
            dbname,
            tls,
        })
    }
}

/// Everything a running proxy needs to know.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    pub upstream: Upstream,
    pub policy: Option<PathBuf>,
    pub admin_listen: Option<SocketAddr>,
    /// Bearer token required by the admin API's mutating endpoints.
    pub admin_token: Option<String>,
    /// Connecting to this database name gives the admin console.
    pub admin_database: String,
    /// Users allowed into the admin console (their login is checked by the upstream).
    pub admin_users: Vec<String>,
    /// What one admin HTTP client may hold: connections and time.
    pub admin_limits: AdminLimits,
    /// A client must have sent its startup packet within this time.
    pub startup_timeout: Duration,
    /// Connecting to the upstream gives up after this time.
    pub connect_timeout: Duration,
    /// A catalog control connection unused this long is closed.
    pub catalog_idle_close: Duration,
    /// Client connections beyond this are refused with SQLSTATE 53300.
    pub max_client_connections: usize,
    /// Session connections to the upstream held at once; a client beyond
    /// this waits up to `connect_timeout` for one to close, then gets 53300.
    /// `None`: one per client (so at most `max_client_connections`).
    pub max_upstream_connections: Option<usize>,
    /// Largest single message accepted from a client.
    pub max_message_size: usize,
    /// Client networks allowed to connect; empty allows every address.
    pub allow: Vec<crate::access::Cidr>,
    /// Close client sessions idle (outside a transaction) this long.
    pub idle_timeout: Option<Duration>,
    pub tls_mode: crate::tls::TlsMode,
    /// PEM certificate chain and key, required unless tls_mode is Disabled.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Whether to follow each database's commits through logical decoding.
    pub change_feed: crate::feed::mode::ChangeFeedMode,
}

impl ProxyConfig {
    /// A configuration with the documented defaults.
    pub fn new(listen: SocketAddr, upstream: Upstream) -> ProxyConfig {
        let admin_users = vec![upstream.user.clone()];
        ProxyConfig {
            listen,
            upstream,
            policy: None,
            admin_listen: None,
            admin_token: None,
            admin_database: "pgcache".into(),
            admin_users,
            admin_limits: AdminLimits::default(),
            startup_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            catalog_idle_close: Duration::from_secs(30),
            max_client_connections: 1000,
            max_upstream_connections: None,
            max_message_size: crate::wire::MAX_MESSAGE_LEN,
            allow: Vec::new(),
            idle_timeout: None,
            tls_mode: crate::tls::TlsMode::Disabled,
            tls_cert: None,
            tls_key: None,
            change_feed: crate::feed::mode::ChangeFeedMode::Auto,
        }
    }
}

/// Bounds of the admin HTTP server, so that slow or idle clients cannot hold
/// its connections (and the process's file descriptors) for good.
#[derive(Debug, Clone, Copy)]
pub struct AdminLimits {
    /// Admin connections open at once; more are closed as they arrive.
    pub max_connections: usize,
    /// A request's head must arrive within this, counted from the first
    /// moment the server waits for it (so it also ends idle keep-alive
    /// connections).
    pub header_timeout: Duration,
    /// A request's body must arrive within this after its head.
    pub body_timeout: Duration,
    /// Request bodies larger than this are refused (413).
    pub max_body: usize,
}

impl Default for AdminLimits {
    fn default() -> AdminLimits {
        AdminLimits {
            max_connections: 64,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_body: 64 << 10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_urls() {
        let u: Upstream = "postgres://svc:secret@db.internal:5433/shop"
            .parse()
            .unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.user.as_str(), u.dbname.as_str()),
            ("db.internal", 5433, "svc", "shop")
        );
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert!(!format!("{u:?}").contains("secret"));
        let u: Upstream = "postgresql://svc@127.0.0.1".parse().unwrap();
        assert_eq!((u.port, u.dbname.as_str()), (5432, "svc"));
        assert!("mysql://x@y/z".parse::<Upstream>().is_err());
        assert!("postgres://host/db".parse::<Upstream>().is_err());
        let u: Upstream =
            "postgres://svc@db:5432/x?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=3"
                .parse()
                .unwrap();
        assert_eq!(u.tls.mode, SslMode::VerifyFull);
        assert_eq!(
            u.tls.root_cert.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );
        assert!("postgres://svc@db/x?sslmode=bogus"
            .parse::<Upstream>()
            .is_err());
    }
}
