//! Execute ('E').

use super::cursor::Cursor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Execute<'a> {
    pub portal: &'a str,
    /// 0 = all rows.
    pub max_rows: i32,
}

impl<'a> Execute<'a> {
    pub fn decode(message: &'a [u8]) -> Option<Execute<'a>> {
        let mut c = Cursor::body(message)?;
        let portal = c.cstr()?;
        let max_rows = c.i32()?;
        c.at_end().then_some(Execute { portal, max_rows })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        let e = super::Execute::decode(b"E\0\0\0\x09\0\0\0\0\x05").unwrap();
        assert_eq!((e.portal, e.max_rows), ("", 5));
        assert!(super::Execute::decode(b"E\0\0\0\x08\0\0\0\0").is_none());
    }
}
