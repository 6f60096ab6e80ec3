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

impl<'a> Bind<'a> {
    /// The parameter values whose format is text (`None` for NULL). Formats: no
    /// codes means all text, one code applies to all, else one per parameter.
    pub fn text_params(&self) -> impl Iterator<Item = Option<&'a [u8]>> {
        let mut c = Cursor::body_at(self.arguments);
        let n_formats = c.as_mut().and_then(Cursor::i16).unwrap_or(0).max(0) as usize;
        let formats = c
            .as_mut()
            .and_then(|c| c.bytes(n_formats * 2))
            .unwrap_or(&[]);
        let n_params = c.as_mut().and_then(Cursor::i16).unwrap_or(0).max(0) as usize;
        let format = move |i: usize| {
            let at = match n_formats {
                0 => return 0,
                1 => 0,
                _ => i,
            };
            formats
                .get(at * 2..at * 2 + 2)
                .map_or(0, |f| i16::from_be_bytes([f[0], f[1]]))
        };
        (0..n_params)
            .map_while(move |i| {
                let c = c.as_mut()?;
                let len = c.i32()?;
                let value = if len < 0 {
                    None
                } else {
                    Some(c.bytes(len as usize)?)
                };
                Some((format(i), value))
            })
            .filter(|(format, _)| *format == 0)
            .map(|(_, value)| value)
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
        assert_eq!(
            b.text_params().collect::<Vec<_>>(),
            vec![None, Some(&b"ab"[..])]
        );
        // Per-parameter formats: text "x", then a binary int4 that is skipped.
        let body: &[u8] = b"\0\0\0\x02\0\0\0\x01\0\x02\0\0\0\x01x\0\0\0\x04\0\0\0\x07\0\0";
        let mut m = vec![b'B'];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        let b = Bind::decode(&m).unwrap();
        assert_eq!(b.text_params().collect::<Vec<_>>(), vec![Some(&b"x"[..])]);
    }
}
