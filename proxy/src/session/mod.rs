//! One client connection, from its first byte to its close.
//!
//! `startup` reads the opening packets and connects upstream; `relay` moves
//! bytes both ways until one side goes away; `protocol` decides, message by
//! message, what is forwarded, answered from the cache, captured or
//! invalidated, with `plan` (statement decisions), `context` (what goes into
//! the cache key), `cycle` (responses owed) and `statements` (prepared
//! statements and portals).

mod console;
mod context;
mod cycle;
mod decision;
mod halves;
mod plan;
mod probe;
mod protocol;
mod relay;
mod startup;
mod statements;
mod transaction;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use crate::shared::Shared;
use crate::tls::TlsMode;
use crate::wire::startup::Startup;
use crate::wire::{ErrorResponse, SqlState};
pub use cycle::Outcome;
use protocol::Protocol;
pub use relay::Ending;
use relay::Relay;
use startup::{forward_cancel, read_opening, Opening};

/// Serves one client connection to its end. Never panics on anything the client
/// or the server sends; every failure ends in one log line.
pub async fn serve(mut client: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let config = &shared.config;
    match open(&mut client, peer, &shared, shared.tls.is_some()).await {
        Some(Opening::Tls) => {
            let Some(acceptor) = shared.tls.clone() else {
                return;
            };
            let handshake = tokio::time::timeout(config.startup_timeout, acceptor.accept(client));
            let mut tls = match handshake.await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    warn!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    warn!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            // After the handshake: the startup packet, now encrypted.
            if let Some(Opening::Startup(startup)) = open(&mut tls, peer, &shared, false).await {
                serve_startup(tls, peer, shared.clone(), startup).await;
            }
        }
        Some(Opening::Startup(startup)) => {
            if config.tls_mode == TlsMode::Required {
                warn!(%peer, "refused: TLS is required");
                shared.stats.limit_hit("tls_required");
                let error = ErrorResponse::fatal(
                    SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                    "pgcache requires an encrypted connection (TLS)",
                )
                .with_hint("Connect with sslmode=require or stronger.");
                let _ = write_and_close(&mut client, &error).await;
                return;
            }
            serve_startup(client, peer, shared.clone(), startup).await;
        }
        Some(Opening::Cancel(_)) | None => {}
    }
}

/// Reads the opening packets; handles a cancel request or a failure itself and
/// returns `None` then.
async fn open<C>(
    client: &mut C,
    peer: SocketAddr,
    shared: &Shared,
    offer_tls: bool,
) -> Option<Opening>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let config = &shared.config;
    match read_opening(client, config.startup_timeout, offer_tls).await {
        Ok(Opening::Cancel(raw)) => {
            // Like any other connection, a cancel must come from an allowed
            // network; PostgreSQL answers a cancel with nothing, so neither
            // does the refusal.
            if !crate::access::allowed(&config.allow, peer.ip()) {
                warn!(%peer, "cancel request refused: address not in --allow");
                shared.stats.limit_hit("allow_list");
                return None;
            }
            match forward_cancel(&config.upstream, raw, config.connect_timeout).await {
                Ok(()) => debug!(%peer, "cancel request forwarded"),
                Err(e) => warn!(%peer, error = %e, "cancel request could not be forwarded"),
            }
            None
        }
        Ok(opening) => Some(opening),
        Err(failure) => {
            warn!(%peer, error = %failure, "connection refused during startup");
            if matches!(failure, startup::StartupFailure::Timeout(_)) {
                shared.stats.limit_hit("startup_timeout");
            }
            if let Some(error) = failure.to_error_response() {
                let _ = write_and_close(client, &error).await;
            }
            None
        }
    }
}

