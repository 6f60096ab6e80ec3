//! RowDescription ('T'), DataRow ('D') and CommandComplete ('C') built by the
//! proxy itself, for the admin console's answers. Every column is text.

use bytes::{BufMut, BytesMut};

/// PostgreSQL's `text` type OID.
const TEXT_OID: u32 = 25;

/// Appends a whole result set: columns, rows (NULL as `None`), and a
/// CommandComplete with `tag` (e.g. "SHOW").
pub fn write_result_set(
    out: &mut BytesMut,
    columns: &[&str],
    rows: &[Vec<Option<String>>],
    tag: &str,
) {
    let mut body = BytesMut::new();
    body.put_u16(columns.len() as u16);
    for name in columns {
        put_cstr(&mut body, name);
        body.put_u32(0); // table OID
        body.put_i16(0); // column number
        body.put_u32(TEXT_OID);
        body.put_i16(-1); // variable length
        body.put_i32(-1); // no type modifier
        body.put_i16(0); // text format
    }
    frame(out, b'T', &body);
    for row in rows {
        body.clear();
        body.put_u16(row.len() as u16);
        for value in row {
            match value {
                Some(v) => {
                    body.put_i32(v.len() as i32);
                    body.extend_from_slice(v.as_bytes());
                }
                None => body.put_i32(-1),
            }
        }
        frame(out, b'D', &body);
    }
    write_command_complete(out, tag);
}

pub fn write_command_complete(out: &mut BytesMut, tag: &str) {
    let mut body = BytesMut::new();
    put_cstr(&mut body, tag);
    frame(out, b'C', &body);
}

/// The tag of a whole CommandComplete message ("UPDATE 3", "COMMIT").
pub fn command_tag(message: &[u8]) -> Option<&str> {
    crate::wire::cursor::Cursor::body(message)?.cstr()
}

/// The column values of a whole DataRow message (NULL as `None`).
pub fn data_row_values(message: &[u8]) -> Option<Vec<Option<&[u8]>>> {
    let mut cursor = crate::wire::cursor::Cursor::body(message)?;
    let count = cursor.i16()?;
    let mut values = Vec::with_capacity(usize::try_from(count).ok()?);
    for _ in 0..count {
        let len = cursor.i32()?;
        values.push(match usize::try_from(len) {
            Ok(n) => Some(cursor.bytes(n)?),
            Err(_) => None,
        });
    }
    Some(values)
}

/// Appends a simple Query message.
pub fn write_query(out: &mut BytesMut, text: &str) {
    let mut body = BytesMut::with_capacity(text.len() + 1);
    put_cstr(&mut body, text);
    frame(out, b'Q', &body);
}

fn put_cstr(buf: &mut BytesMut, s: &str) {
    buf.extend(s.bytes().filter(|&b| b != 0));
    buf.put_u8(0);
}

fn frame(out: &mut BytesMut, tag: u8, body: &[u8]) {
    crate::wire::encode::frame_into(out, tag, body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Framer, Piece};

    #[test]
    fn reads_back_what_it_writes() {
        let mut out = BytesMut::new();
        write_result_set(
            &mut out,
            &["a", "b"],
            &[vec![Some("x".into()), None]],
            "SELECT 1",
        );
        let mut framer = Framer::new(1 << 20, 1 << 20);
        let mut seen = Vec::new();
        while let Some(Piece::Message { tag, bytes }) = framer.next(&mut out).unwrap() {
            match tag {
                b'D' => {
                    let values = data_row_values(&bytes).unwrap();
                    assert_eq!(values, vec![Some(&b"x"[..]), None]);
                }
                b'C' => assert_eq!(command_tag(&bytes), Some("SELECT 1")),
                _ => {}
            }
            seen.push(tag);
        }
        assert_eq!(seen, b"TDC");
        assert_eq!(data_row_values(b"D\0\0\0\x0a\0\x01\0\0\0\x09"), None);
        let mut q = BytesMut::new();
        write_query(&mut q, "SELECT 1");
        assert_eq!(crate::wire::query::text(&q), Some("SELECT 1"));
    }

    #[test]
    fn frames_correctly() {
        let mut out = BytesMut::new();
        write_result_set(
            &mut out,
            &["a", "b"],
            &[vec![Some("1".into()), None]],
            "SHOW",
        );
        let mut framer = Framer::new(1 << 20, 1 << 20);
        let mut tags = String::new();
        while let Some(Piece::Message { tag, .. }) = framer.next(&mut out).unwrap() {
            tags.push(tag as char);
        }
        assert_eq!(tags, "TDC");
        assert!(out.is_empty());
    }
}
