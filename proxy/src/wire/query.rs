//! Query ('Q'): a simple-protocol query string.

/// The SQL text of a whole Query message (header included); `None` if malformed
/// (not NUL-terminated or not UTF-8: the server will say so, the proxy just
/// won't cache it).
pub fn text(message: &[u8]) -> Option<&str> {
    let body = message.get(5..)?;
    let (last, text) = body.split_last()?;
    if *last != 0 {
        return None;
    }
    std::str::from_utf8(text).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_text() {
        assert_eq!(super::text(b"Q\0\0\0\x0dSELECT 1\0"), Some("SELECT 1"));
        assert_eq!(super::text(b"Q\0\0\0\x0cSELECT 1"), None);
        assert_eq!(super::text(b"Q"), None);
    }
}
