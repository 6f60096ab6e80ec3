//! An answer as comparable lines: one per backend message, with only what
//! legitimately differs between the two databases normalised away.
//!
//! - RowDescription: the table OID and column number of each field (the
//!   tables are different objects in each database);
//! - BackendKeyData: the process id and secret;
//! - NotificationResponse: the sender's process id;
//! - any text: the database's own name and the number of a session's
//!   temporary schema (`pg_temp_3`).
//!
//! Errors and notices keep every field but the server's source location.

pub type Message = (u8, Vec<u8>);

/// How an exchange ended when it did not get all the ReadyForQuery it was
/// owed.
pub const SILENT: &str = "!! no answer within 10 s";
pub const CLOSED: &str = "!! connection closed";

pub fn lines(messages: &[Message], database: &str) -> Vec<String> {
    messages
        .iter()
        .map(|(tag, body)| normalise(&line(*tag, body), database))
        .collect()
}

fn line(tag: u8, body: &[u8]) -> String {
    let mut r = Reader { body, at: 0 };
    let described = match tag {
        b'T' => row_description(&mut r),
        b'D' => data_row(&mut r),
        b'E' | b'N' => fields(body),
        b'C' => r.cstr(),
        b'Z' => (r.u8() as char).to_string(),
        b'S' => {
            let name = r.cstr();
            format!("{name}={}", r.cstr())
        }
        b'K' => String::new(),
        b'A' => {
            r.u32();
            let channel = r.cstr();
            format!("{channel} {}", r.cstr())
        }
        b'V' => value(&mut r),
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    let name = match tag {
        b'T' => "RowDescription",
        b'D' => "DataRow",
        b'E' => "Error",
        b'N' => "Notice",
        b'C' => "CommandComplete",
        b'Z' => "ReadyForQuery",
        b'S' => "ParameterStatus",
        b'K' => "BackendKeyData",
        b'A' => "Notification",
        b'V' => "FunctionCallResponse",
        b'1' => "ParseComplete",
        b'2' => "BindComplete",
        b'3' => "CloseComplete",
        b'n' => "NoData",
        b's' => "PortalSuspended",
        b'I' => "EmptyQueryResponse",
        b't' => "ParameterDescription",
        other => return format!("'{}' {described}", other as char),
    };
    if described.is_empty() {
        name.to_string()
    } else {
        format!("{name} {described}")
    }
}

fn row_description(r: &mut Reader) -> String {
    let count = r.i16();
    let mut fields = Vec::new();
    for _ in 0..count.max(0) {
        let name = r.cstr();
        r.u32(); // table OID
        r.i16(); // column number
        let type_oid = r.u32();
        let size = r.i16();
        let modifier = r.u32() as i32;
        let format = r.i16();
        fields.push(format!("{name}:{type_oid}/{size}/{modifier}/{format}"));
    }
    format!("[{}]", fields.join(", "))
}

fn data_row(r: &mut Reader) -> String {
    let count = r.i16();
    let values: Vec<String> = (0..count.max(0)).map(|_| value(r)).collect();
    format!("[{}]", values.join(", "))
}

fn value(r: &mut Reader) -> String {
    let len = r.u32() as i32;
    if len < 0 {
        return "NULL".into();
    }
    format!("{:?}", String::from_utf8_lossy(r.take(len as usize)))
}

/// Severity, SQLSTATE, message and the rest, in a fixed order.
fn fields(body: &[u8]) -> String {
    let mut shown = Vec::new();
    for field in body.split(|&b| b == 0) {
        if let Some((&t, v)) = field.split_first() {
            // 'S' repeats 'V'; file, line and routine are the server's source.
            if matches!(t, b'S' | b'F' | b'L' | b'R') {
                continue;
            }
            shown.push(format!("{}={:?}", t as char, String::from_utf8_lossy(v)));
        }
    }
    shown.join(" ")
}

fn normalise(text: &str, database: &str) -> String {
    let text = text.replace(database, "<db>");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("pg_temp_") {
        let digits_from = at + "pg_temp_".len();
        out.push_str(&rest[..digits_from]);
        let digits = rest[digits_from..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if digits > 0 {
            out.push('N');
        }
        rest = &rest[digits_from + digits..];
    }
    out.push_str(rest);
    out
}

/// A reader that yields zeros past the end instead of panicking: a short
/// message then shows up as a difference, not as a crash of the tester.
struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let start = self.at.min(self.body.len());
        let end = self.at.saturating_add(n).min(self.body.len());
        self.at = self.at.saturating_add(n);
        &self.body[start..end]
    }

    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn i16(&mut self) -> i16 {
        let b = self.take(2);
        if b.len() == 2 {
            i16::from_be_bytes([b[0], b[1]])
        } else {
            0
        }
    }

    fn u32(&mut self) -> u32 {
        let b = self.take(4);
        if b.len() == 4 {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            0
        }
    }

    fn cstr(&mut self) -> String {
        let rest = &self.body[self.at.min(self.body.len())..];
        let len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let s = String::from_utf8_lossy(&rest[..len]).into_owned();
        self.at += len + 1;
        s
    }
}