/// A session from its StartupMessage on.
async fn serve_startup<C>(mut client: C, peer: SocketAddr, shared: Arc<Shared>, startup: Startup)
where
    C: AsyncRead + AsyncWrite + Unpin + halves::Split,
{
    let config = &shared.config;
    if !crate::access::allowed(&config.allow, peer.ip()) {
        warn!(%peer, "refused: address not in --allow");
        shared.stats.limit_hit("allow_list");
        let error = ErrorResponse::fatal(
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            format!("pgcache does not accept connections from {}", peer.ip()),
        );
        let _ = write_and_close(&mut client, &error).await;
        return;
    }
    let user = startup.param("user").unwrap_or_default().to_string();
    let database = startup
        .param("database")
        .filter(|d| !d.is_empty())
        .unwrap_or(&user)
        .to_string();

    // The admin console: the login is checked by the upstream (in its own
    // database), then the proxy answers the commands itself.
    let console = database == config.admin_database;
    let startup = if console {
        if !config.admin_users.contains(&user) {
            warn!(%peer, %user, "refused: not an admin console user");
            let error = ErrorResponse::fatal(
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                format!("user \"{user}\" may not use the pgcache admin console"),
            )
            .with_hint("Admin console users are set with --admin-users.");
            let _ = write_and_close(&mut client, &error).await;
            return;
        }
        startup.with_param("database", &config.upstream.dbname)
    } else {
        startup
    };

    // Like a pooler's queue: wait for a free upstream slot rather than refuse
    // at once, but never longer than a connection attempt may take.
    let _upstream_slot = match &shared.upstream_slots {
        None => None,
        Some(slots) => {
            let waiting =
                tokio::time::timeout(config.connect_timeout, slots.clone().acquire_owned());
            match waiting.await {
                Ok(Ok(slot)) => Some(slot),
                _ => {
                    let limit = config.max_upstream_connections.unwrap_or_default();
                    warn!(%peer, %user, %database, limit, "no upstream connection free; connection refused");
                    shared.stats.limit_hit("max_upstream_connections");
                    let error = ErrorResponse::fatal(
                        SqlState::TOO_MANY_CONNECTIONS,
                        format!(
                            "pgcache already holds {limit} upstream connections and none became free within {:?}",
                            config.connect_timeout
                        ),
                    )
                    .with_hint("Raise --max-upstream-connections, or close idle sessions.");
                    let _ = write_and_close(&mut client, &error).await;
                    return;
                }
            }
        }
    };

    let connecting = crate::upstream::connect(
        &config.upstream,
        shared.upstream_tls.as_ref(),
        config.connect_timeout,
    );
    let mut server = match connecting.await {
        Ok(server) => server,
        Err(error) => {
            warn!(%peer, %user, %database, error = %error.message, "upstream unreachable");
            shared.stats.upstream_errors.inc();
            shared.engine.upstream_lost();
            let _ = write_and_close(&mut client, &error).await;
            return;
        }
    };
    if let Err(e) = server.write_all(&startup.raw).await {
        let error = ErrorResponse::fatal(
            SqlState::CONNECTION_FAILURE,
            format!(
                "pgcache lost the upstream server at {} during startup: {e}",
                config.upstream.address()
            ),
        );
        let _ = write_and_close(&mut client, &error).await;
        return;
    }

    let _upstream_guard = shared.stats.upstream_connections.guard();
    let mut protocol = Protocol::new(shared.clone(), &startup);
    protocol.console = console;
    let mut relay = Relay::new(
        client,
        server,
        protocol,
        config.max_message_size,
        shared.shutdown.subscribe(),
        config.idle_timeout,
    );
    let ending = relay.run().await;
    let closed_at = std::time::Instant::now();
    // Only a session that got as far as ReadyForQuery can tell anything about
    // the server by losing it: before that, a failed login, a missing
    // database or authentication_timeout ends the connection as designed.
    let server_lost = matches!(
        ending,
        Ending::ServerClosed | Ending::ServerIo(_) | Ending::ServerProtocolError(_)
    ) && !relay.protocol.terminated
        && relay.protocol.tx_status().is_some();
    let said_fatal = relay.protocol.server_said_fatal;
    let pid = relay.protocol.backend_pid.unwrap_or(0);
    // The client connection and the upstream slot are given back now, not
    // after the upstream is probed.
    drop(relay);
    drop(_upstream_guard);
    drop(_upstream_slot);
    match &ending {
        Ending::IdleTimeout => shared.stats.limit_hit("idle_timeout"),
        Ending::ClientProtocolError(crate::wire::FrameError::TooLarge { .. }) => {
            shared.stats.limit_hit("max_message_size")
        }
        _ => {}
    }
    match ending {
        Ending::ClientClosed
        | Ending::ClientTerminated
        | Ending::ServerClosed
        | Ending::Shutdown
        | Ending::IdleTimeout => {
            debug!(%peer, %user, %database, backend_pid = pid, ?ending, "session ended")
        }
        Ending::ClientIo(e) => {
            info!(%peer, %user, %database, backend_pid = pid, error = %e, "client connection lost")
        }
        Ending::ServerIo(e) => {
            shared.stats.upstream_errors.inc();
            warn!(%peer, %user, %database, backend_pid = pid, error = %e, "upstream connection lost")
        }
        Ending::ClientProtocolError(e) => {
            warn!(%peer, %user, %database, backend_pid = pid, error = %e, "client broke the protocol; connection closed")
        }
        Ending::ServerProtocolError(e) => {
            shared.stats.upstream_errors.inc();
            warn!(%peer, %user, %database, backend_pid = pid, error = %e, "upstream sent an invalid message; connection closed")
        }
    }
    if server_lost {
        shared
            .liveness
            .after_server_closed(
                &shared.config,
                shared.upstream_tls.as_ref(),
                &shared.engine,
                closed_at,
                said_fatal,
            )
            .await;
    }
}

/// Sends a final error to the client and closes the connection.
pub async fn write_and_close<C: AsyncWrite + Unpin>(
    client: &mut C,
    error: &ErrorResponse,
) -> std::io::Result<()> {
    client.write_all(&error.encode()).await?;
    client.flush().await?;
    client.shutdown().await
}
