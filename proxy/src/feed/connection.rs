//! A replication connection (`replication=database`) as the service account,
//! on the proxy's own wire code: tokio-postgres cannot open one.
//!
//! Login answers trust, cleartext password, MD5 and SCRAM-SHA-256 (the SASL
//! arithmetic is postgres-protocol's; channel binding is not offered, as
//! libpq's `channel_binding=prefer` does without a certificate hash). TLS is
//! the upstream's, negotiated by [`crate::upstream::connect`].

use std::sync::Arc;
use std::time::Duration;

use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};

use crate::config::Upstream;
use crate::upstream::UpstreamStream;
use crate::wire::backend;

const APPLICATION_NAME: &str = "pgcache-feed";

/// Authentication answers a login may get, beyond the first byte of 'R'.
const AUTH_OK: u32 = 0;
const AUTH_CLEARTEXT: u32 = 3;
const AUTH_MD5: u32 = 5;
const AUTH_SASL: u32 = 10;
const AUTH_SASL_CONTINUE: u32 = 11;
const AUTH_SASL_FINAL: u32 = 12;

/// Any message longer than this outside the stream (a login exchange, a
/// command's answer) is refused: nothing the feed asks for is near it.
const MAX_CONTROL_MESSAGE: usize = 1 << 20;

/// Why the feed could not connect or lost its connection.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FeedError {
    #[error("{0}")]
    Io(String),
    /// The server refused: `code` is its SQLSTATE.
    #[error("{message} (SQLSTATE {code})")]
    Server { code: String, message: String },
    #[error("{0}")]
    Protocol(String),
    /// The database's catalog could not be loaded, so neither can a stream's
    /// commits be resolved.
    #[error("catalog unavailable: {0}")]
    Catalog(String),
    /// A statement that needs the database unused (DROP DATABASE and the
    /// like) is being relayed: the stream stopped on purpose.
    #[error("released for a statement that needs the database unused")]
    Released,
}

impl From<std::io::Error> for FeedError {
    fn from(e: std::io::Error) -> Self {
        FeedError::Io(e.to_string())
    }
}

impl FeedError {
    /// Reads an ErrorResponse body.
    pub(super) fn from_error_response(body: &[u8]) -> FeedError {
        let field = |tag: u8| {
            body.split(|&b| b == 0)
                .find_map(|f| f.strip_prefix(&[tag]))
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .unwrap_or_default()
        };
        FeedError::Server {
            code: field(b'C'),
            message: field(b'M'),
        }
    }

    /// Every [`reason`](FeedError::reason).
    pub const REASONS: &'static [&'static str] = &[
        "connection",
        "privilege",
        "wal_level",
        "slots",
        "server",
        "protocol",
        "catalog",
    ];

    /// A short label for the restart metric: the refusals an operator fixes
    /// with one setting have their own.
    pub fn reason(&self) -> &'static str {
        match self {
            FeedError::Io(_) => "connection",
            // "must be superuser or replication role to start walsender"
            FeedError::Server { code, .. } if code == "42501" => "privilege",
            // "logical decoding requires wal_level >= logical"
            FeedError::Server { code, message }
                if code == "55000" && message.contains("wal_level") =>
            {
                "wal_level"
            }
            // "all replication slots are in use", "number of requested
            // standby connections exceeds max_wal_senders"
            FeedError::Server { code, .. } if code == "53400" => "slots",
            FeedError::Server { .. } => "server",
            FeedError::Protocol(_) => "protocol",
            FeedError::Catalog(_) | FeedError::Released => "catalog",
        }
    }

    /// What the operator can do about it, when one setting fixes it.
    pub fn hint(&self, user: &str) -> Option<String> {
        match self.reason() {
            "privilege" => Some(format!(
                "the service account needs the REPLICATION attribute: ALTER ROLE \"{user}\" REPLICATION"
            )),
            "wal_level" => Some(
                "the server needs ALTER SYSTEM SET wal_level = logical, then a restart".to_string(),
            ),
            "slots" => Some(
                "raise max_replication_slots and max_wal_senders on the server (each database the proxy follows takes one of each)"
                    .to_string(),
            ),
            _ => None,
        }
    }
}

/// One message from the server; `body` holds at most the prefix the reader
/// asked for.
#[derive(Debug)]
pub struct Message {
    pub tag: u8,
    pub body: Vec<u8>,
}

/// An open replication connection.
pub struct ReplicationConnection {
    stream: BufReader<UpstreamStream>,
}

