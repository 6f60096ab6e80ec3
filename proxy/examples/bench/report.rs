//! The Markdown report: one table per workload, the correctness checks, and
//! the targets.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::direct_writes::{DirectWrites, READERS, ROWS};
use crate::freshness::{percentile, Freshness};
use crate::measure::RunResult;
use crate::opts::Opts;
use crate::pgbench::pgbench_display;
use crate::summary::{summarize, Summary};
use crate::targets::Kind;
use crate::workloads::Workload;

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "–".into()
    }
}

/// What the phases after the pgbench workloads measured.
pub struct Phases<'a> {
    pub fresh: &'a [Freshness],
    pub direct: &'a [DirectWrites],
}

pub fn render(
    opts: &Opts,
    machine: &str,
    wls: &[Workload],
    results: &BTreeMap<(usize, Kind), Vec<RunResult>>,
    checks: &[String],
    phases: &Phases,
    elapsed: Duration,
) -> String {
    let (fresh, direct) = (phases.fresh, phases.direct);
    let mut md = String::new();
    let _ = writeln!(md, "### Machine\n\n{machine}\n");
    let _ = writeln!(
        md,
        "Rounds: {} (target order rotated each round), {} s per multi-client run, {} s per single-client run; pgbench scale {}; measuring took {:.0} s.\n",
        opts.rounds,
        opts.seconds,
        opts.seconds_1c,
        opts.scale,
        elapsed.as_secs_f64()
    );
    let mut summaries: BTreeMap<(&str, Kind), Summary> = BTreeMap::new();
    for (wi, w) in wls.iter().enumerate() {
        let _ = writeln!(
            md,
            "### {}\n\n{}\n\n`{}`\n",
            w.title,
            w.about,
            pgbench_display(w)
        );
        let single = w.clients == 1;
        let peers: Vec<Kind> = [Kind::Server, Kind::Ceiling, Kind::Pgpool, Kind::Forwarder]
            .into_iter()
            .filter(|k| w.targets.contains(k))
            .collect();
        let mut header = String::from("| target | TPS (median) | TPS per round | ");
        if single {
            header.push_str("mean latency ms | ");
        }
        header.push_str(
            "p50 ms | p99 ms | hit ratio | proxy CPU µs/query | server CPU µs/query | \
             pgbench CPU µs/query | softirq µs/query | other processes (cores) |",
        );
        let mut align = String::from("|---|---:|---|");
        let numeric = 8 + usize::from(single) + peers.len();
        for _ in 0..numeric {
            align.push_str("---:|");
        }
        for p in &peers {
            let _ = write!(header, " vs {} |", p.short());
        }
        let _ = writeln!(md, "{header}\n{align}");
        let sums: BTreeMap<Kind, Summary> = w
            .targets
            .iter()
            .filter_map(|k| results.get(&(wi, *k)).map(|r| (*k, summarize(w, r))))
            .collect();
        let tps_of = |k: Kind| sums.get(&k).map_or(f64::NAN, |s| s.tps);
        for k in &w.targets {
            let Some(s) = sums.get(k) else { continue };
            let mut row = format!(
                "| {}{} | {:.0} | {} | ",
                k.label(),
                if s.all_ok { "" } else { " (errors, see below)" },
                s.tps,
                s.rounds
                    .iter()
                    .map(|x| format!("{x:.0}"))
                    .collect::<Vec<_>>()
                    .join(" / "),
            );
            if single {
                let _ = write!(row, "{:.3} | ", 1000.0 / s.tps);
            }
            let _ = write!(
                row,
                "{:.3} | {:.3} | {} | {} | {:.1} | {:.1} | {:.1} | {:.2} |",
                s.p50,
                s.p99,
                s.hit_ratio
                    .map_or("–".into(), |h| format!("{:.1}%", h * 100.0)),
                s.proxy_us.map_or("–".into(), |u| format!("{u:.1}")),
                s.server_us,
                s.client_us,
                s.softirq_us,
                s.other_cores,
            );
            for p in &peers {
                let cell = if p == k {
                    "–".to_string()
                } else {
                    ratio(s.tps, tps_of(*p))
                };
                let _ = write!(row, " {cell} |");
            }
            let _ = writeln!(md, "{row}");
        }
        for (k, s) in &sums {
            for n in &s.notes {
                let _ = writeln!(md, "\n- {}: {n}", k.short());
            }
        }
        md.push('\n');
        for (k, s) in sums {
            summaries.insert((w.id, k), s);
        }
    }
    if w_has(wls, "tpcb") || w_has(wls, "zipf") {
        let _ = writeln!(md, "### Correctness checks\n");
        for c in checks {
            let _ = writeln!(md, "- {c}");
        }
        md.push('\n');
    }
    if !fresh.is_empty() {
        md.push_str(&freshness_table(opts, fresh));
    }
    if !direct.is_empty() {
        md.push_str(&direct_table(opts, direct));
    }
    md.push_str(&targets_table(&summaries, fresh, direct));
    md
}

