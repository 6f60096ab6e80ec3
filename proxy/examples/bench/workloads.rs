//! The workloads: what pgbench runs, against which targets, and how each
//! run is prepared and checked.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::opts::Opts;
use crate::targets::Kind;

/// The hot-set script: 100 distinct keys, one SELECT per transaction.
const HOT_SQL: &str = "\\set aid random(1, 100)\n\
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n";

/// Read-mostly, Zipfian keys over all accounts, 5% writes. The SELECT has
/// the same text as the hot set's and TPC-B's.
fn zipf_sql(accounts: u64) -> String {
    format!(
        "\\set aid random_zipfian(1, {accounts}, 1.1)\n\
\\set r random(1, 100)\n\
\\if :r <= 5\n\
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n\
\\else\n\
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n\
\\endif\n"
    )
}

#[derive(Clone)]
pub enum Script {
    File(PathBuf),
    Builtin(&'static str),
}

#[derive(Clone)]
pub struct Workload {
    pub id: &'static str,
    pub title: String,
    pub about: &'static str,
    pub script: Script,
    pub mode: &'static str,
    pub clients: u32,
    pub threads: u32,
    pub seconds: u64,
    pub sampling: f64,
    pub targets: Vec<Kind>,
    /// Empty both caches before every run.
    pub cold: bool,
    /// Vacuum branches/tellers and truncate history before every run (what
    /// pgbench does by default for its built-in scripts).
    pub vacuum: bool,
    /// Statements per transaction (for CPU per query).
    pub statements: f64,
    /// After each run through a cache: compare reads through it with the server.
    pub check: bool,
}

pub fn workloads(opts: &Opts, dir: &Path) -> Result<Vec<Workload>> {
    let hot = dir.join("hot.sql");
    std::fs::write(&hot, HOT_SQL)?;
    let zipf = dir.join("zipf.sql");
    std::fs::write(&zipf, zipf_sql(100_000 * u64::from(opts.scale)))?;
    let (c, j, t) = (opts.clients, opts.threads, opts.seconds);
    let hot_targets = vec![
        Kind::Server,
        Kind::Pgcache,
        Kind::PgcacheFeed,
        Kind::Pgpool,
        Kind::Ceiling,
    ];
    let base = Workload {
        id: "",
        title: String::new(),
        about: "",
        script: Script::File(hot.clone()),
        mode: "simple",
        clients: c,
        threads: j,
        seconds: t,
        sampling: 0.1,
        targets: hot_targets.clone(),
        cold: false,
        vacuum: false,
        statements: 1.0,
        check: false,
    };
    let all = vec![
        Workload {
            id: "hot-simple",
            title: format!("Hot set, simple protocol ({c} clients)"),
            about: "100 distinct keys of pgbench_accounts, `SELECT abalance ... WHERE aid = :aid` as a simple Query: after the first round nearly all hits.",
            ..base.clone()
        },
        Workload {
            id: "hot-prepared",
            title: format!("Hot set, prepared protocol ({c} clients)"),
            about: "The same 100 keys with `-M prepared` (Bind/Describe/Execute/Sync on a named statement).",
            mode: "prepared",
            ..base.clone()
        },
        Workload {
            id: "hot-simple-1c",
            title: "Hot set, simple protocol, single client (latency)".into(),
            about: "One client, one thread: the latency a single connection sees.",
            clients: 1,
            threads: 1,
            seconds: opts.seconds_1c,
            sampling: 1.0,
            ..base.clone()
        },
        Workload {
            id: "hot-prepared-1c",
            title: "Hot set, prepared protocol, single client (latency)".into(),
            about: "One client, one thread, `-M prepared`.",
            mode: "prepared",
            clients: 1,
            threads: 1,
            seconds: opts.seconds_1c,
            sampling: 1.0,
            ..base.clone()
        },
        Workload {
            id: "select-only",
            title: format!("Select-only over all accounts, `pgbench -S`, scale {} (miss path)", opts.scale),
            about: "Uniform keys over all accounts: almost every query is a miss. Both caches are emptied before every run (pgcache: POST /api/invalidate {\"all\": true}; pgpool: restarted). `pgcache, cache disabled` runs with a policy `[cache] enabled = false`.",
            script: Script::Builtin("select-only"),
            targets: vec![
                Kind::Server,
                Kind::Pgcache,
                Kind::PgcacheOff,
                Kind::Pgpool,
                Kind::Forwarder,
            ],
            cold: true,
            ..base.clone()
        },
        Workload {
            id: "tpcb",
            title: "TPC-B-like default mix (writes invalidate constantly)".into(),
            about: "pgbench's built-in script: BEGIN, 3 UPDATEs, 1 SELECT, 1 INSERT, END. Caches emptied before every run; after every run through a cache, its reads are compared with the server's and the TPC-B invariants are checked.",
            script: Script::Builtin("tpcb-like"),
            targets: vec![Kind::Server, Kind::Pgcache, Kind::Pgpool, Kind::Forwarder],
            cold: true,
            vacuum: true,
            statements: 7.0,
            check: true,
            ..base.clone()
        },
        Workload {
            id: "zipf",
            title: "Read-mostly, Zipfian keys, 5% writes".into(),
            about: "`random_zipfian(1, naccounts, 1.1)`; 95% `SELECT abalance`, 5% `UPDATE pgbench_accounts SET abalance = abalance + 1`, all through the target. Caches emptied before every run; reads through a cache are compared with the server after each run.",
            script: Script::File(zipf),
            targets: vec![Kind::Server, Kind::Pgcache, Kind::Pgpool, Kind::Forwarder],
            cold: true,
            check: true,
            ..base.clone()
        },
    ];
    let selected: Vec<Workload> = match &opts.workloads {
        None => all,
        // Only the phases that follow the workloads (freshness, direct writes).
        Some(ids) if ids.len() == 1 && ids[0] == "none" => Vec::new(),
        Some(ids) => {
            for id in ids {
                if !all.iter().any(|w| w.id == id) {
                    bail!(
                        "unknown workload {id}; known: {}",
                        all.iter().map(|w| w.id).collect::<Vec<_>>().join(", ")
                    );
                }
            }
            all.into_iter()
                .filter(|w| ids.iter().any(|i| i == w.id))
                .collect()
        }
    };
    Ok(selected)
}
