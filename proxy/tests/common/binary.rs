//! The pgcache binary as its own process, for tests that measure the proxy's
//! resident memory or need its real command line.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use testkit::Cluster;

/// A running pgcache process; killed when dropped.
pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
}

impl Binary {
    /// pgcache in front of `cluster` (service account: the superuser), with
    /// `extra` flags, once it accepts connections. With `admin`, it also
    /// serves the admin HTTP API on a free port.
    pub async fn start(cluster: &Cluster, admin: bool, extra: &[&str]) -> Binary {
        let port = testkit::free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let admin: Option<SocketAddr> = admin.then(|| {
            format!("127.0.0.1:{}", testkit::free_port())
                .parse()
                .unwrap()
        });
        let mut command = Command::new(env!("CARGO_BIN_EXE_pgcache"));
        command
            .args(["--listen", &addr.to_string()])
            .args([
                "--upstream",
                &cluster.url(
                    cluster.superuser(),
                    Some(cluster.superuser_password()),
                    "postgres",
                ),
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(admin) = admin {
            command.args(["--admin-listen", &admin.to_string()]);
        }
        // As `proxy_with`: the feed only where a test asks for it.
        if !extra.contains(&"--change-feed") {
            command.args(["--change-feed", "off"]);
        }
        let child = command.spawn().expect("start pgcache");
        let binary = Binary { child, addr, admin };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return binary;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("pgcache at {addr} did not come up");
    }

    /// The process's resident memory (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib_of(self.child.id())
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rss_kib_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("a live process");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}
