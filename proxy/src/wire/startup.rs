//! The first packet of a connection: untyped, `len: u32, code: u32, ...`.
//!
//! It is a StartupMessage (code = protocol version), or one of the special
//! requests that reuse the format with a magic code: SSLRequest, GSSENCRequest,
//! CancelRequest.

use bytes::Bytes;

/// PostgreSQL refuses startup packets longer than this (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_LEN: usize = 10_000;

const CANCEL_REQUEST_CODE: u32 = (1234 << 16) | 5678;
const SSL_REQUEST_CODE: u32 = (1234 << 16) | 5679;
const GSSENC_REQUEST_CODE: u32 = (1234 << 16) | 5680;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    SslRequest,
    GssEncRequest,
    /// Forwarded as is: the client holds the server's own key data, since the
    /// proxy relays BackendKeyData untouched.
    CancelRequest {
        raw: Bytes,
    },
    Startup(Startup),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Startup {
    pub major: u16,
    pub minor: u16,
    /// The whole packet, forwarded verbatim.
    pub raw: Bytes,
}

impl Startup {
    /// The startup parameters as sent, byte for byte, in order, up to the
    /// empty name that ends the list. A name may repeat.
    pub fn raw_params(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut fields = self.raw[8..].split(|&b| b == 0);
        std::iter::from_fn(move || {
            let name = fields.next().filter(|n| !n.is_empty())?;
            let value = fields.next()?;
            Some((name, value))
        })
    }

