//! Freshness through the change feed: how long a write made straight on the
//! server (not through any proxy) stays invisible through pgcache.
//!
//! One row, `bench_freshness (id = 1)`. For each write: the row's value is
//! read through `pgcache-feed` until it is served from the cache (checked on
//! the admin counters), a direct connection to the server runs `UPDATE ...
//! SET v = i` with `synchronous_commit = on` (a commit returns once its WAL
//! is flushed, so a stream can report it), and from the moment the UPDATE's
//! answer arrives a reader polls the row through pgcache every millisecond
//! until it reads `i`. The time to that read is the write's staleness. Once with
//! the server idle, once under `pgbench -S` through pgcache-feed.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};

use crate::cpu::tree_cpu;
use crate::measure::http;
use crate::minipg;
use crate::opts::Opts;
use crate::pgbench::conn_args;
use crate::targets::{Kind, Proc, Targets, DB, FRESHNESS_TABLE, USER};

/// How long one write may stay invisible before the measurement gives up on
/// it (and says so).
const GIVE_UP: Duration = Duration::from_secs(10);
/// The reader's pause between two reads of a stale value. A reader polling
/// back to back would hold a core of a two-core machine and delay the very
/// feed it waits for; one poll adds at most this much to a measurement.
const POLL: Duration = Duration::from_millis(1);

#[derive(Debug, Default)]
pub struct Freshness {
    pub condition: String,
    /// Milliseconds from each write's acknowledgement to the first read
    /// through pgcache that saw it.
    pub millis: Vec<f64>,
    /// Writes made while the row was cached (the others prove nothing).
    pub cached_at_write: usize,
    /// Reads after an acknowledged write that still returned the old value.
    pub stale_reads: u64,
    /// The latest start, after a write's acknowledgement, of a read that
    /// still returned the old value, in ms, over all writes: what `max_lag`
    /// bounds (the time to the fresh answer also counts that read's own
    /// round trip, which a loaded server makes long).
    pub stale_window_ms: f64,
    /// Reads through pgcache in the polling loops.
    pub reads: u64,
    /// CPU seconds of the server's walsender streaming to pgcache-feed.
    pub walsender_cpu_s: Option<f64>,
    pub seconds: f64,
    pub note: String,
}

/// Both conditions: an idle server, then under `pgbench -S`.
pub fn measure_all(opts: &Opts, t: &Targets, tck: f64) -> Vec<Freshness> {
    let mut out = Vec::new();
    for loaded in [false, true] {
        let condition = if loaded {
            format!(
                "under `pgbench -S -c {} -j {}` through pgcache-feed",
                opts.clients, opts.threads
            )
        } else {
            "idle server".to_string()
        };
        eprintln!(
            "bench: freshness, {condition}: {} direct writes",
            opts.freshness_writes
        );
        let result = measure(opts, t, loaded, tck).unwrap_or_else(|e| Freshness {
            note: format!("{e:#}"),
            ..Freshness::default()
        });
        out.push(Freshness {
            condition,
            ..result
        });
    }
    out
}

fn measure(opts: &Opts, t: &Targets, loaded: bool, tck: f64) -> Result<Freshness> {
    let proxy = t.addr(Kind::PgcacheFeed);
    let admin = t
        .admin(Kind::PgcacheFeed)
        .ok_or_else(|| anyhow!("pgcache-feed has no admin address"))?;
    let read = format!("SELECT v FROM {FRESHNESS_TABLE} WHERE id = 1");
    let mut reader = minipg::Conn::connect(proxy, USER, DB)?;
    reader.query(&read)?;
    wait_for_feed(admin)?;
    let mut writer = minipg::Conn::connect(t.addr(Kind::Server), USER, DB)?;
    writer.query("SET synchronous_commit = on")?;
    let walsender = walsender_pid(&mut writer)?;

    let _load = if loaded {
        Some(select_only_load(opts, proxy)?)
    } else {
        None
    };
    let mut result = Freshness::default();
    let cpu0 = walsender.map(|p| tree_cpu(p, tck));
    let began = Instant::now();
    let mut value: i64 = current(&mut writer, &read)?;
    for i in 0..opts.freshness_writes {
        if is_cached(&mut reader, admin, &read, value)? {
            result.cached_at_write += 1;
        }
        value += 1;
        writer.query(&format!(
            "UPDATE {FRESHNESS_TABLE} SET v = {value} WHERE id = 1"
        ))?;
        let acknowledged = Instant::now();
        loop {
            let started = acknowledged.elapsed();
            let seen = single(&reader.query(&read)?)?;
            result.reads += 1;
            if seen == value {
                break;
            }
            result.stale_reads += 1;
            result.stale_window_ms = result.stale_window_ms.max(started.as_secs_f64() * 1e3);
            if acknowledged.elapsed() > GIVE_UP {
                bail!("write {i} (v = {value}) still unseen through pgcache after {GIVE_UP:?}");
            }
            std::thread::sleep(POLL);
        }
        result
            .millis
            .push(acknowledged.elapsed().as_secs_f64() * 1e3);
        // Spread the writes over the feed's timing (keepalives, status
        // updates) instead of landing each one a fixed time after the last.
        std::thread::sleep(Duration::from_micros(
            (u64::from(i) * 7919 % 10) * 1000 + 500,
        ));
    }
    result.seconds = began.elapsed().as_secs_f64();
    result.walsender_cpu_s = cpu0
        .zip(walsender.map(|p| tree_cpu(p, tck)))
        .map(|(a, b)| b - a);
    Ok(result)
}

