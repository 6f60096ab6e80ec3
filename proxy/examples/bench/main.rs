//! The benchmark harness (issue 6): pgcache side by side with the server, with
//! pgpool-II's in-memory query cache, and with a "ceiling" wire server that
//! answers every query with one canned row at no cost; and (issue 13) how
//! fresh reads through pgcache's change feed are after writes made straight
//! on the server.
//!
//! One run, on this machine: a throwaway PostgreSQL (testkit), `pgbench -i` at
//! scale 10, the release `pgcache` binary three times (cache on; cache on with
//! `--change-feed auto`; and `[cache] enabled = false` for the miss path), pgpool-II with `memory_cache_enabled = on`,
//! `memqcache_method = 'shmem'`, the ceiling (this program re-executed with
//! `--ceiling-server`) and a bare TCP relay to the server (`--forwarder`,
//! the cost of one hop that does nothing). Then pgbench (the standard client) against each
//! target in turn, target order rotated every round, several rounds; medians
//! and ratios go to a Markdown report. Then the freshness measurement
//! (`freshness.rs`): direct writes, a reader polling through the pgcache with
//! the feed, the time from each COMMIT's acknowledgement to the first read
//! that sees it, with the server idle and under `pgbench -S`. Last, a
//! read-mostly workload whose writes are made straight on the server
//! (`direct_writes.rs`): readers through the server, pgcache-feed and
//! pgpool-II, a writer on a direct connection; reads/s, hit ratio and the
//! reads that returned a version older than one acknowledged more than
//! `max_lag` before (stale).
//!
//! ```sh
//! bash scripts/bench.sh                  # builds, installs pgpool2 if missing, runs this
//! BENCH_ROUNDS=1 BENCH_SECONDS=3 BENCH_SECONDS_1C=2 bash scripts/bench.sh   # a quick look
//! BENCH_WORKLOADS=hot-simple,hot-prepared bash scripts/bench.sh              # some workloads
//! ```
//!
//! Environment: `BENCH_SECONDS` (10) per multi-client run, `BENCH_SECONDS_1C`
//! (4) per single-client run, `BENCH_ROUNDS` (3), `BENCH_CLIENTS` (8),
//! `BENCH_THREADS` (2), `BENCH_SCALE` (10), `BENCH_WORKLOADS` (all),
//! `BENCH_OUT` (report directory, default `<target>/release/bench`),
//! `BENCH_PGCACHE` (the binary, default the `pgcache` next to this example's
//! directory), `BENCH_PERF` (set to 1: `perf record` pgcache during extra
//! hot-set runs at the end, if `perf` is installed), `BENCH_FRESHNESS`
//! (direct writes per freshness measurement, 300; 0 skips it),
//! `BENCH_DIRECT_SECONDS` (seconds per target of the read-mostly workload
//! with direct writes, 10; 0 skips it), `BENCH_DIRECT_WRITE_MS` (its
//! writer's pause after each write, 100).
//!
//! Workload ids: hot-simple, hot-prepared, hot-simple-1c, hot-prepared-1c,
//! select-only, tpcb, zipf; `none` runs no pgbench workload, only the
//! phases after them (`BENCH_WORKLOADS=none BENCH_FRESHNESS=0 bash
//! scripts/bench.sh`: the direct-writes phase alone). The report (`report.md`) and every run
//! (`runs.csv`) are written to `BENCH_OUT` and the report is printed.
//!
//! Numbers are ratios within one run on one machine where the client, the
//! proxy and the server share the cores. Nothing here asserts a timing.

mod canned;
mod checks;
mod cpu;
mod direct_writes;
mod forwarder;
mod freshness;
mod machine;
mod measure;
mod minipg;
mod opts;
mod perf;
mod pgbench;
mod pgpool;
mod protocol;
mod report;
mod summary;
mod targets;
mod workloads;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};

use checks::{check_reads, tpcb_invariants};
use measure::{run_one, RunResult};
use opts::Opts;
use targets::{setup, Kind};
use workloads::workloads;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--ceiling-server") {
        let addr: SocketAddr = args
            .get(2)
            .ok_or_else(|| anyhow!("--ceiling-server ADDR"))?
            .parse()?;
        return canned::serve(addr);
    }
    if args.get(1).map(String::as_str) == Some("--forwarder") {
        let (Some(listen), Some(upstream)) = (args.get(2), args.get(3)) else {
            bail!("--forwarder LISTEN UPSTREAM");
        };
        return forwarder::serve(listen.parse()?, upstream.parse()?);
    }
    let opts = Opts::from_env()?;
    let started = Instant::now();
    let result = run(&opts);
    eprintln!("bench: total {:.0} s", started.elapsed().as_secs_f64());
    result
}

