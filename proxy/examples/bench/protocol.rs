//! The pieces of the PostgreSQL wire protocol that the tiny client
//! (`minipg`) and the canned-row server (`canned`) both need, written once.

use bytes::BufMut;

/// Protocol 3.0, the version in every StartupMessage.
const PROTOCOL_3_0: u32 = 196_608;

/// Appends one message: type byte, length (counting itself), body.
pub fn put_message(out: &mut impl BufMut, tag: u8, body: &[u8]) {
    out.put_u8(tag);
    out.put_u32(body.len() as u32 + 4);
    out.put_slice(body);
}

/// Appends `s` as a NUL-terminated string.
pub fn put_cstr(out: &mut impl BufMut, s: &str) {
    out.put_slice(s.as_bytes());
    out.put_u8(0);
}

/// Takes a NUL-terminated string off the front of `body` (all of it if
/// there is no NUL).
pub fn take_cstr(body: &mut &[u8]) -> String {
    let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
    let s = String::from_utf8_lossy(&body[..end]).into_owned();
    *body = &body[(end + 1).min(body.len())..];
    s
}

/// A StartupMessage (protocol 3.0) with these parameters.
pub fn startup_packet(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    body.put_u32(PROTOCOL_3_0);
    for (k, v) in params {
        put_cstr(&mut body, k);
        put_cstr(&mut body, v);
    }
    body.put_u8(0);
    let mut packet = Vec::with_capacity(body.len() + 4);
    packet.put_u32(body.len() as u32 + 4);
    packet.extend_from_slice(&body);
    packet
}

/// The body of an ErrorResponse with these (field code, value) pairs.
pub fn error_body(fields: &[(u8, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (code, value) in fields {
        body.put_u8(*code);
        put_cstr(&mut body, value);
    }
    body.put_u8(0);
    body
}

/// The message (`M`) field of an ErrorResponse body.
pub fn error_message(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .find(|f| f.first() == Some(&b'M'))
        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
        .unwrap_or_else(|| "error".into())
}
