//! Just enough of a libpq-like client for the checks: trust authentication,
//! simple Query, text results. Its startup packet carries only user and
//! database, like pgbench's (application_name aside), so it shares cache
//! entries with pgbench's sessions.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::protocol::{error_message, put_cstr, put_message, startup_packet};

pub struct Conn {
    s: TcpStream,
}

pub type Row = Vec<Option<String>>;

impl Conn {
    pub fn connect(addr: SocketAddr, user: &str, db: &str) -> Result<Conn> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        s.set_nodelay(true)?;
        s.write_all(&startup_packet(&[
            ("user", user),
            ("database", db),
            ("application_name", "pgbench"),
        ]))?;
        let mut c = Conn { s };
        loop {
            let (tag, body) = c.read_msg()?;
            match tag {
                b'R' if body.get(..4) != Some(&[0, 0, 0, 0][..]) => {
                    bail!("server wants a password (only trust is supported here)");
                }
                b'E' => bail!("connect: {}", error_message(&body)),
                b'Z' => return Ok(c),
                _ => {}
            }
        }
    }

    fn read_msg(&mut self) -> Result<(u8, Vec<u8>)> {
        let mut hdr = [0u8; 5];
        self.s.read_exact(&mut hdr)?;
        let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
        if len < 4 {
            bail!("bad message length");
        }
        let mut body = vec![0u8; len - 4];
        self.s.read_exact(&mut body)?;
        Ok((hdr[0], body))
    }

    pub fn query(&mut self, sql: &str) -> Result<Vec<Row>> {
        let mut text = Vec::with_capacity(sql.len() + 1);
        put_cstr(&mut text, sql);
        let mut msg = Vec::with_capacity(text.len() + 5);
        put_message(&mut msg, b'Q', &text);
        self.s.write_all(&msg)?;
        let mut rows = Vec::new();
        let mut err = None;
        loop {
            let (tag, body) = self.read_msg()?;
            match tag {
                b'D' => rows.push(data_row(&body)?),
                b'E' => err = Some(error_message(&body)),
                b'Z' => break,
                _ => {}
            }
        }
        match err {
            Some(e) => bail!("{sql}: {e}"),
            None => Ok(rows),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let mut terminate = Vec::with_capacity(5);
        put_message(&mut terminate, b'X', &[]);
        let _ = self.s.write_all(&terminate);
    }
}

fn data_row(body: &[u8]) -> Result<Row> {
    let n = u16::from_be_bytes([body[0], body[1]]) as usize;
    let mut at = 2;
    let mut row = Vec::with_capacity(n);
    for _ in 0..n {
        let len = i32::from_be_bytes(body[at..at + 4].try_into()?);
        at += 4;
        if len < 0 {
            row.push(None);
        } else {
            let len = len as usize;
            row.push(Some(
                String::from_utf8_lossy(&body[at..at + len]).into_owned(),
            ));
            at += len;
        }
    }
    Ok(row)
}
