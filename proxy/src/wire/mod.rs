//! The PostgreSQL wire protocol as the proxy needs it: no I/O here.
//!
//! The proxy relays raw bytes. It frames messages to decide things, and parses a
//! message only when a decision depends on its contents, lazily and on the raw
//! `Bytes` of the frame. One file per message kind that the proxy reads or builds.

pub mod error_response;
pub mod framer;
pub mod parameter_status;
pub mod ready_for_query;
pub mod startup;

pub use error_response::{ErrorResponse, SqlState};
pub use framer::{FrameError, Framer, Piece};
pub use ready_for_query::TxStatus;
pub use startup::{StartupError, StartupPacket};

/// Message type bytes sent by the server that the proxy looks at.
pub mod backend {
    pub const AUTHENTICATION: u8 = b'R';
    pub const BACKEND_KEY_DATA: u8 = b'K';
    pub const ERROR_RESPONSE: u8 = b'E';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const READY_FOR_QUERY: u8 = b'Z';
}

/// Message type bytes sent by the client that the proxy looks at.
pub mod frontend {
    pub const TERMINATE: u8 = b'X';
}

/// PostgreSQL rejects any regular message longer than this (`PQ_LARGE_MESSAGE_LIMIT`,
/// 1 GiB - 1); the proxy uses it as the default ceiling for a single message.
pub const MAX_MESSAGE_LEN: usize = 0x3fff_ffff;
