//! The streaming-replication messages that travel inside CopyData ('d') once
//! `START_REPLICATION` has switched the connection to CopyBoth: what the
//! server sends (XLogData 'w', primary keepalive 'k') and what a standby
//! answers (standby status update 'r'). No I/O here.
//!
//! LSNs and times are big-endian 64-bit integers; times count microseconds
//! since 2000-01-01 00:00:00 UTC, the server's epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// CopyData, the frame every replication message travels in.
pub const COPY_DATA: u8 = b'd';
/// CopyDone: either side ends the stream.
pub const COPY_DONE: u8 = b'c';

const XLOG_DATA: u8 = b'w';
const KEEPALIVE: u8 = b'k';
const STANDBY_STATUS: u8 = b'r';

/// Seconds between the Unix epoch and the server's (2000-01-01).
const PG_EPOCH_OFFSET: Duration = Duration::from_secs(946_684_800);

/// A WAL position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Lsn(pub u64);

impl std::fmt::Display for Lsn {
    /// The server's own spelling, `16/B374D848`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

/// A message from the server inside a CopyData payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage<'a> {
    /// WAL (for logical replication: one decoded change, as the plugin wrote it).
    XLogData {
        start: Lsn,
        /// The server's current end of WAL.
        end: Lsn,
        send_time: i64,
        data: &'a [u8],
    },
    /// "Still here"; with `reply_requested` the server wants a status update
    /// now, or it ends the connection after `wal_sender_timeout`.
    Keepalive {
        end: Lsn,
        send_time: i64,
        reply_requested: bool,
    },
}

/// Why a CopyData payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicationError {
    #[error("empty replication message")]
    Empty,
    #[error("replication message '{kind}' is {len} bytes, shorter than its header")]
    Short { kind: char, len: usize },
    #[error("unknown replication message type {0:?}")]
    Unknown(char),
}

/// Reads the payload of one CopyData message (without the 'd' header).
/// `data` of XLogData borrows from `payload`.
pub fn decode(payload: &[u8]) -> Result<ServerMessage<'_>, ReplicationError> {
    let (&kind, rest) = payload.split_first().ok_or(ReplicationError::Empty)?;
    let short = || ReplicationError::Short {
        kind: kind as char,
        len: payload.len(),
    };
    match kind {
        XLOG_DATA => {
            if rest.len() < 24 {
                return Err(short());
            }
            Ok(ServerMessage::XLogData {
                start: Lsn(be_u64(&rest[0..8])),
                end: Lsn(be_u64(&rest[8..16])),
                send_time: be_u64(&rest[16..24]) as i64,
                data: &rest[24..],
            })
        }
        KEEPALIVE => {
            if rest.len() < 17 {
                return Err(short());
            }
            Ok(ServerMessage::Keepalive {
                end: Lsn(be_u64(&rest[0..8])),
                send_time: be_u64(&rest[8..16]) as i64,
                reply_requested: rest[16] != 0,
            })
        }
        other => Err(ReplicationError::Unknown(other as char)),
    }
}

/// The length of XLogData's header inside the CopyData payload ('w' and three
/// 64-bit fields): a reader that keeps only a prefix of a large change must
/// keep at least this much.
pub const XLOG_DATA_HEADER: usize = 25;

/// What a standby reports: WAL up to `flushed` may be recycled by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandbyStatus {
    pub written: Lsn,
    pub flushed: Lsn,
    pub applied: Lsn,
    /// Microseconds since the server's epoch.
    pub time: i64,
    /// Ask the server to answer with a keepalive at once.
    pub reply_requested: bool,
}

impl StandbyStatus {
    /// The whole CopyData message carrying this update.
    pub fn encode(&self) -> Vec<u8> {
        let mut payload = Vec::with_capacity(34);
        payload.push(STANDBY_STATUS);
        payload.extend_from_slice(&self.written.0.to_be_bytes());
        payload.extend_from_slice(&self.flushed.0.to_be_bytes());
        payload.extend_from_slice(&self.applied.0.to_be_bytes());
        payload.extend_from_slice(&self.time.to_be_bytes());
        payload.push(u8::from(self.reply_requested));
        copy_data(&payload)
    }
}