/// Reads the row through pgcache until a read of `value` is a hit (at most
/// a few tries: the feed bumps a write's tables a second time once the
/// commit is surely visible).
fn is_cached(reader: &mut minipg::Conn, admin: SocketAddr, read: &str, value: i64) -> Result<bool> {
    for _ in 0..20 {
        let hits = shape_hits(admin)?;
        let seen = single(&reader.query(read)?)?;
        let after = shape_hits(admin)?;
        if seen == value && after > hits {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(false)
}

/// Hits of the measured query's shape (`GET /api/queries`): the process-wide
/// hit counter would count the load's hits too.
fn shape_hits(admin: SocketAddr) -> Result<u64> {
    let answer = http(admin, "GET", "/api/queries", "")?;
    let body = answer
        .find('{')
        .map(|at| &answer[at..])
        .ok_or_else(|| anyhow!("/api/queries: no JSON body"))?;
    let json: serde_json::Value = serde_json::from_str(body).context("/api/queries")?;
    json["queries"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|q| {
            q["fingerprint"]
                .as_str()
                .is_some_and(|f| f.contains(FRESHNESS_TABLE))
        })
        .map_or(Ok(0), |q| {
            q["hits"]
                .as_u64()
                .ok_or_else(|| anyhow!("/api/queries: hits is not a number"))
        })
}

fn current(conn: &mut minipg::Conn, read: &str) -> Result<i64> {
    single(&conn.query(read)?)
}

fn single(rows: &[minipg::Row]) -> Result<i64> {
    rows.first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_deref())
        .ok_or_else(|| anyhow!("no value"))?
        .parse()
        .context("not a number")
}

/// Waits until pgcache-feed's stream for the bench database is up.
pub fn wait_for_feed(admin: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let line = format!("pgcache_feed_up{{database=\"{DB}\"}} 1");
    loop {
        let metrics = http(admin, "GET", "/metrics", "")?;
        if metrics.lines().any(|l| l.trim() == line) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("pgcache-feed's change feed did not stream within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The walsender streaming to pgcache-feed (the only pgcache with a slot).
fn walsender_pid(server: &mut minipg::Conn) -> Result<Option<u32>> {
    let rows = server.query(&format!(
        "SELECT active_pid FROM pg_replication_slots WHERE database = '{DB}' AND slot_name LIKE 'pgcache\\_%'"
    ))?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_deref())
        .and_then(|v| v.parse().ok()))
}

/// `pgbench -S` through pgcache-feed for longer than the measurement lasts;
/// stopped when dropped.
fn select_only_load(opts: &Opts, proxy: SocketAddr) -> Result<Proc> {
    let child = Command::new(testkit::bin("pgbench")?)
        .args(["-n", "-S", "-c"])
        .arg(opts.clients.to_string())
        .arg("-j")
        .arg(opts.threads.to_string())
        .args(["-T", "3600"])
        .args(conn_args(proxy))
        .arg(DB)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start pgbench -S")?;
    // Let its clients connect and the load settle.
    std::thread::sleep(Duration::from_secs(2));
    Ok(Proc {
        name: "pgbench -S".into(),
        child,
        stop_signal: "-INT",
    })
}

/// A percentile of sorted values (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}
