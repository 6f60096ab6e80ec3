//! The PostgreSQL wire protocol as the proxy needs it: no I/O here.
//!
//! The proxy relays raw bytes. It frames messages to decide things, and parses a
//! message only when a decision depends on its contents, lazily and on the raw
//! `Bytes` of the frame. One file per message kind that the proxy reads or builds.

pub mod bind;
pub mod cursor;
pub mod describe;
pub mod encode;
pub mod error_response;
pub mod execute;
pub mod framer;
pub mod parameter_status;
pub mod parse;
pub mod query;
pub mod ready_for_query;
pub mod replication;
pub mod result_set;
pub mod startup;

pub use error_response::{ErrorResponse, SqlState};
pub use framer::{FrameError, Framer, Piece};
pub use ready_for_query::TxStatus;
pub use startup::{StartupError, StartupPacket};

/// Message type bytes sent by the server that the proxy looks at.
pub mod backend {
    pub const BIND_COMPLETE: u8 = b'2';
    pub const COMMAND_COMPLETE: u8 = b'C';
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    pub const COPY_IN_RESPONSE: u8 = b'G';
    pub const DATA_ROW: u8 = b'D';
    pub const NOTICE_RESPONSE: u8 = b'N';
    pub const PARSE_COMPLETE: u8 = b'1';
    pub const ROW_DESCRIPTION: u8 = b'T';
    pub const AUTHENTICATION: u8 = b'R';
    pub const BACKEND_KEY_DATA: u8 = b'K';
    pub const ERROR_RESPONSE: u8 = b'E';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const READY_FOR_QUERY: u8 = b'Z';
}

/// Message type bytes sent by the client that the proxy looks at.
pub mod frontend {
    pub const BIND: u8 = b'B';
    pub const CLOSE: u8 = b'C';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_FAIL: u8 = b'f';
    pub const DESCRIBE: u8 = b'D';
    pub const EXECUTE: u8 = b'E';
    pub const FLUSH: u8 = b'H';
    pub const FUNCTION_CALL: u8 = b'F';
    pub const PARSE: u8 = b'P';
    pub const QUERY: u8 = b'Q';
    pub const SYNC: u8 = b'S';
    pub const TERMINATE: u8 = b'X';
    /// A whole Sync message, for the ones the proxy sends itself.
    pub const SYNC_MESSAGE: &[u8] = b"S\0\0\0\x04";
}

/// PostgreSQL rejects any regular message longer than this (`PQ_LARGE_MESSAGE_LIMIT`,
/// 1 GiB - 1); the proxy uses it as the default ceiling for a single message.
pub const MAX_MESSAGE_LEN: usize = 0x3fff_ffff;