/// Wraps `payload` in a CopyData message.
pub fn copy_data(payload: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(payload.len() + 5);
    message.push(COPY_DATA);
    message.extend_from_slice(&((payload.len() + 4) as u32).to_be_bytes());
    message.extend_from_slice(payload);
    message
}

/// Now, in microseconds since the server's epoch.
pub fn pg_now() -> i64 {
    let since_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let since_pg = since_unix.saturating_sub(PG_EPOCH_OFFSET);
    i64::try_from(since_pg.as_micros()).unwrap_or(i64::MAX)
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(bytes);
    u64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_xlog_data() {
        let mut payload = vec![b'w'];
        payload.extend_from_slice(&0x16_B374_D848u64.to_be_bytes());
        payload.extend_from_slice(&0x17_0000_0000u64.to_be_bytes());
        payload.extend_from_slice(&42i64.to_be_bytes());
        payload.extend_from_slice(b"BEGIN 7");
        assert_eq!(
            decode(&payload),
            Ok(ServerMessage::XLogData {
                start: Lsn(0x16_B374_D848),
                end: Lsn(0x17_0000_0000),
                send_time: 42,
                data: b"BEGIN 7",
            })
        );
        assert_eq!(Lsn(0x16_B374_D848).to_string(), "16/B374D848");
    }

    #[test]
    fn decodes_an_xlog_data_without_data() {
        let mut payload = vec![b'w'];
        payload.extend_from_slice(&[0; 24]);
        assert!(matches!(
            decode(&payload),
            Ok(ServerMessage::XLogData { data: &[], .. })
        ));
        assert_eq!(payload.len(), XLOG_DATA_HEADER);
    }

    #[test]
    fn decodes_keepalives() {
        let mut payload = vec![b'k'];
        payload.extend_from_slice(&5u64.to_be_bytes());
        payload.extend_from_slice(&(-1i64).to_be_bytes());
        payload.push(1);
        assert_eq!(
            decode(&payload),
            Ok(ServerMessage::Keepalive {
                end: Lsn(5),
                send_time: -1,
                reply_requested: true,
            })
        );
        *payload.last_mut().unwrap() = 0;
        assert!(matches!(
            decode(&payload),
            Ok(ServerMessage::Keepalive {
                reply_requested: false,
                ..
            })
        ));
    }

    #[test]
    fn refuses_short_empty_and_unknown_messages() {
        assert_eq!(decode(b""), Err(ReplicationError::Empty));
        assert_eq!(
            decode(b"k\0\0"),
            Err(ReplicationError::Short { kind: 'k', len: 3 })
        );
        assert_eq!(
            decode(&[b'w'; 24]),
            Err(ReplicationError::Short { kind: 'w', len: 24 })
        );
        assert_eq!(decode(b"x123"), Err(ReplicationError::Unknown('x')));
    }

    #[test]
    fn encodes_a_standby_status_update() {
        let status = StandbyStatus {
            written: Lsn(1),
            flushed: Lsn(0x0102_0304_0506_0708),
            applied: Lsn(3),
            time: 4,
            reply_requested: true,
        };
        let bytes = status.encode();
        assert_eq!(bytes[0], b'd');
        assert_eq!(&bytes[1..5], &38u32.to_be_bytes());
        assert_eq!(bytes[5], b'r');
        assert_eq!(&bytes[6..14], &1u64.to_be_bytes());
        assert_eq!(&bytes[14..22], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[22..30], &3u64.to_be_bytes());
        assert_eq!(&bytes[30..38], &4i64.to_be_bytes());
        assert_eq!(bytes[38], 1);
        assert_eq!(bytes.len(), 39);
    }

    #[test]
    fn the_server_epoch_is_2000() {
        // 2026 is about 26 years after the server's epoch.
        let years = pg_now() / 1_000_000 / 86_400 / 365;
        assert!((20..100).contains(&years), "{years}");
    }
}
