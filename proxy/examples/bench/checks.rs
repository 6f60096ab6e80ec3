//! Correctness checks after runs through a cache: its reads equal the
//! server's, and TPC-B's invariants hold.

use anyhow::{bail, Result};

use crate::minipg;
use crate::targets::{Kind, Targets, DB, USER};

/// Reads through a cache equal the server's: the hot keys and the first
/// Zipfian ranks with the exact text pgbench sends (so cached entries are
/// what is compared), twice each, and the table sums.
pub fn check_reads(t: &Targets, kind: Kind) -> Result<String> {
    let mut queries: Vec<String> = (1..=100)
        .map(|aid| format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid};"))
        .collect();
    queries.push("SELECT sum(abalance) FROM pgbench_accounts".into());
    queries.push("SELECT sum(bbalance) FROM pgbench_branches".into());
    queries.push("SELECT sum(tbalance) FROM pgbench_tellers".into());
    let mut direct = minipg::Conn::connect(t.addr(Kind::Server), USER, DB)?;
    let mut via = minipg::Conn::connect(t.addr(kind), USER, DB)?;
    let mut mismatches = Vec::new();
    for pass in 0..2 {
        for q in &queries {
            let a = direct.query(q)?;
            let b = via.query(q)?;
            if a != b {
                mismatches.push(format!(
                    "pass {pass}: {q}: server {a:?}, {} {b:?}",
                    kind.short()
                ));
            }
        }
    }
    if !mismatches.is_empty() {
        bail!(
            "{} reads differ from the server's:\n{}",
            kind.short(),
            mismatches.join("\n")
        );
    }
    Ok(format!("{} reads equal the server's", queries.len() * 2))
}

pub fn tpcb_invariants(t: &Targets) -> Result<()> {
    let out = t.cluster.psql(
        DB,
        "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches) \
         AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers)",
    )?;
    if out.trim() != "t" {
        bail!("TPC-B invariants broken: sum(abalance) = sum(bbalance) = sum(tbalance) is {out}");
    }
    Ok(())
}