/// Every selected workload, round after round, against each of its targets
/// in an order rotated per round; then the report and the raw runs.
fn run(opts: &Opts) -> Result<()> {
    std::fs::create_dir_all(&opts.out)?;
    let machine = machine::machine_description(opts);
    eprintln!("{machine}");
    let mut t = setup(opts)?;
    let tck = cpu::clk_tck();
    let wls = workloads(opts, &t.dir)?;
    let mut results: BTreeMap<(usize, Kind), Vec<RunResult>> = BTreeMap::new();
    let mut checks: Vec<String> = Vec::new();
    let mut csv = String::from(
        "workload,target,round,tps,txns,failed,p50_ms,p99_ms,proxy_cpu_s,server_cpu_s,client_cpu_s,softirq_s,other_cores,hits,misses,ok\n",
    );
    let started = Instant::now();
    let mut seq = 0;
    for (wi, w) in wls.iter().enumerate() {
        if w.id == "zipf" {
            // TPC-B keeps the three sums equal; the Zipfian writes do not.
            if let Err(e) = tpcb_invariants(&t) {
                checks.push(format!("before zipf: {e}"));
            }
        }
        for round in 0..opts.rounds {
            let n = w.targets.len();
            for k in 0..n {
                let kind = w.targets[(k + round) % n];
                seq += 1;
                eprintln!(
                    "bench: [{:>4.0}s] {} round {}/{} {}",
                    started.elapsed().as_secs_f64(),
                    w.id,
                    round + 1,
                    opts.rounds,
                    kind.short()
                );
                let r = match run_one(&mut t, w, kind, seq, tck) {
                    Ok(r) => r,
                    Err(e) => RunResult {
                        note: format!("{e:#}"),
                        ..RunResult::default()
                    },
                };
                eprintln!(
                    "bench:         tps {:.0}  p50 {:.3} ms  p99 {:.3} ms  proxy cpu {}  hits {:?}",
                    r.tps,
                    r.p50_ms,
                    r.p99_ms,
                    r.proxy_cpu_s.map_or("-".into(), |c| format!("{c:.2} s")),
                    r.hits
                );
                let _ = writeln!(
                    csv,
                    "{},{},{},{:.1},{},{},{:.4},{:.4},{},{:.3},{:.3},{:.3},{:.2},{},{},{}",
                    w.id,
                    kind.short(),
                    round + 1,
                    r.tps,
                    r.txns,
                    r.failed,
                    r.p50_ms,
                    r.p99_ms,
                    r.proxy_cpu_s.map_or(String::new(), |c| format!("{c:.3}")),
                    r.server_cpu_s,
                    r.client_cpu_s,
                    r.softirq_s,
                    r.other_cores,
                    r.hits.map_or(String::new(), |h| h.0.to_string()),
                    r.hits.map_or(String::new(), |h| h.1.to_string()),
                    r.ok
                );
                if w.check && matches!(kind, Kind::Pgcache | Kind::Pgpool) {
                    let verdict = check_reads(&t, kind).and_then(|msg| {
                        if w.id == "tpcb" {
                            tpcb_invariants(&t)?;
                            Ok(format!("{msg}; TPC-B invariants hold"))
                        } else {
                            Ok(msg)
                        }
                    });
                    let line = match verdict {
                        Ok(msg) => {
                            format!("{} round {} {}: ok, {msg}", w.id, round + 1, kind.short())
                        }
                        Err(e) => format!(
                            "{} round {} {}: FAILED: {e:#}",
                            w.id,
                            round + 1,
                            kind.short()
                        ),
                    };
                    eprintln!("bench:         {line}");
                    checks.push(line);
                }
                results.entry((wi, kind)).or_default().push(r);
            }
        }
    }
    let fresh = if opts.freshness_writes > 0 {
        freshness::measure_all(opts, &t, tck)
    } else {
        Vec::new()
    };
    let direct = if opts.direct_seconds > 0 {
        direct_writes::measure_all(opts, &mut t)
    } else {
        Vec::new()
    };
    let elapsed = started.elapsed();

    let phases = report::Phases {
        fresh: &fresh,
        direct: &direct,
    };
    let report = report::render(opts, &machine, &wls, &results, &checks, &phases, elapsed);
    std::fs::write(opts.out.join("report.md"), &report)?;
    std::fs::write(opts.out.join("runs.csv"), &csv)?;
    println!("{report}");
    eprintln!(
        "bench: report in {}, raw runs in {}",
        opts.out.join("report.md").display(),
        opts.out.join("runs.csv").display()
    );

    if opts.perf {
        if let Err(e) = perf::perf_profile(opts, &mut t) {
            eprintln!("bench: perf profile failed: {e:#}");
        }
    }
    let dir = t.dir.clone();
    drop(t);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
