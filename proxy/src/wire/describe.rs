//! Describe ('D') and Close ('C'): both name a statement ('S') or a portal ('P').

use super::cursor::Cursor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Statement(&'a str),
    Portal(&'a str),
}

impl<'a> Target<'a> {
    pub fn decode(message: &'a [u8]) -> Option<Target<'a>> {
        let mut c = Cursor::body(message)?;
        let kind = c.u8()?;
        let name = c.cstr()?;
        if !c.at_end() {
            return None;
        }
        match kind {
            b'S' => Some(Target::Statement(name)),
            b'P' => Some(Target::Portal(name)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            Target::decode(b"D\0\0\0\x08Sab\0"),
            Some(Target::Statement("ab"))
        );
        assert_eq!(Target::decode(b"C\0\0\0\x06P\0"), Some(Target::Portal("")));
        assert_eq!(Target::decode(b"D\0\0\0\x06X\0"), None);
    }
}
