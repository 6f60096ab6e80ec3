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

fn put_cstr(buf: &mut BytesMut, s: &str) {
    buf.extend(s.bytes().filter(|&b| b != 0));
    buf.put_u8(0);
}

fn frame(out: &mut BytesMut, tag: u8, body: &[u8]) {
    out.put_u8(tag);
    out.put_u32(body.len() as u32 + 4);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Framer, Piece};

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
