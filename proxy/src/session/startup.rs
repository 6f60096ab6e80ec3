//! The start of a connection, before any byte goes upstream: the startup packet,
//! SSL/GSSAPI negotiation, cancel requests, and the upstream connection.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::Upstream;
use crate::wire::startup::{check_length, Startup};
use crate::wire::{ErrorResponse, SqlState, StartupError, StartupPacket};

/// Why a connection ended before it was relayed.
#[derive(Debug, thiserror::Error)]
pub enum StartupFailure {
    /// The client broke the protocol; it gets this error before the connection closes.
    #[error("{0}")]
    Protocol(#[from] StartupError),
    #[error("no startup packet within {0:?}")]
    Timeout(Duration),
    #[error("client went away during startup: {0}")]
    Io(#[from] std::io::Error),
    #[error("SSL or GSSAPI encryption requested twice")]
    RepeatedNegotiation,
}

impl StartupFailure {
    /// What the client is told, where the protocol allows telling it anything.
    pub fn to_error_response(&self) -> Option<ErrorResponse> {
        match self {
            StartupFailure::Protocol(StartupError::UnsupportedProtocol { .. }) => Some(
                ErrorResponse::fatal(SqlState::FEATURE_NOT_SUPPORTED, self.to_string()),
            ),
            StartupFailure::Protocol(_) | StartupFailure::RepeatedNegotiation => Some(
                ErrorResponse::fatal(SqlState::PROTOCOL_VIOLATION, self.to_string()),
            ),
            // Nobody is listening, or the client said nothing: PostgreSQL closes silently too.
            StartupFailure::Timeout(_) | StartupFailure::Io(_) => None,
        }
    }
}

/// What the client asked for in its first packet(s).
pub enum Opening {
    Startup(Startup),
    Cancel(Bytes),
    /// SSLRequest, answered 'S': the TLS handshake comes next.
    Tls,
}

/// Reads packets until a StartupMessage or a CancelRequest, answering
/// GSSENCRequest with 'N', and SSLRequest with 'S' when `offer_tls`, else 'N'.
pub async fn read_opening<S>(
    client: &mut S,
    timeout: Duration,
    offer_tls: bool,
) -> Result<Opening, StartupFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let read = async {
        let (mut ssl_answered, mut gss_answered) = (false, false);
        loop {
            match StartupPacket::parse(read_packet(client).await?)? {
                StartupPacket::SslRequest if offer_tls => {
                    client.write_all(b"S").await?;
                    return Ok(Opening::Tls);
                }
                StartupPacket::SslRequest if !ssl_answered => {
                    ssl_answered = true;
                    client.write_all(b"N").await?;
                }
                StartupPacket::GssEncRequest if !gss_answered => {
                    gss_answered = true;
                    client.write_all(b"N").await?;
                }
                StartupPacket::SslRequest | StartupPacket::GssEncRequest => {
                    return Err(StartupFailure::RepeatedNegotiation)
                }
                StartupPacket::CancelRequest { raw } => return Ok(Opening::Cancel(raw)),
                StartupPacket::Startup(startup) => return Ok(Opening::Startup(startup)),
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| StartupFailure::Timeout(timeout))?
}

async fn read_packet<S: AsyncRead + Unpin>(client: &mut S) -> Result<Bytes, StartupFailure> {
    let len = check_length(client.read_u32().await?)?;
    let mut packet = BytesMut::zeroed(len);
    packet[..4].copy_from_slice(&(len as u32).to_be_bytes());
    client.read_exact(&mut packet[4..]).await?;
    Ok(packet.freeze())
}

/// Relays a CancelRequest to the upstream server. The server answers nothing and
/// closes; the proxy waits for that close (briefly) so the cancel is delivered
/// before the client's own connection is dropped.
pub async fn forward_cancel(
    upstream: &Upstream,
    raw: Bytes,
    timeout: Duration,
) -> std::io::Result<()> {
    // Cancel requests need no TLS: they carry no secret but the key data.
    let connect = TcpStream::connect((upstream.host.as_str(), upstream.port));
    let mut server = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| std::io::Error::other("timed out"))??;
    server.write_all(&raw).await?;
    let mut sink = [0u8; 64];
    let _ = tokio::time::timeout(timeout, server.read(&mut sink)).await;
    Ok(())
}