fn direct_table(opts: &Opts, direct: &[DirectWrites]) -> String {
    let mut md = format!(
        "### Read-mostly, writes made straight on the server\n\n\
         `bench_direct`: {ROWS} rows with a version each. Per target, {} s: one writer on a \
         direct connection to the server (`synchronous_commit = on`) bumps the version of a \
         random row, pausing {} ms after each (`BENCH_DIRECT_WRITE_MS`); {READERS} readers read random rows through the \
         target (`SELECT version FROM bench_direct WHERE id = k`, simple protocol). Caches \
         emptied before each target. pgcache invalidates by table, so every write empties \
         the cached reads of all {ROWS} rows: the hit ratio falls as the write rate rises. Stale: a read that returned a version older than one \
         acknowledged more than `max_lag` (250 ms) before the read was sent. Behind: older \
         than one acknowledged before the read was sent, but within `max_lag`. Worst \
         staleness: over the stale reads, the time from the acknowledgement of the newest \
         version the read missed to the read's start. Hit ratio: pgcache from \
         `pgcache_queries_total` (hits / (hits + misses)), pgpool-II from `SHOW pool_cache`.\n\n\
         | target | reads/s | writes | hit ratio | stale reads | stale share | behind within max_lag | worst staleness ms | note |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|\n",
        opts.direct_seconds,
        opts.direct_write_pause_ms
    );
    for d in direct {
        let share = if d.reads > 0 {
            format!("{:.2}%", d.stale as f64 * 100.0 / d.reads as f64)
        } else {
            "–".into()
        };
        let _ = writeln!(
            md,
            "| {} | {:.0} | {} | {} | {} | {share} | {} | {} | {} |",
            d.kind.map_or("?", |k| k.label()),
            d.reads_per_s(),
            d.writes,
            d.hit_ratio()
                .map_or("n/a".into(), |h| format!("{:.1}%", h * 100.0)),
            d.stale,
            d.behind,
            if d.stale > 0 {
                format!("{:.0}", d.worst_stale_ms)
            } else {
                "–".into()
            },
            d.note,
        );
    }
    md.push('\n');
    md
}

fn freshness_table(opts: &Opts, fresh: &[Freshness]) -> String {
    let mut md = format!(
        "### Freshness through the change feed\n\n\
         {} writes made straight on the server (`UPDATE bench_freshness SET v = i`, \
         `synchronous_commit = on`), each while the row is cached in pgcache-feed; a reader \
         polls the row through pgcache-feed from the moment the UPDATE is acknowledged, \
         pausing 1 ms after each read that still sees the old value. Staleness: the time \
         from the acknowledgement to the first read that sees the new value (it includes \
         that read's own round trip and up to one pause). Stale reads: reads \
         after an acknowledged write that still returned the old value (the staleness \
         window, summed over the writes). Latest stale start: the latest time after an \
         acknowledgement at which a read was sent that still returned the old value: what \
         `max_lag` bounds.\n\n\
         | condition | writes | cached at the write | p50 ms | p99 ms | max ms | stale reads | latest stale start ms | walsender CPU µs/write | note |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        opts.freshness_writes
    );
    for f in fresh {
        let mut ms = f.millis.clone();
        ms.sort_by(|a, b| a.total_cmp(b));
        let per_write = f
            .walsender_cpu_s
            .filter(|_| !ms.is_empty())
            .map_or("–".into(), |c| {
                format!("{:.0}", c * 1e6 / ms.len() as f64)
            });
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {per_write} | {} |",
            f.condition,
            ms.len(),
            f.cached_at_write,
            percentile(&ms, 0.50),
            percentile(&ms, 0.99),
            ms.last().copied().unwrap_or(f64::NAN),
            f.stale_reads,
            f.stale_window_ms,
            f.note,
        );
    }
    md.push('\n');
    md
}

fn w_has(wls: &[Workload], id: &str) -> bool {
    wls.iter().any(|w| w.id == id)
}

