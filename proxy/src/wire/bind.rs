//! Bind ('B') and its answer BindComplete ('2').

use super::cursor::Cursor;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind<'a> {
    pub portal: &'a str,
    pub statement: &'a str,
    /// Parameter format codes, parameter values and result format codes, raw:
    /// everything that, with the statement, decides the response bytes.
    pub arguments: &'a [u8],
}

impl<'a> Bind<'a> {
    /// Reads the names and checks that the rest is well formed.
    pub fn decode(message: &'a [u8]) -> Option<Bind<'a>> {
        let mut c = Cursor::body(message)?;
        let portal = c.cstr()?;
        let statement = c.cstr()?;
        let arguments = c.rest();
        let formats = usize::try_from(c.i16()?).ok()?;
        c.bytes(formats * 2)?;
        let params = usize::try_from(c.i16()?).ok()?;
        for _ in 0..params {
            let len = c.i32()?;
            if len > 0 {
                c.bytes(len as usize)?;
            } else if len < -1 {
                return None;
            }
        }
        let results = usize::try_from(c.i16()?).ok()?;
        c.bytes(results * 2)?;
        c.at_end().then_some(Bind {
            portal,
            statement,
            arguments,
        })
    }
}

pub const BIND_COMPLETE: &[u8] = b"2\0\0\0\x04";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        // portal "", statement "s", 0 formats, 2 params (NULL, "ab"), 1 result format (binary)
        let body: &[u8] = b"\0s\0\0\0\0\x02\xff\xff\xff\xff\0\0\0\x02ab\0\x01\0\x01";
        let mut m = vec![b'B'];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        let b = Bind::decode(&m).unwrap();
        assert_eq!((b.portal, b.statement), ("", "s"));
        assert_eq!(b.arguments, &body[3..]);
        assert!(Bind::decode(&m[..m.len() - 1]).is_none());
    }
}
