//! A read-mostly workload whose writes are made straight on the server, not
//! through the target: pgpool-II cannot see them at all; pgcache sees them
//! through its change feed.
//!
//! `bench_direct` holds `ROWS` rows with a version each. Per target (the
//! server, pgcache with `--change-feed auto`, pgpool-II with its query
//! cache), for `BENCH_DIRECT_SECONDS`: one writer on a direct connection
//! (`synchronous_commit = on`) bumps the version of a random row, pausing
//! `BENCH_DIRECT_WRITE_MS` after each, recording each acknowledged version with the time its answer
//! arrived; `READERS` readers read random rows through the target. A read is
//! stale when it returns a version older than one acknowledged more than
//! `max_lag` before the read was sent: what pgcache's feed promises.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};

use crate::freshness::wait_for_feed;
use crate::measure::{pgcache_counts, pgpool_counts, reset_caches};
use crate::minipg;
use crate::opts::Opts;
use crate::targets::{Kind, Targets, DB, DIRECT_TABLE, USER};

/// Rows in the table: few enough that most reads hit between two writes of
/// the same row.
pub const ROWS: usize = 200;
/// Reader threads, each with its own connection through the target.
pub const READERS: usize = 4;
/// The policy default, which pgcache-feed runs with.
const MAX_LAG: Duration = Duration::from_millis(250);

/// The targets, in the order they are measured.
pub const TARGETS: [Kind; 3] = [Kind::Server, Kind::PgcacheFeed, Kind::Pgpool];

#[derive(Debug, Default)]
pub struct DirectWrites {
    pub kind: Option<Kind>,
    pub seconds: f64,
    pub reads: u64,
    pub writes: u64,
    /// (hits, misses) over the run; `None` where the target has no counters.
    pub hits: Option<(u64, u64)>,
    /// Reads that returned a version older than one acknowledged more than
    /// `max_lag` before they were sent.
    pub stale: u64,
    /// Reads that returned a version older than one acknowledged before
    /// they were sent, but none older than `max_lag`: within the promise.
    pub behind: u64,
    /// Over the stale reads: the longest time from the acknowledgement of
    /// the newest version a read missed to that read's start, in ms.
    pub worst_stale_ms: f64,
    pub note: String,
}

impl DirectWrites {
    pub fn reads_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.reads as f64 / self.seconds
        } else {
            f64::NAN
        }
    }
    pub fn hit_ratio(&self) -> Option<f64> {
        self.hits
            .filter(|(h, m)| h + m > 0)
            .map(|(h, m)| h as f64 / (h + m) as f64)
    }
}

/// Per row, the versions acknowledged with the time their answers arrived,
/// oldest first.
type History = Vec<Mutex<Vec<(i64, Instant)>>>;

/// Every target in turn; a target that fails gets a row with its error.
pub fn measure_all(opts: &Opts, t: &mut Targets) -> Vec<DirectWrites> {
    TARGETS
        .iter()
        .map(|&kind| {
            eprintln!(
                "bench: direct writes, {}: {} s",
                kind.short(),
                opts.direct_seconds
            );
            let r = measure(opts, t, kind).unwrap_or_else(|e| DirectWrites {
                note: format!("{e:#}"),
                ..DirectWrites::default()
            });
            eprintln!(
                "bench:         reads/s {:.0}  writes {}  hit ratio {}  stale {}  behind within max_lag {}",
                r.reads_per_s(),
                r.writes,
                r.hit_ratio()
                    .map_or("n/a".into(), |h| format!("{:.1}%", h * 100.0)),
                r.stale,
                r.behind
            );
            DirectWrites {
                kind: Some(kind),
                ..r
            }
        })
        .collect()
}

