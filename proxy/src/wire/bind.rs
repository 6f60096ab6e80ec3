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

impl Bind<'_> {
    /// The parameter values whose format is text (`None` for NULL). Formats: no
    /// codes means all text, one code applies to all, else one per parameter.
    pub fn text_params(&self) -> Vec<Option<&[u8]>> {
        let mut out = Vec::new();
        let Some(mut c) = Cursor::body_at(self.arguments) else {
            return out;
        };
        let n_formats = c.i16().unwrap_or(0).max(0) as usize;
        let formats: Vec<i16> = (0..n_formats).filter_map(|_| c.i16()).collect();
        let n_params = c.i16().unwrap_or(0).max(0) as usize;
        for i in 0..n_params {
            let format = match formats.len() {
                0 => 0,
                1 => formats[0],
                _ => formats.get(i).copied().unwrap_or(0),
            };
            let Some(len) = c.i32() else { break };
            let value = if len < 0 {
                None
            } else {
                match c.bytes(len as usize) {
                    Some(v) => Some(v),
                    None => break,
                }
            };
            if format == 0 {
                out.push(value);
            }
        }
        out
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
        assert_eq!(b.text_params(), vec![None, Some(&b"ab"[..])]);
    }
}
