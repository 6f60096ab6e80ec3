//! The listener: accepts clients, enforces the connection limit, and runs one
//! session task per client.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use policies::{Policy, SharedPolicy};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::ProxyConfig;
use crate::engine::Engine;
use crate::session;
pub use crate::shared::Shared;
use crate::telemetry::metrics::Metrics;
use crate::wire::{ErrorResponse, SqlState};

/// A bound, not yet running proxy.
pub struct Proxy {
    shared: Arc<Shared>,
    listener: TcpListener,
    admin: Option<TcpListener>,
}

impl Proxy {
    pub async fn bind(config: ProxyConfig) -> anyhow::Result<Proxy> {
        let policy = match &config.policy {
            Some(path) => SharedPolicy::from_file(path.clone())
                .map_err(|e| anyhow::anyhow!("the policy file is invalid:\n{e}"))?,
            None => SharedPolicy::new(Policy::default(), None),
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let admin = match config.admin_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (--admin-listen)"))?,
            ),
            None => None,
        };
        let tls = match config.tls_mode {
            crate::tls::TlsMode::Disabled => None,
            _ => match (&config.tls_cert, &config.tls_key) {
                (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
                _ => anyhow::bail!("--tls-mode optional/required needs --tls-cert and --tls-key"),
            },
        };
        let upstream_tls = config
            .upstream
            .tls
            .client_config()
            .context("TLS toward the upstream")?;
        let stats = Metrics::new();
        let engine = Engine::new(
            &config,
            policy,
            stats.invalidations.clone(),
            upstream_tls.clone(),
        );
        let shared = Arc::new(Shared {
            tls,
            upstream_tls,
            shutdown: watch::channel(false).0,
            connection_slots: Arc::new(Semaphore::new(config.max_client_connections)),
            upstream_slots: config
                .max_upstream_connections
                .map(|n| Arc::new(Semaphore::new(n))),
            stats,
            engine,
            liveness: Default::default(),
            config,
        });
        Ok(Proxy {
            shared,
            listener,
            admin,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where the admin HTTP server listens, if it does.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Accepts clients until `shutdown` completes with a grace period; then
    /// stops accepting, ends idle sessions at once and waits up to the grace
    /// period for the others to finish their transactions.
    pub async fn run(mut self, shutdown: impl Future<Output = Duration>) -> anyhow::Result<()> {
        info!(listen = %self.local_addr(), upstream = ?self.shared.config.upstream, "pgcache is accepting connections");
        tokio::pin!(shutdown);
        let background = crate::maintenance::spawn(self.shared.clone());
        if self.shared.config.change_feed != crate::feed::ChangeFeedMode::Off {
            crate::feed::start(self.shared.clone());
        }
        let admin = self.admin.take().map(|listener| {
            info!(listen = ?listener.local_addr().ok(), "admin HTTP server listening");
            tokio::spawn(crate::observe::admin::serve(listener, self.shared.clone()))
        });
        loop {
            tokio::select! {
                grace = &mut shutdown => {
                    drop(self.listener);
                    info!(grace = ?grace, "stopped accepting connections; ending sessions as they become idle");
                    self.shared.shutdown.send_replace(true);
                    let deadline = tokio::time::Instant::now() + grace;
                    while self.shared.stats.client_connections.get() > 0
                        && tokio::time::Instant::now() < deadline
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let left = self.shared.stats.client_connections.get();
                    if left > 0 {
                        warn!(sessions = left, "grace period over; closing the remaining sessions");
                    }
                    background.abort();
                    if let Some(admin) = &admin {
                        admin.abort();
                    }
                    return Ok(());
                }
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => self.admit(stream, peer),
                    // Out of file descriptors and the like: keep serving the others.
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }

    /// Runs the proxy in the background; the handle stops it.
    pub fn spawn(self) -> ProxyHandle {
        let addr = self.local_addr();
        let admin_addr = self.admin_addr();
        let shared = self.shared.clone();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(self.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
            Duration::from_secs(5)
        }));
        ProxyHandle {
            addr,
            admin_addr,
            shared,
            stop,
            task,
        }
    }

    fn admit(&self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let shared = self.shared.clone();
        match self.shared.connection_slots.clone().try_acquire_owned() {
            Ok(slot) => {
                tokio::spawn(async move {
                    let _slot = slot;
                    let _gauge = shared.stats.client_connections.guard();
                    session::serve(stream, peer, shared.clone()).await;
                });
            }
            Err(_) => {
                shared.stats.refused_connections.inc();
                shared.stats.limit_hit("max_client_connections");
                warn!(%peer, limit = shared.config.max_client_connections, "too many clients; connection refused");
                tokio::spawn(async move {
                    let mut stream = stream;
                    let error = ErrorResponse::fatal(
                        SqlState::TOO_MANY_CONNECTIONS,
                        "sorry, too many clients already",
                    );
                    let _ = session::write_and_close(&mut stream, &error).await;
                });
            }
        }
    }
}

/// A proxy running in the background.
pub struct ProxyHandle {
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl ProxyHandle {
    /// Stops accepting connections and waits for the listener to close.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await.context("proxy task panicked")?
    }
}
