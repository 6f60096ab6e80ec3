//! A bounds-checked reader over a message body, for the few messages the proxy
//! parses. Every read returns `None` past the end instead of panicking.

pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over the body of a whole message (skips the 5-byte header).
    pub fn body(message: &'a [u8]) -> Option<Cursor<'a>> {
        Some(Cursor {
            buf: message.get(5..)?,
            pos: 0,
        })
    }

    /// A cursor over raw bytes (no header).
    pub fn body_at(buf: &'a [u8]) -> Option<Cursor<'a>> {
        Some(Cursor { buf, pos: 0 })
    }

    pub fn cstr(&mut self) -> Option<&'a str> {
        let rest = self.buf.get(self.pos..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end]).ok()
    }

    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    pub fn i16(&mut self) -> Option<i16> {
        let b = self.bytes(2)?;
        Some(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> Option<i32> {
        let b = self.bytes(4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(b)
    }

    /// Everything not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }
}
