//! One measured pgbench run against one target: throughput, latency, the
//! CPU time of each party and the cache's hit counts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use crate::cpu::{children_cpu, machine_busy, tree_cpu};
use crate::minipg;
use crate::pgbench::{field, pgbench_args, read_latencies};
use crate::targets::{Kind, Targets, DB, USER};
use crate::workloads::Workload;

#[derive(Clone, Debug, Default)]
pub struct RunResult {
    pub tps: f64,
    pub txns: u64,
    pub failed: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub proxy_cpu_s: Option<f64>,
    pub server_cpu_s: f64,
    /// pgbench's own CPU time.
    pub client_cpu_s: f64,
    /// Interrupt and softirq time of the whole machine during the run: not
    /// charged to any process, mostly the loopback traffic of the run itself.
    pub softirq_s: f64,
    /// CPU time of all other processes on the machine (and steal) during the
    /// run, in cores: interference.
    pub other_cores: f64,
    /// hits, cacheable misses (pgcache: result="miss"; pgpool: num_selects).
    pub hits: Option<(u64, u64)>,
    pub ok: bool,
    pub note: String,
}

pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    if !out.starts_with("HTTP/1.1 2") {
        bail!("{method} {path}: {}", out.lines().next().unwrap_or(""));
    }
    Ok(out)
}

pub fn pgcache_counts(admin: SocketAddr) -> Result<(u64, u64, u64)> {
    let text = http(admin, "GET", "/metrics", "")?;
    let get = |label: &str| -> u64 {
        let prefix = format!("pgcache_queries_total{{result=\"{label}\"}}");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    Ok((get("hit"), get("miss"), get("bypass")))
}

/// pgpool's `SHOW pool_cache`: (num_cache_hits, num_selects).
pub fn pgpool_counts(addr: SocketAddr) -> Result<(u64, u64)> {
    let mut c = minipg::Conn::connect(addr, USER, DB)?;
    let rows = c.query("SHOW pool_cache")?;
    let row = rows
        .first()
        .ok_or_else(|| anyhow!("SHOW pool_cache: no row"))?;
    let num = |i: usize| -> u64 {
        row.get(i)
            .and_then(|v| v.as_deref())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Ok((num(0), num(1)))
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

pub fn reset_caches(t: &mut Targets, kind: Kind) -> Result<()> {
    match kind {
        Kind::Pgcache | Kind::PgcacheFeed | Kind::PgcacheOff => {
            let admin = t.admin(kind).expect("pgcache has an admin address");
            http(admin, "POST", "/api/invalidate", "{\"all\": true}")?;
        }
        Kind::Pgpool => t.pgpool.restart()?,
        _ => {}
    }
    Ok(())
}

pub fn run_one(
    t: &mut Targets,
    w: &Workload,
    kind: Kind,
    seq: usize,
    tck: f64,
) -> Result<RunResult> {
    if w.cold {
        reset_caches(t, kind)?;
    }
    if w.vacuum {
        t.cluster.psql(
            DB,
            "VACUUM pgbench_branches;\nVACUUM pgbench_tellers;\nTRUNCATE pgbench_history;",
        )?;
    }
    let addr = t.addr(kind);
    let proxy_pid = t.proxy_pid(kind);
    let pm = t
        .postmaster_pid()
        .ok_or_else(|| anyhow!("no postmaster.pid"))?;
    let counts = |t: &Targets| -> Option<(u64, u64)> {
        match kind {
            Kind::Pgcache | Kind::PgcacheFeed | Kind::PgcacheOff => {
                pgcache_counts(t.admin(kind)?).ok().map(|(h, m, _)| (h, m))
            }
            Kind::Pgpool => pgpool_counts(addr).ok(),
            _ => None,
        }
    };
    let logdir = t.dir.join("logs");
    std::fs::create_dir_all(&logdir)?;
    let stem = format!("r{seq}");

    let c0 = counts(t);
    let p0 = proxy_pid.map(|p| tree_cpu(p, tck));
    let s0 = tree_cpu(pm, tck);
    let k0 = children_cpu(tck);
    let b0 = machine_busy(tck);
    let began = Instant::now();
    let out = Command::new(testkit::bin("pgbench")?)
        .args(pgbench_args(w, addr, Some(&logdir.join(&stem))))
        .output()?;
    let b1 = machine_busy(tck);
    let wall = began.elapsed().as_secs_f64();
    let k1 = children_cpu(tck);
    // Let the server reap the backends that just lost their client: an
    // exited backend's CPU time moves into the postmaster's cutime only then.
    std::thread::sleep(Duration::from_millis(300));
    let s1 = tree_cpu(pm, tck);
    let p1 = proxy_pid.map(|p| tree_cpu(p, tck));
    let c1 = counts(t);

    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lat = read_latencies(&logdir, &stem);
    let txns = field(&report, "number of transactions actually processed:")
        .and_then(|v| v.split('/').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let failed = field(&report, "number of failed transactions:")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let tps = field(&report, "tps =")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let mut note = String::new();
    let ok = out.status.success() && failed == 0 && txns > 0;
    if !ok {
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        note = format!(
            "pgbench exit {}, {failed} failed: {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
        eprintln!("bench: {} on {}: {note}", w.id, kind.short());
    }
    let hits = match (c0, c1) {
        (Some((h0, m0)), Some((h1, m1))) => Some((h1.saturating_sub(h0), m1.saturating_sub(m0))),
        _ => None,
    };
    Ok(RunResult {
        tps,
        txns,
        failed,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        proxy_cpu_s: match (p0, p1) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        server_cpu_s: s1 - s0,
        client_cpu_s: k1 - k0,
        softirq_s: b1.1 - b0.1,
        other_cores: {
            // The proxy's and server's windows include the 300 ms settle.
            let ours = (k1 - k0) + (s1 - s0) + p0.zip(p1).map_or(0.0, |(a, b)| b - a);
            ((b1.0 - b0.0 - ours) / wall).max(0.0)
        },
        hits,
        ok,
        note,
    })
}
