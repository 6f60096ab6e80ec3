//! Is the upstream really gone? Asked when an established session's server
//! connection closes without the client asking for it.
//!
//! One session's connection ending says little about the server: a backend
//! can be terminated (pg_terminate_backend, idle_session_timeout), or close
//! on a message it refuses, while the server runs on. Dropping the whole
//! cache for that would let any client flush it for everyone. So the proxy
//! asks the server itself: it opens a connection and sends a startup packet
//! as the service account. A server that is shutting down, starting up or
//! recovering from a crash answers 57P03 (cannot_connect_now); one that is
//! gone refuses the connection or does not answer. Anything else (an
//! authentication request, a refusal of the login) means it is up.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, warn};

use std::sync::Arc;

use crate::config::ProxyConfig;
use crate::engine::Engine;

/// A server that closed a connection without a FATAL may be in the first
/// moments of a crash reset, before it refuses connections: look again after
/// this long before calling it alive.
const RECHECK_AFTER: Duration = Duration::from_millis(200);
/// What the server may answer a startup packet with, at most.
const MAX_ANSWER: usize = 8 << 10;

/// Probes of one proxy, one at a time.
#[derive(Default)]
pub struct Liveness {
    /// When the last probe started.
    last: tokio::sync::Mutex<Option<Instant>>,
}

/// What a probe found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Alive,
    Gone(String),
}

impl Liveness {
    /// After an established session lost its server connection (`closed_at`;
    /// `said_fatal`: the server sent a FATAL first): drops every cached entry
    /// if the upstream is gone. A probe that started after `closed_at` has
    /// already judged this close, so a burst of closes costs one or two probes.
    pub async fn after_server_closed(
        &self,
        config: &ProxyConfig,
        tls: Option<&Arc<tokio_rustls::rustls::ClientConfig>>,
        engine: &Engine,
        closed_at: Instant,
        said_fatal: bool,
    ) {
        let mut last = self.last.lock().await;
        if last.is_some_and(|started| started >= closed_at) {
            return;
        }
        let ask = || probe(&config.upstream, tls, config.connect_timeout);
        *last = Some(Instant::now());
        let mut verdict = ask().await;
        if verdict == Verdict::Alive && !said_fatal {
            tokio::time::sleep(RECHECK_AFTER).await;
            *last = Some(Instant::now());
            verdict = ask().await;
        }
        match verdict {
            Verdict::Alive => {
                debug!("a server connection closed; the upstream is up, the cache stays")
            }
            Verdict::Gone(why) => {
                warn!(upstream = %config.upstream.address(), %why, "the upstream is gone: dropping every cached entry");
                engine.upstream_lost();
            }
        }
    }
}

/// Connects to the upstream as the service account and reads its first answer.
pub async fn probe(
    upstream: &crate::config::Upstream,
    tls: Option<&std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
    timeout: Duration,
) -> Verdict {
    let mut server = match crate::upstream::connect(upstream, tls, timeout).await {
        Ok(server) => server,
        Err(e) => return Verdict::Gone(e.message),
    };
    let answer = async {
        server
            .write_all(&startup_packet(&upstream.user, &upstream.dbname))
            .await?;
        let tag = server.read_u8().await?;
        let len = server.read_u32().await? as usize;
        let mut body = vec![0; len.saturating_sub(4).min(MAX_ANSWER)];
        server.read_exact(&mut body).await?;
        Ok::<_, std::io::Error>((tag, body))
    };
    let verdict = match tokio::time::timeout(timeout, answer).await {
        Err(_) => Verdict::Gone(format!("no answer to a startup packet within {timeout:?}")),
        Ok(Err(e)) => Verdict::Gone(format!("no answer to a startup packet: {e}")),
        Ok(Ok((b'E', body))) if sqlstate(&body) == Some(b"57P03") => {
            Verdict::Gone("the server cannot accept connections now (57P03)".into())
        }
        Ok(Ok((tag, body))) => {
            if tag == b'R' && body.starts_with(&[0, 0, 0, 0]) {
                // Logged in at once (trust): leave politely.
                let _ = server.write_all(crate::wire::encode::TERMINATE).await;
            }
            Verdict::Alive
        }
    };
    let _ = server.shutdown().await;
    verdict
}

/// A protocol 3.0 StartupMessage.
fn startup_packet(user: &str, database: &str) -> Vec<u8> {
    crate::wire::encode::startup(
        3,
        0,
        &[
            ("user", user),
            ("database", database),
            ("application_name", "pgcache liveness probe"),
        ],
    )
}

/// The SQLSTATE field of an ErrorResponse body.
fn sqlstate(body: &[u8]) -> Option<&[u8]> {
    body.split(|&b| b == 0)
        .find_map(|field| field.strip_prefix(b"C"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sqlstate_of_an_error() {
        assert_eq!(
            sqlstate(b"SFATAL\0VFATAL\0C57P03\0Mthe database system is shutting down\0\0"),
            Some(&b"57P03"[..])
        );
        assert_eq!(sqlstate(b"SFATAL\0\0"), None);
    }

    #[test]
    fn builds_a_startup_packet() {
        let p = startup_packet("svc", "db\0x");
        assert_eq!(
            u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize,
            p.len()
        );
        assert_eq!(&p[4..8], &[0, 3, 0, 0]);
        assert!(p.ends_with(b"pgcache liveness probe\0\0"));
        assert!(p.windows(6).any(|w| w == b"dbx\0ap"));
    }
}