impl ReplicationConnection {
    /// Connects to `database` and logs in as the upstream's service account.
    pub async fn open(
        upstream: &Upstream,
        tls: Option<&Arc<tokio_rustls::rustls::ClientConfig>>,
        database: &str,
        timeout: Duration,
    ) -> Result<ReplicationConnection, FeedError> {
        let stream = crate::upstream::connect(upstream, tls, timeout)
            .await
            .map_err(|e| FeedError::Io(e.message))?;
        let mut conn = ReplicationConnection {
            stream: BufReader::new(stream),
        };
        let login = conn.login(upstream, database);
        tokio::time::timeout(timeout, login)
            .await
            .map_err(|_| FeedError::Io(format!("login timed out after {timeout:?}")))??;
        Ok(conn)
    }

    async fn login(&mut self, upstream: &Upstream, database: &str) -> Result<(), FeedError> {
        self.send(&startup_packet(&upstream.user, database)).await?;
        let password = || {
            upstream.password.as_deref().ok_or_else(|| {
                FeedError::Protocol(
                    "the server asks for a password and the upstream URL has none".into(),
                )
            })
        };
        let mut scram: Option<ScramSha256> = None;
        loop {
            let m = self.read(MAX_CONTROL_MESSAGE).await?;
            match m.tag {
                backend::AUTHENTICATION => {
                    let code = be_u32(&m.body)?;
                    let data = &m.body[4..];
                    match code {
                        AUTH_OK => {}
                        AUTH_CLEARTEXT => {
                            self.send(&password_message(password()?.as_bytes())).await?
                        }
                        AUTH_MD5 => {
                            let salt: [u8; 4] = data
                                .get(..4)
                                .and_then(|s| s.try_into().ok())
                                .ok_or_else(|| FeedError::Protocol("short MD5 salt".into()))?;
                            let hash =
                                md5_hash(upstream.user.as_bytes(), password()?.as_bytes(), salt);
                            self.send(&password_message(hash.as_bytes())).await?;
                        }
                        AUTH_SASL => {
                            let offered = data
                                .split(|&b| b == 0)
                                .any(|m| m == SCRAM_SHA_256.as_bytes());
                            if !offered {
                                return Err(FeedError::Protocol(
                                    "the server offers no SASL mechanism the feed supports".into(),
                                ));
                            }
                            let client = ScramSha256::new(
                                password()?.as_bytes(),
                                ChannelBinding::unsupported(),
                            );
                            self.send(&sasl_initial(client.message())).await?;
                            scram = Some(client);
                        }
                        AUTH_SASL_CONTINUE | AUTH_SASL_FINAL => {
                            let client = scram.as_mut().ok_or_else(|| {
                                FeedError::Protocol("SASL message before SASL started".into())
                            })?;
                            let step = if code == AUTH_SASL_CONTINUE {
                                client.update(data)
                            } else {
                                client.finish(data)
                            };
                            step.map_err(|e| FeedError::Protocol(format!("SCRAM: {e}")))?;
                            if code == AUTH_SASL_CONTINUE {
                                self.send(&password_message_raw(client.message())).await?;
                            }
                        }
                        other => {
                            return Err(FeedError::Protocol(format!(
                                "authentication method {other} is not supported by the feed"
                            )))
                        }
                    }
                }
                backend::ERROR_RESPONSE => return Err(FeedError::from_error_response(&m.body)),
                backend::READY_FOR_QUERY => return Ok(()),
                // ParameterStatus, BackendKeyData, notices.
                _ => {}
            }
        }
    }