    /// The startup parameters (`user`, `database`, `options`, GUCs, `_pq_.*`),
    /// in order. A name or value that is not UTF-8 reads as "": such a
    /// packet is shown faithfully only by [`Startup::raw_params`] (see
    /// [`Startup::is_utf8`]).
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.raw_params().map(|(name, value)| {
            (
                std::str::from_utf8(name).unwrap_or(""),
                std::str::from_utf8(value).unwrap_or(""),
            )
        })
    }

    /// Whether every parameter name and value is UTF-8, i.e. whether
    /// [`Startup::params`] shows the packet as the server reads it.
    pub fn is_utf8(&self) -> bool {
        self.raw_params()
            .all(|(n, v)| std::str::from_utf8(n).is_ok() && std::str::from_utf8(v).is_ok())
    }

    /// The value of parameter `name`. When it is sent more than once, the
    /// last one: the server takes the last `user`, `database`, `options` and
    /// setting it reads.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params()
            .filter(|(n, _)| *n == name)
            .last()
            .map(|(_, v)| v)
    }

    /// The same packet with every parameter `name` set to `value` (appended
    /// if absent); every other parameter is kept byte for byte.
    pub fn with_param(&self, name: &str, value: &str) -> Startup {
        let mut body = Vec::with_capacity(self.raw.len() + value.len());
        body.extend_from_slice(&self.raw[4..8]);
        let mut found = false;
        for (n, v) in self.raw_params() {
            let v = if n == name.as_bytes() {
                found = true;
                value.as_bytes()
            } else {
                v
            };
            for part in [n, v] {
                body.extend_from_slice(part);
                body.push(0);
            }
        }
        if !found {
            for part in [name, value] {
                body.extend_from_slice(part.as_bytes());
                body.push(0);
            }
        }
        body.push(0);
        let mut raw = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        raw.extend_from_slice(&body);
        Startup {
            major: self.major,
            minor: self.minor,
            raw: Bytes::from(raw),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartupError {
    #[error("invalid length of startup packet: {0}")]
    InvalidLength(usize),
    #[error("invalid length of cancel request packet: {0}")]
    InvalidCancelLength(usize),
    #[error("unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0")]
    UnsupportedProtocol { major: u16, minor: u16 },
    #[error("invalid startup packet layout: expected terminator as last byte")]
    BadLayout,
}

/// Checks the length word of a startup packet before its body is read.
pub fn check_length(len: u32) -> Result<usize, StartupError> {
    let len = len as usize;
    if !(8..=MAX_STARTUP_LEN).contains(&len) {
        return Err(StartupError::InvalidLength(len));
    }
    Ok(len)
}

impl StartupPacket {
    /// Classifies a whole packet (length word included).
    pub fn parse(raw: Bytes) -> Result<StartupPacket, StartupError> {
        check_length(raw.len() as u32)?;
        let code = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
        match code {
            SSL_REQUEST_CODE => Ok(StartupPacket::SslRequest),
            GSSENC_REQUEST_CODE => Ok(StartupPacket::GssEncRequest),
            CANCEL_REQUEST_CODE if raw.len() == 16 => Ok(StartupPacket::CancelRequest { raw }),
            CANCEL_REQUEST_CODE => Err(StartupError::InvalidCancelLength(raw.len())),
            _ => {
                let (major, minor) = ((code >> 16) as u16, code as u16);
                if major != 3 {
                    return Err(StartupError::UnsupportedProtocol { major, minor });
                }
                // Parameters are NUL-terminated pairs ended by one more NUL.
                if raw.len() < 9 || raw[raw.len() - 1] != 0 {
                    return Err(StartupError::BadLayout);
                }
                Ok(StartupPacket::Startup(Startup { major, minor, raw }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: u32, body: &[u8]) -> Bytes {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(&code.to_be_bytes());
        v.extend_from_slice(body);
        Bytes::from(v)
    }

    #[test]
    fn classifies_packets() {
        assert_eq!(
            StartupPacket::parse(packet(SSL_REQUEST_CODE, b"")),
            Ok(StartupPacket::SslRequest)
        );
        assert_eq!(
            StartupPacket::parse(packet(GSSENC_REQUEST_CODE, b"")),
            Ok(StartupPacket::GssEncRequest)
        );
        assert!(matches!(
            StartupPacket::parse(packet(CANCEL_REQUEST_CODE, &[0; 8])),
            Ok(StartupPacket::CancelRequest { .. })
        ));
        assert_eq!(
            StartupPacket::parse(packet(CANCEL_REQUEST_CODE, &[0; 4])),
            Err(StartupError::InvalidCancelLength(12))
        );
        assert_eq!(
            StartupPacket::parse(packet(2 << 16, b"user\0x\0\0")),
            Err(StartupError::UnsupportedProtocol { major: 2, minor: 0 })
        );
        assert_eq!(
            StartupPacket::parse(packet(3 << 16, b"user\0x")),
            Err(StartupError::BadLayout)
        );
        assert_eq!(
            check_length(100_000),
            Err(StartupError::InvalidLength(100_000))
        );
    }

    #[test]
    fn reads_params() {
        let Ok(StartupPacket::Startup(s)) =
            StartupPacket::parse(packet(3 << 16, b"user\0alice\0database\0shop\0\0"))
        else {
            panic!()
        };
        assert_eq!(s.param("user"), Some("alice"));
        assert_eq!(s.param("database"), Some("shop"));
        assert_eq!(s.param("options"), None);
        assert_eq!(s.params().count(), 2);
        let t = s.with_param("database", "postgres");
        assert_eq!(t.param("database"), Some("postgres"));
        assert_eq!(t.param("user"), Some("alice"));
        assert_eq!(
            StartupPacket::parse(t.raw.clone()),
            Ok(StartupPacket::Startup(t))
        );
    }

    fn startup(body: &[u8]) -> Startup {
        match StartupPacket::parse(packet(3 << 16, body)) {
            Ok(StartupPacket::Startup(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    /// Found by the `startup` fuzz target: PostgreSQL takes the last `user`
    /// and `database` of a packet, so must the proxy (its cache key is
    /// built from them: reading the first let a client logged in as `bob`
    /// share `alice`'s cache entries).
    #[test]
    fn repeated_params_read_as_the_server_reads_them() {
        let s = startup(b"user\0alice\0user\0bob\0database\0a\0database\0shop\0\0");
        assert_eq!(s.param("user"), Some("bob"));
        assert_eq!(s.param("database"), Some("shop"));
        let t = s.with_param("database", "postgres");
        assert_eq!(
            t.params().collect::<Vec<_>>(),
            [
                ("user", "alice"),
                ("user", "bob"),
                ("database", "postgres"),
                ("database", "postgres")
            ]
        );
    }

    /// Found by the `startup` fuzz target: a parameter that is not UTF-8 read
    /// as "", so `with_param` wrote an empty name (the end of the list, for
    /// the server) or blanked the value.
    #[test]
    fn with_param_keeps_non_utf8_params_byte_for_byte() {
        let s = startup(b"user\0jos\xe9\0\x9c\0v\0options\0\xff\0\0");
        assert!(!s.is_utf8());
        assert_eq!(s.param("user"), Some(""));
        let t = s.with_param("database", "postgres");
        assert_eq!(
            &t.raw[8..],
            &b"user\0jos\xe9\0\x9c\0v\0options\0\xff\0database\0postgres\0\0"[..]
        );
        assert_eq!(
            StartupPacket::parse(t.raw.clone()),
            Ok(StartupPacket::Startup(t))
        );
        assert!(startup(b"user\0alice\0\0").is_utf8());
    }
}
