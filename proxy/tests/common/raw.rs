//! A raw protocol client for tests that must send what no driver sends.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Raw {
    pub stream: TcpStream,
}

/// A startup packet for protocol `major.minor` with the given parameters.
pub fn startup_packet(major: u16, minor: u16, params: &[(&str, &str)]) -> Vec<u8> {
    pgcache::wire::encode::startup(major, minor, params)
}

/// A regular message.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    pgcache::wire::encode::frame(tag, body)
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("connect"),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// Logs in as `user` on a trust cluster and reads up to ReadyForQuery.
    pub async fn login(addr: SocketAddr, user: &str) -> Raw {
        Raw::login_to(addr, user, "postgres").await
    }

    /// Logs in as `user` to `database` on a trust cluster and reads up to
    /// ReadyForQuery.
    pub async fn login_to(addr: SocketAddr, user: &str, database: &str) -> Raw {
        let mut raw = Raw::connect(addr).await;
        raw.send(&startup_packet(
            3,
            0,
            &[("user", user), ("database", database)],
        ))
        .await;
        raw.read_until(b'Z').await;
        raw
    }

    /// The next message: (tag, body). `None` on EOF or after 10 s.
    pub async fn read_message(&mut self) -> Option<(u8, Vec<u8>)> {
        let read = async {
            let tag = self.stream.read_u8().await.ok()?;
            let len = self.stream.read_u32().await.ok()? as usize;
            let mut body = vec![0; len.checked_sub(4)?];
            self.stream.read_exact(&mut body).await.ok()?;
            Some((tag, body))
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .ok()
            .flatten()
    }

    /// Reads messages until one with `tag`; returns all of them.
    pub async fn read_until(&mut self, tag: u8) -> Vec<(u8, Vec<u8>)> {
        let mut seen = Vec::new();
        while let Some(m) = self.read_message().await {
            let done = m.0 == tag;
            seen.push(m);
            if done {
                return seen;
            }
        }
        panic!(
            "connection ended before a {:?} message; saw {:?}",
            tag as char,
            seen.iter().map(|m| m.0 as char).collect::<String>()
        );
    }

    /// True if the peer closes the connection within `within`.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let mut buf = [0u8; 256];
        let read = async {
            loop {
                match self.stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        };
        tokio::time::timeout(within, read).await.is_ok()
    }
}

/// The SQLSTATE and message of an ErrorResponse body.
pub fn error_fields(body: &[u8]) -> (String, String) {
    let mut code = String::new();
    let mut message = String::new();
    for field in body.split(|&b| b == 0) {
        if let Some((&t, v)) = field.split_first() {
            let v = String::from_utf8_lossy(v).into_owned();
            match t {
                b'C' => code = v,
                b'M' => message = v,
                _ => {}
            }
        }
    }
    (code, message)
}