fn targets_table(
    s: &BTreeMap<(&str, Kind), Summary>,
    fresh: &[Freshness],
    direct: &[DirectWrites],
) -> String {
    let tps = |w: &str, k: Kind| s.get(&(w, k)).map(|x| x.tps);
    let mut rows: Vec<(String, String, bool)> = Vec::new();
    fn at_least(
        rows: &mut Vec<(String, String, bool)>,
        name: String,
        a: Option<f64>,
        b: Option<f64>,
        min: f64,
    ) {
        if let (Some(a), Some(b)) = (a, b) {
            let r = a / b;
            rows.push((name, format!("{r:.2}x (target ≥ {min}x)"), r >= min));
        }
    }
    for w in ["hot-simple", "hot-prepared"] {
        at_least(
            &mut rows,
            format!("{w}: pgcache vs ceiling TPS"),
            tps(w, Kind::Pgcache),
            tps(w, Kind::Ceiling),
            0.85,
        );
    }
    for w in ["hot-simple", "hot-prepared"] {
        at_least(
            &mut rows,
            format!("{w}: pgcache vs pgpool TPS"),
            tps(w, Kind::Pgcache),
            tps(w, Kind::Pgpool),
            2.0,
        );
    }
    for w in ["hot-simple", "hot-prepared"] {
        at_least(
            &mut rows,
            format!("{w}: pgcache with the change feed vs without, TPS"),
            tps(w, Kind::PgcacheFeed),
            tps(w, Kind::Pgcache),
            0.95,
        );
    }
    for f in fresh.iter().filter(|f| !f.millis.is_empty()) {
        let mut ms = f.millis.clone();
        ms.sort_by(|a, b| a.total_cmp(b));
        let p99 = percentile(&ms, 0.99);
        rows.push((
            format!("freshness, {}: p99", f.condition),
            format!("{p99:.2} ms (target < 50 ms)"),
            p99 < 50.0,
        ));
        // What max_lag (250 ms by default) bounds: no read sent later than
        // that after the acknowledgement returns the old value.
        rows.push((
            format!("freshness, {}: latest stale start", f.condition),
            format!("{:.2} ms (target ≤ max_lag, 250 ms)", f.stale_window_ms),
            f.stale_window_ms <= 250.0,
        ));
    }
    for d in direct
        .iter()
        .filter(|d| d.kind == Some(Kind::PgcacheFeed) && d.reads > 0)
    {
        rows.push((
            "read-mostly, direct writes: pgcache stale reads".into(),
            format!("{} of {} (target 0)", d.stale, d.reads),
            d.stale == 0,
        ));
    }
    for w in ["hot-simple-1c", "hot-prepared-1c"] {
        // latency ratio = inverse TPS ratio; target: within 1.15x of the ceiling's
        if let (Some(a), Some(b)) = (tps(w, Kind::Pgcache), tps(w, Kind::Ceiling)) {
            let r = b / a;
            rows.push((
                format!("{w}: pgcache mean latency vs ceiling"),
                format!("{r:.2}x (target ≤ 1.15x)"),
                r <= 1.15,
            ));
        }
    }
    at_least(
        &mut rows,
        "select-only, cache disabled: vs server TPS".into(),
        tps("select-only", Kind::PgcacheOff),
        tps("select-only", Kind::Server),
        0.90,
    );
    at_least(
        &mut rows,
        "select-only, cold cache: vs server TPS".into(),
        tps("select-only", Kind::Pgcache),
        tps("select-only", Kind::Server),
        0.90,
    );
    at_least(
        &mut rows,
        "tpcb: pgcache vs server TPS".into(),
        tps("tpcb", Kind::Pgcache),
        tps("tpcb", Kind::Server),
        0.90,
    );
    for w in [
        "select-only",
        "tpcb",
        "zipf",
        "hot-simple-1c",
        "hot-prepared-1c",
    ] {
        at_least(
            &mut rows,
            format!("{w}: pgcache ahead of pgpool"),
            tps(w, Kind::Pgcache),
            tps(w, Kind::Pgpool),
            1.0,
        );
    }
    let mut md = String::from(
        "### Targets (issues 6 and 13)\n\n| target | measured | met |\n|---|---|---|\n",
    );
    for (name, value, met) in rows {
        let _ = writeln!(
            md,
            "| {name} | {value} | {} |",
            if met { "yes" } else { "**no**" }
        );
    }
    for w in ["hot-simple", "hot-prepared"] {
        if let Some(us) = s.get(&(w, Kind::Pgcache)).and_then(|x| x.proxy_us) {
            let _ = writeln!(
                md,
                "| {w}: pgcache CPU per hit | {us:.1} µs (target: a few µs) | {} |",
                if us <= 5.0 { "yes" } else { "**no**" }
            );
        }
    }
    // Not targets: what one bare hop costs, for reading the miss-path rows.
    let mut context = String::new();
    for w in ["select-only", "tpcb", "zipf"] {
        let fwd = tps(w, Kind::Forwarder);
        for (k, what) in [
            (Kind::Forwarder, "bare TCP relay vs server"),
            (Kind::Pgcache, "pgcache vs bare TCP relay"),
            (
                Kind::PgcacheOff,
                "pgcache, cache disabled, vs bare TCP relay",
            ),
        ] {
            let (a, b) = match k {
                Kind::Forwarder => (fwd, tps(w, Kind::Server)),
                _ => (tps(w, k), fwd),
            };
            if let (Some(a), Some(b)) = (a, b) {
                let _ = writeln!(context, "| {w}: {what} | {:.2}x |", a / b);
            }
        }
    }
    if !context.is_empty() {
        md.push_str("\n### One hop for comparison (not targets)\n\n| | TPS ratio |\n|---|---:|\n");
        md.push_str(&context);
    }
    md
}
