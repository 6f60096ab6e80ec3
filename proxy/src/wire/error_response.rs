//! ErrorResponse ('E'): built when the proxy itself must refuse or report something,
//! and read (severity, code) when relaying the server's.

use bytes::{BufMut, Bytes, BytesMut};

/// A SQLSTATE code, as PostgreSQL documents them (Appendix A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlState(pub &'static str);

impl SqlState {
    pub const PROTOCOL_VIOLATION: SqlState = SqlState("08P01");
    pub const CONNECTION_FAILURE: SqlState = SqlState("08006");
    pub const SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION: SqlState = SqlState("08001");
    pub const FEATURE_NOT_SUPPORTED: SqlState = SqlState("0A000");
    pub const TOO_MANY_CONNECTIONS: SqlState = SqlState("53300");
    pub const PROGRAM_LIMIT_EXCEEDED: SqlState = SqlState("54000");
    pub const ADMIN_SHUTDOWN: SqlState = SqlState("57P01");
    pub const IDLE_SESSION_TIMEOUT: SqlState = SqlState("57P05");
    pub const INVALID_AUTHORIZATION_SPECIFICATION: SqlState = SqlState("28000");
}

/// An error the proxy sends to a client in PostgreSQL's format.
#[derive(Debug, Clone)]
pub struct ErrorResponse {
    pub severity: &'static str,
    pub code: SqlState,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl ErrorResponse {
    /// FATAL: the connection ends after it.
    pub fn fatal(code: SqlState, message: impl Into<String>) -> Self {
        Self::new("FATAL", code, message)
    }

    /// ERROR: the statement fails, the session goes on.
    pub fn error(code: SqlState, message: impl Into<String>) -> Self {
        Self::new("ERROR", code, message)
    }

    fn new(severity: &'static str, code: SqlState, message: impl Into<String>) -> Self {
        ErrorResponse {
            severity,
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The message on the wire.
    pub fn encode(&self) -> Bytes {
        let mut body = BytesMut::with_capacity(64 + self.message.len());
        // Both the localized (S) and the non-localized (V) severity, as servers >= 9.6 send.
        put_field(&mut body, b'S', self.severity);
        put_field(&mut body, b'V', self.severity);
        put_field(&mut body, b'C', self.code.0);
        put_field(&mut body, b'M', &self.message);
        if let Some(d) = &self.detail {
            put_field(&mut body, b'D', d);
        }
        if let Some(h) = &self.hint {
            put_field(&mut body, b'H', h);
        }
        body.put_u8(0);
        let mut out = BytesMut::with_capacity(body.len() + 5);
        out.put_u8(b'E');
        out.put_u32(body.len() as u32 + 4);
        out.extend_from_slice(&body);
        out.freeze()
    }
}

fn put_field(buf: &mut BytesMut, code: u8, value: &str) {
    buf.put_u8(code);
    // A NUL inside a value would end the field early; the proxy's own texts have
    // none, but names echoed from clients might.
    buf.extend(value.bytes().filter(|&b| b != 0));
    buf.put_u8(0);
}

/// The SQLSTATE of a relayed ErrorResponse (whole message with header).
pub fn sqlstate_of(message: &[u8]) -> Option<&[u8]> {
    field_of(message, b'C')
}

/// Whether a relayed ErrorResponse is a syntax error (42601) at a position
/// of the client's own text (field 'P'), so the server ran none of it.
pub fn is_syntax_error_in_text(message: &[u8]) -> bool {
    sqlstate_of(message) == Some(b"42601") && field_of(message, b'P').is_some()
}

fn field_of(message: &[u8], wanted: u8) -> Option<&[u8]> {
    let mut fields = message.get(5..)?;
    while let Some((&code, rest)) = fields.split_first() {
        if code == 0 {
            break;
        }
        let end = rest.iter().position(|&b| b == 0)?;
        if code == wanted {
            return Some(&rest[..end]);
        }
        fields = &rest[end + 1..];
    }
    None
}

/// The non-localized severity of a relayed ErrorResponse (whole message with
/// header), e.g. "FATAL". `None` if the message is malformed.
pub fn severity_of(message: &[u8]) -> Option<&[u8]> {
    let mut fields = message.get(5..)?;
    let mut localized = None;
    while let Some((&code, rest)) = fields.split_first() {
        if code == 0 {
            break;
        }
        let end = rest.iter().position(|&b| b == 0)?;
        match code {
            b'V' => return Some(&rest[..end]),
            b'S' => localized = Some(&rest[..end]),
            _ => {}
        }
        fields = &rest[end + 1..];
    }
    localized
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_fields_and_reads_severity_back() {
        let e = ErrorResponse::fatal(SqlState::PROTOCOL_VIOLATION, "bad\0thing")
            .with_detail("d")
            .encode();
        assert_eq!(e[0], b'E');
        assert_eq!(
            u32::from_be_bytes([e[1], e[2], e[3], e[4]]) as usize,
            e.len() - 1
        );
        assert!(e.windows(7).any(|w| w == b"Mbadthi"));
        assert_eq!(severity_of(&e), Some(&b"FATAL"[..]));
        assert_eq!(severity_of(b"E\0\0\0\x05"), None);
        assert_eq!(severity_of(b"E\0\0\0\x09SERR"), None);
    }
}
