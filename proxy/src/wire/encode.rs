//! Framing for the messages the proxy (and its tests, benches, fuzz harness
//! and bench tool) build themselves: tag, length, body. The relay never
//! re-encodes what it forwards; these are only for messages of its own.

use bytes::{BufMut, BytesMut};

/// Appends one regular message: `tag`, a length that counts itself, `body`.
pub fn frame_into(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.reserve(body.len() + 5);
    out.put_u8(tag);
    out.put_u32(body.len() as u32 + 4);
    out.put_slice(body);
}

/// One regular message, as its own buffer.
pub fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(tag);
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Appends a NUL-terminated string; NULs inside `s` are dropped, since the
/// protocol cannot carry them.
pub fn cstr_into(out: &mut Vec<u8>, s: &str) {
    out.extend(s.bytes().filter(|&b| b != 0));
    out.push(0);
}

/// Terminate ('X'): the session ends cleanly.
pub const TERMINATE: &[u8] = b"X\0\0\0\x04";

/// CopyFail ('f') with `reason`: the server aborts a COPY FROM STDIN.
pub fn copy_fail(reason: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(reason.len() + 1);
    cstr_into(&mut body, reason);
    frame(b'f', &body)
}

/// A StartupMessage for protocol `major.minor` with `params` (name, value).
pub fn startup(major: u16, minor: u16, params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = ((u32::from(major) << 16) | u32::from(minor))
        .to_be_bytes()
        .to_vec();
    for (name, value) in params {
        cstr_into(&mut body, name);
        cstr_into(&mut body, value);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Framer, Piece, StartupPacket};

    #[test]
    fn built_messages_read_back() {
        let mut out = BytesMut::new();
        frame_into(&mut out, b'Q', b"SELECT 1\0");
        out.extend_from_slice(&copy_fail("gone"));
        out.extend_from_slice(TERMINATE);
        let mut framer = Framer::new(1 << 20, 1 << 20);
        let mut tags = Vec::new();
        while let Some(Piece::Message { tag, bytes }) = framer.next(&mut out).unwrap() {
            if tag == b'f' {
                assert_eq!(&bytes[5..], b"gone\0");
            }
            tags.push(tag);
        }
        assert_eq!(tags, b"QfX");
        assert_eq!(frame(b'S', &[]), b"S\0\0\0\x04");
        let packet = startup(3, 0, &[("user", "alice"), ("database", "shop")]);
        match StartupPacket::parse(packet.into()) {
            Ok(StartupPacket::Startup(s)) => {
                assert_eq!(s.param("user"), Some("alice"));
                assert_eq!(s.param("database"), Some("shop"));
            }
            other => panic!("{other:?}"),
        }
    }
}
