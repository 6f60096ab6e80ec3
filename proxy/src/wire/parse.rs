//! Parse ('P') and its answer ParseComplete ('1').

use super::cursor::Cursor;

/// The parts of a Parse message the proxy needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse<'a> {
    /// "" is the unnamed statement.
    pub statement: &'a str,
    pub query: &'a str,
    /// The declared parameter type OIDs, raw (they change the meaning of `$n`).
    pub param_types: &'a [u8],
}

impl<'a> Parse<'a> {
    pub fn decode(message: &'a [u8]) -> Option<Parse<'a>> {
        let mut c = Cursor::body(message)?;
        let statement = c.cstr()?;
        let query = c.cstr()?;
        let n = c.i16()?;
        let param_types = c.bytes(usize::try_from(n).ok()? * 4)?;
        c.at_end().then_some(Parse {
            statement,
            query,
            param_types,
        })
    }
}

pub const PARSE_COMPLETE: &[u8] = b"1\0\0\0\x04";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let m = b"P\0\0\0\x1as1\0SELECT $1\0\0\x01\0\0\0\x17";
        let p = Parse::decode(m).unwrap();
        assert_eq!((p.statement, p.query), ("s1", "SELECT $1"));
        assert_eq!(p.param_types, &[0, 0, 0, 0x17]);
        assert!(Parse::decode(&m[..m.len() - 1]).is_none());
        assert!(Parse::decode(b"P\0\0\0\x04").is_none());
    }
}
