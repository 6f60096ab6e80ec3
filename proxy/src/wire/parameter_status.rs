//! ParameterStatus ('S'): a run-time setting the server reports (at startup and
//! whenever a reported setting changes).

/// Name and value of a whole ParameterStatus message (header included).
pub fn parse(message: &[u8]) -> Option<(&str, &str)> {
    let body = message.get(5..)?;
    let mut parts = body.split(|&b| b == 0);
    let name = std::str::from_utf8(parts.next()?).ok()?;
    let value = std::str::from_utf8(parts.next()?).ok()?;
    Some((name, value))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_name_and_value() {
        let m = b"S\0\0\0\x17TimeZone\0Etc/UTC\0";
        assert_eq!(super::parse(m), Some(("TimeZone", "Etc/UTC")));
        assert_eq!(super::parse(b"S"), None);
    }
}