    /// Runs one replication command and returns the rows of its answer
    /// (each row's columns as text; NULL as `None`).
    pub async fn command(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, FeedError> {
        self.send(&query_message(sql)).await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let m = self.read(MAX_CONTROL_MESSAGE).await?;
            match m.tag {
                backend::DATA_ROW => rows.push(data_row(&m.body)?),
                backend::ERROR_RESPONSE => error = Some(FeedError::from_error_response(&m.body)),
                backend::READY_FOR_QUERY => {
                    return match error {
                        Some(e) => Err(e),
                        None => Ok(rows),
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends a command that switches to CopyBoth (START_REPLICATION) and
    /// waits for the switch.
    pub async fn start_copy_both(&mut self, sql: &str) -> Result<(), FeedError> {
        self.send(&query_message(sql)).await?;
        loop {
            let m = self.read(MAX_CONTROL_MESSAGE).await?;
            match m.tag {
                backend::COPY_BOTH_RESPONSE => return Ok(()),
                backend::ERROR_RESPONSE => return Err(FeedError::from_error_response(&m.body)),
                _ => {}
            }
        }
    }

    /// Reads the next message, keeping at most `keep` bytes of its body and
    /// skipping the rest: memory stays bounded however large a row is.
    pub async fn read(&mut self, keep: usize) -> Result<Message, FeedError> {
        let tag = self.stream.read_u8().await?;
        let len = (self.stream.read_u32().await? as usize)
            .checked_sub(4)
            .ok_or_else(|| FeedError::Protocol("message length below 4".into()))?;
        let kept = len.min(keep);
        let mut body = vec![0; kept];
        self.stream.read_exact(&mut body).await?;
        let rest = (len - kept) as u64;
        if rest > 0 {
            let skipped =
                tokio::io::copy(&mut (&mut self.stream).take(rest), &mut tokio::io::sink()).await?;
            if skipped != rest {
                return Err(FeedError::Io("the server closed the connection".into()));
            }
        }
        Ok(Message { tag, body })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), FeedError> {
        let stream = self.stream.get_mut();
        stream.write_all(bytes).await?;
        stream.flush().await?;
        Ok(())
    }

    /// Ends the session politely (Terminate), so the server drops the
    /// temporary slot at once.
    pub async fn close(mut self) {
        let _ = self.send(b"X\0\0\0\x04").await;
        let _ = self.stream.get_mut().shutdown().await;
    }

    /// Ends the session and waits (at most `wait`) until the server closes
    /// its side: the walsender has exited, so its temporary slot is gone
    /// (the server refuses DROP DATABASE while a slot on it is active).
    /// Whatever the server still sends is skipped unread.
    pub async fn close_and_wait(mut self, wait: std::time::Duration) {
        let _ = self.send(b"X\0\0\0\x04").await;
        let mut sink = tokio::io::sink();
        let drain = tokio::io::copy(&mut self.stream, &mut sink);
        let _ = tokio::time::timeout(wait, drain).await;
    }
}

fn be_u32(body: &[u8]) -> Result<u32, FeedError> {
    body.get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| FeedError::Protocol("short message".into()))
}

fn startup_packet(user: &str, database: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (key, value) in [
        ("user", user),
        ("database", database),
        ("replication", "database"),
        ("application_name", APPLICATION_NAME),
    ] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend(value.bytes().filter(|&b| b != 0));
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(tag);
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// PasswordMessage with a NUL-terminated password or hash.
fn password_message(secret: &[u8]) -> Vec<u8> {
    let mut body = secret.to_vec();
    body.push(0);
    message(b'p', &body)
}

/// SASLResponse: the same 'p' tag, the data as is.
fn password_message_raw(data: &[u8]) -> Vec<u8> {
    message(b'p', data)
}

fn sasl_initial(data: &[u8]) -> Vec<u8> {
    let mut body = SCRAM_SHA_256.as_bytes().to_vec();
    body.push(0);
    body.extend_from_slice(&(data.len() as i32).to_be_bytes());
    body.extend_from_slice(data);
    message(b'p', &body)
}

fn query_message(sql: &str) -> Vec<u8> {
    let mut body = sql.as_bytes().to_vec();
    body.push(0);
    message(b'Q', &body)
}

fn data_row(body: &[u8]) -> Result<Vec<Option<String>>, FeedError> {
    let short = || FeedError::Protocol("short DataRow".into());
    let count = u16::from_be_bytes([
        *body.first().ok_or_else(short)?,
        *body.get(1).ok_or_else(short)?,
    ]);
    let mut at = 2;
    let mut row = Vec::with_capacity(count.into());
    for _ in 0..count {
        let len = i32::from_be_bytes(
            body.get(at..at + 4)
                .ok_or_else(short)?
                .try_into()
                .unwrap_or_default(),
        );
        at += 4;
        if len < 0 {
            row.push(None);
            continue;
        }
        let value = body.get(at..at + len as usize).ok_or_else(short)?;
        row.push(Some(String::from_utf8_lossy(value).into_owned()));
        at += len as usize;
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_for_a_database_replication_connection() {
        let p = startup_packet("svc", "db");
        assert_eq!(
            u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize,
            p.len()
        );
        assert!(p.windows(21).any(|w| w == b"replication\0database\0"));
        assert!(p.ends_with(b"pgcache-feed\0\0"));
    }

    #[test]
    fn reads_data_rows() {
        let mut body = 2u16.to_be_bytes().to_vec();
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"ok");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(data_row(&body).unwrap(), vec![Some("ok".into()), None]);
        assert!(data_row(&body[..5]).is_err());
    }

    #[test]
    fn reads_server_errors() {
        let e = FeedError::from_error_response(b"SERROR\0C42704\0Mno such slot\0\0");
        assert_eq!(e.to_string(), "no such slot (SQLSTATE 42704)");
    }
}
