//! Splits a byte stream into protocol messages without copying.
//!
//! Regular messages are `tag: u8, len: u32 (including itself), body`. Messages up to
//! `buffer_limit` bytes are handed out whole, so they can be inspected. A larger
//! message (a huge DataRow, a big COPY chunk or bind parameter) is never held in
//! memory: it is handed out as parts as its bytes arrive, to be forwarded as they
//! are. That bounds the memory of a connection whatever the client or server sends.

use bytes::BytesMut;

/// A piece of the stream, in order.
#[derive(Debug)]
pub enum Piece {
    /// A complete message (header included).
    Message { tag: u8, bytes: BytesMut },
    /// Part of a message too large to buffer. `first` parts start with the header.
    Part {
        tag: u8,
        bytes: BytesMut,
        last: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("invalid message length {len} for message type {tag:?}")]
    InvalidLength { tag: char, len: u32 },
    #[error("message of type {tag:?} is {len} bytes, more than the limit of {limit}")]
    TooLarge { tag: char, len: u32, limit: usize },
}

#[derive(Debug)]
pub struct Framer {
    buffer_limit: usize,
    max_len: usize,
    /// Bytes of a streamed message still to come, and its tag.
    streaming: Option<(u8, usize)>,
}

impl Framer {
    /// `buffer_limit`: the largest message delivered whole; `max_len`: the largest
    /// message accepted at all (value of the length field).
    pub fn new(buffer_limit: usize, max_len: usize) -> Framer {
        Framer {
            buffer_limit: buffer_limit.max(5),
            max_len,
            streaming: None,
        }
    }

    /// True while the stream is inside a message (a partial message has been
    /// handed out, or bytes of an incomplete one are buffered in `buf`).
    pub fn mid_message(&self, buf: &BytesMut) -> bool {
        self.streaming.is_some() || !buf.is_empty()
    }

    /// True while a message too large to buffer is partly handed out: nothing may
    /// be inserted into the stream until its last part.
    pub fn in_part(&self) -> bool {
        self.streaming.is_some()
    }

    /// The next piece from `buf`, or `None` until more bytes arrive.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Piece>, FrameError> {
        if let Some((tag, remaining)) = self.streaming {
            if buf.is_empty() {
                return Ok(None);
            }
            let n = remaining.min(buf.len());
            let last = n == remaining;
            self.streaming = if last {
                None
            } else {
                Some((tag, remaining - n))
            };
            return Ok(Some(Piece::Part {
                tag,
                bytes: buf.split_to(n),
                last,
            }));
        }
        if buf.len() < 5 {
            return Ok(None);
        }
        let tag = buf[0];
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
        if len < 4 {
            return Err(FrameError::InvalidLength {
                tag: tag as char,
                len,
            });
        }
        if len as usize > self.max_len {
            return Err(FrameError::TooLarge {
                tag: tag as char,
                len,
                limit: self.max_len,
            });
        }
        let total = len as usize + 1;
        if total <= self.buffer_limit {
            if buf.len() < total {
                buf.reserve(total - buf.len());
                return Ok(None);
            }
            return Ok(Some(Piece::Message {
                tag,
                bytes: buf.split_to(total),
            }));
        }
        // Too large to hold: stream it, starting with what is here.
        self.streaming = Some((tag, total));
        self.next(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn whole_messages_split_across_reads() {
        let mut f = Framer::new(1024, 1 << 20);
        let data = [msg(b'Q', b"select 1\0"), msg(b'X', b"")].concat();
        let mut buf = BytesMut::new();
        let mut out = vec![];
        for b in data {
            buf.extend_from_slice(&[b]);
            while let Some(p) = f.next(&mut buf).unwrap() {
                match p {
                    Piece::Message { tag, bytes } => out.push((tag, bytes.len())),
                    Piece::Part { .. } => panic!("unexpected part"),
                }
            }
        }
        assert_eq!(out, vec![(b'Q', 14), (b'X', 5)]);
        assert!(!f.mid_message(&buf));
    }

    #[test]
    fn large_message_streams_in_parts() {
        let mut f = Framer::new(16, 1 << 20);
        let body = vec![7u8; 100];
        let mut buf = BytesMut::from(&msg(b'D', &body)[..40]);
        let Some(Piece::Part { tag, bytes, last }) = f.next(&mut buf).unwrap() else {
            panic!("expected part")
        };
        assert_eq!((tag, bytes.len(), last), (b'D', 40, false));
        assert!(f.mid_message(&buf));
        assert!(f.next(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&msg(b'D', &body)[40..]);
        buf.extend_from_slice(&msg(b'C', b"SELECT 1\0"));
        let Some(Piece::Part { bytes, last, .. }) = f.next(&mut buf).unwrap() else {
            panic!("expected part")
        };
        assert_eq!((bytes.len(), last), (65, true));
        assert!(matches!(
            f.next(&mut buf).unwrap(),
            Some(Piece::Message { tag: b'C', .. })
        ));
    }

    #[test]
    fn bad_lengths_are_errors() {
        let mut f = Framer::new(16, 1000);
        let mut buf = BytesMut::from(&[b'Q', 0, 0, 0, 3][..]);
        assert!(matches!(
            f.next(&mut buf),
            Err(FrameError::InvalidLength { len: 3, .. })
        ));
        let mut buf = BytesMut::from(&[b'Q', 0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(f.next(&mut buf), Err(FrameError::TooLarge { .. })));
    }
}
