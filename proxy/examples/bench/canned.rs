//! A wire server that answers every query with one canned row, at no cost:
//! the most any cache can deliver to pgbench on this machine. It speaks the
//! startup (trust), simple Query, and the extended protocol (Parse, Bind,
//! Describe, Execute, Close, Sync, Flush). Row-returning statements (SELECT,
//! WITH, VALUES, SHOW, TABLE) get one int4 row `1`; anything else its command
//! tag, so pgbench's setup and TPC-B statements are accepted too.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::protocol::{error_body, put_cstr, put_message, take_cstr};

pub fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        let mut next_pid = 1000u32;
        loop {
            let (sock, _) = listener.accept().await?;
            let _ = sock.set_nodelay(true);
            next_pid += 1;
            let pid = next_pid;
            tokio::spawn(async move {
                let _ = conn(sock, pid).await;
            });
        }
    })
}

const ROW_DESCRIPTION: &[u8] = &[
    0, 1, // one field
    b'c', 0, // name
    0, 0, 0, 0, // table oid
    0, 0, // attnum
    0, 0, 0, 23, // int4
    0, 4, // typlen
    0xff, 0xff, 0xff, 0xff, // typmod
    0, 0, // text
];
const DATA_ROW: &[u8] = &[0, 1, 0, 0, 0, 1, b'1'];

/// Whether the statement returns rows, and its command tag.
fn classify(sql: &str) -> (bool, String) {
    let word: String = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    match word.as_str() {
        "SELECT" | "WITH" | "VALUES" | "TABLE" | "SHOW" => (true, "SELECT 1".into()),
        "INSERT" => (false, "INSERT 0 1".into()),
        "UPDATE" | "DELETE" | "MERGE" => (false, format!("{word} 1")),
        "END" | "COMMIT" => (false, "COMMIT".into()),
        "ABORT" | "ROLLBACK" => (false, "ROLLBACK".into()),
        "TRUNCATE" => (false, "TRUNCATE TABLE".into()),
        "" => (false, String::new()),
        w => (false, w.to_string()),
    }
}

fn result(out: &mut BytesMut, rows: bool, tag: &str, describe: bool) {
    if rows {
        if describe {
            put_message(out, b'T', ROW_DESCRIPTION);
        }
        put_message(out, b'D', DATA_ROW);
    }
    let mut t = Vec::with_capacity(tag.len() + 1);
    put_cstr(&mut t, tag);
    put_message(out, b'C', &t);
}

#[derive(Default)]
struct State {
    statements: HashMap<String, (bool, String, usize)>,
    portals: HashMap<String, (bool, String)>,
}

fn max_param(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let mut n = 0usize;
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                n = n * 10 + usize::from(b[j] - b'0');
                j += 1;
            }
            max = max.max(n);
            i = j;
        } else {
            i += 1;
        }
    }
    max
}

/// Handles one message; false to close the connection.
fn handle(tag: u8, mut body: &[u8], st: &mut State, out: &mut BytesMut) -> bool {
    match tag {
        b'Q' => {
            let sql = take_cstr(&mut body);
            let (rows, ctag) = classify(&sql);
            if ctag.is_empty() {
                put_message(out, b'I', &[]);
            } else {
                result(out, rows, &ctag, true);
            }
            put_message(out, b'Z', b"I");
        }
        b'P' => {
            let name = take_cstr(&mut body);
            let sql = take_cstr(&mut body);
            let (rows, ctag) = classify(&sql);
            st.statements.insert(name, (rows, ctag, max_param(&sql)));
            put_message(out, b'1', &[]);
        }
        b'B' => {
            let portal = take_cstr(&mut body);
            let stmt = take_cstr(&mut body);
            let (rows, ctag, _) = st.statements.get(&stmt).cloned().unwrap_or_default();
            st.portals.insert(portal, (rows, ctag));
            put_message(out, b'2', &[]);
        }
        b'D' => {
            let kind = body.first().copied().unwrap_or(b'P');
            body = &body[1.min(body.len())..];
            let name = take_cstr(&mut body);
            if kind == b'S' {
                let (rows, _, params) = st.statements.get(&name).cloned().unwrap_or_default();
                let mut pd = Vec::new();
                pd.extend_from_slice(&(params as u16).to_be_bytes());
                for _ in 0..params {
                    pd.extend_from_slice(&23u32.to_be_bytes());
                }
                put_message(out, b't', &pd);
                if rows {
                    put_message(out, b'T', ROW_DESCRIPTION);
                } else {
                    put_message(out, b'n', &[]);
                }
            } else if st.portals.get(&name).is_some_and(|p| p.0) {
                put_message(out, b'T', ROW_DESCRIPTION);
            } else {
                put_message(out, b'n', &[]);
            }
        }
        b'E' => {
            let name = take_cstr(&mut body);
            let (rows, ctag) = st.portals.get(&name).cloned().unwrap_or_default();
            if ctag.is_empty() {
                put_message(out, b'I', &[]);
            } else {
                result(out, rows, &ctag, false);
            }
        }
        b'C' => {
            let kind = body.first().copied().unwrap_or(b'S');
            body = &body[1.min(body.len())..];
            let name = take_cstr(&mut body);
            if kind == b'S' {
                st.statements.remove(&name);
            } else {
                st.portals.remove(&name);
            }
            put_message(out, b'3', &[]);
        }
        b'S' => put_message(out, b'Z', b"I"),
        b'H' => {}
        b'X' => return false,
        _ => {
            let e = error_body(&[
                (b'S', "ERROR"),
                (b'C', "0A000"),
                (b'M', "not supported by the ceiling server"),
            ]);
            put_message(out, b'E', &e);
            put_message(out, b'Z', b"I");
        }
    }
    true
}

async fn conn(mut sock: TcpStream, pid: u32) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    // Startup: answer SSL/GSS requests with N until a StartupMessage.
    loop {
        while buf.len() < 4 || buf.len() < u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize
        {
            if sock.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        let pkt = buf.split_to(len);
        let code = u32::from_be_bytes(pkt[4..8].try_into().unwrap());
        match code {
            80877103 | 80877104 => sock.write_all(b"N").await?,
            80877102 => return Ok(()),
            _ => break,
        }
    }
    let mut out = BytesMut::with_capacity(16 * 1024);
    put_message(&mut out, b'R', &0u32.to_be_bytes());
    for (k, v) in [
        ("server_version", "15.0"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("TimeZone", "UTC"),
    ] {
        let mut b = Vec::new();
        put_cstr(&mut b, k);
        put_cstr(&mut b, v);
        put_message(&mut out, b'S', &b);
    }
    let mut k = Vec::new();
    k.extend_from_slice(&pid.to_be_bytes());
    k.extend_from_slice(&pid.wrapping_mul(2654435761).to_be_bytes());
    put_message(&mut out, b'K', &k);
    put_message(&mut out, b'Z', b"I");
    sock.write_all(&out).await?;
    out.clear();

    let mut st = State::default();
    loop {
        while buf.len() >= 5 {
            let len = u32::from_be_bytes(buf[1..5].try_into().unwrap()) as usize;
            if len < 4 {
                return Ok(());
            }
            if buf.len() < len + 1 {
                break;
            }
            let tag = buf[0];
            buf.advance(5);
            let body = buf.split_to(len - 4);
            if !handle(tag, &body, &mut st, &mut out) {
                sock.write_all(&out).await?;
                return Ok(());
            }
        }
        if !out.is_empty() {
            sock.write_all(&out).await?;
            out.clear();
        }
        if sock.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}