fn measure(opts: &Opts, t: &mut Targets, kind: Kind) -> Result<DirectWrites> {
    // Each target starts empty, so every cached row is one it read itself.
    reset_caches(t, kind)?;
    let target = t.addr(kind);
    let server = t.addr(Kind::Server);
    if kind == Kind::PgcacheFeed {
        let admin = t
            .admin(kind)
            .ok_or_else(|| anyhow!("pgcache-feed has no admin address"))?;
        wait_for_feed(admin)?;
    }
    let mut direct = minipg::Conn::connect(server, USER, DB)?;
    direct.query("SET synchronous_commit = on")?;
    let now = Instant::now();
    let mut start_versions = vec![0i64; ROWS];
    for row in direct.query(&format!("SELECT id, version FROM {DIRECT_TABLE}"))? {
        let id: usize = field(&row, 0)?.try_into()?;
        if let Some(slot) = id.checked_sub(1).and_then(|i| start_versions.get_mut(i)) {
            *slot = field(&row, 1)?;
        }
    }
    let history: Arc<History> = Arc::new(
        start_versions
            .into_iter()
            .map(|v| Mutex::new(vec![(v, now)]))
            .collect(),
    );
    let readers: Vec<minipg::Conn> = (0..READERS)
        .map(|_| minipg::Conn::connect(target, USER, DB))
        .collect::<Result<_>>()?;
    let counts = |t: &Targets| -> Option<(u64, u64)> {
        match kind {
            Kind::PgcacheFeed => t
                .admin(kind)
                .and_then(|a| pgcache_counts(a).ok())
                .map(|(h, m, _)| (h, m)),
            Kind::Pgpool => pgpool_counts(target).ok(),
            _ => None,
        }
    };
    let c0 = counts(t);
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let run_for = Duration::from_secs(opts.direct_seconds);
    let pause = Duration::from_millis(opts.direct_write_pause_ms);

    let writer = {
        let (history, stop) = (history.clone(), stop.clone());
        std::thread::spawn(move || -> Result<u64> {
            let mut rng = Rng::new(0x5eed_0001);
            let mut writes = 0;
            while !stop.load(Ordering::Relaxed) {
                let i = rng.below(ROWS);
                let rows = direct.query(&format!(
                    "UPDATE {DIRECT_TABLE} SET version = version + 1 WHERE id = {} RETURNING version",
                    i + 1
                ))?;
                // Taken after the answer arrived, so a little later than the
                // acknowledgement: errs toward calling a read fresh.
                let acknowledged = Instant::now();
                let version = rows
                    .first()
                    .ok_or_else(|| anyhow!("UPDATE returned no row"))
                    .and_then(|r| field(r, 0))?;
                lock(&history[i]).push((version, acknowledged));
                writes += 1;
                std::thread::sleep(pause);
            }
            Ok(writes)
        })
    };
    let reader_threads: Vec<_> = readers
        .into_iter()
        .enumerate()
        .map(|(n, mut conn)| {
            let (history, stop) = (history.clone(), stop.clone());
            std::thread::spawn(move || -> Result<Tally> {
                let mut rng = Rng::new(0x5eed_1000 + n as u64);
                let mut tally = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    let i = rng.below(ROWS);
                    let sql = format!("SELECT version FROM {DIRECT_TABLE} WHERE id = {}", i + 1);
                    let started = Instant::now();
                    let rows = conn.query(&sql)?;
                    let got = rows
                        .first()
                        .ok_or_else(|| anyhow!("{sql}: no row"))
                        .and_then(|r| field(r, 0))?;
                    tally.judge(&lock(&history[i]), got, started);
                }
                Ok(tally)
            })
        })
        .collect();

    std::thread::sleep(run_for);
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    let mut errors = Vec::new();
    for th in reader_threads {
        match th.join().map_err(|_| anyhow!("a reader panicked"))? {
            Ok(tally) => total.add(&tally),
            Err(e) => errors.push(format!("reader: {e:#}")),
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    let writes = match writer.join().map_err(|_| anyhow!("the writer panicked"))? {
        Ok(n) => n,
        Err(e) => {
            errors.push(format!("writer: {e:#}"));
            0
        }
    };
    let c1 = counts(t);
    Ok(DirectWrites {
        kind: Some(kind),
        seconds,
        reads: total.reads,
        writes,
        hits: c0
            .zip(c1)
            .map(|((h0, m0), (h1, m1))| (h1.saturating_sub(h0), m1.saturating_sub(m0))),
        stale: total.stale,
        behind: total.behind,
        worst_stale_ms: total.worst_stale_ms,
        note: errors.join("; "),
    })
}

#[derive(Default)]
struct Tally {
    reads: u64,
    stale: u64,
    behind: u64,
    worst_stale_ms: f64,
}

impl Tally {
    /// Judges one read of `got`, sent at `started`, against the row's
    /// acknowledged versions.
    fn judge(&mut self, history: &[(i64, Instant)], got: i64, started: Instant) {
        self.reads += 1;
        // Versions only grow, so the newest acknowledged before the read was
        // sent that the read did not return is the last such entry.
        let Some(&(newest, at)) = history.iter().rev().find(|(_, at)| *at < started) else {
            return;
        };
        if got >= newest {
            return;
        }
        let floor = history
            .iter()
            .rev()
            .find(|(_, at)| *at + MAX_LAG < started)
            .map_or(i64::MIN, |(v, _)| *v);
        if got < floor {
            self.stale += 1;
            let ms = started.duration_since(at).as_secs_f64() * 1e3;
            self.worst_stale_ms = self.worst_stale_ms.max(ms);
        } else {
            self.behind += 1;
        }
    }

    fn add(&mut self, other: &Tally) {
        self.reads += other.reads;
        self.stale += other.stale;
        self.behind += other.behind;
        self.worst_stale_ms = self.worst_stale_ms.max(other.worst_stale_ms);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A thread that panicked holding it left whole entries behind.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn field(row: &minipg::Row, i: usize) -> Result<i64> {
    row.get(i)
        .and_then(|v| v.as_deref())
        .ok_or_else(|| anyhow!("missing column {i}"))?
        .parse()
        .context("not a number")
}

/// splitmix64: enough to spread keys, and the same sequence every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z % n as u64) as usize
    }
}

/// Creates the table (before any pgcache starts, so their catalogs know it).
pub fn create_table(cluster: &testkit::Cluster) -> Result<()> {
    cluster.psql(
        DB,
        &format!(
            "CREATE TABLE {DIRECT_TABLE} (id int PRIMARY KEY, version bigint NOT NULL); \
             INSERT INTO {DIRECT_TABLE} SELECT g, 0 FROM generate_series(1, {ROWS}) AS g"
        ),
    )?;
    Ok(())
}
