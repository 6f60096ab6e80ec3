//! What the report says about the machine and the programs measured.

use std::process::Command;

use crate::opts::Opts;
use crate::targets::find_program;

/// A command's output (stdout, or stderr if stdout is empty: pgpool prints
/// its version there).
fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if out.is_empty() {
                String::from_utf8_lossy(&o.stderr).trim().to_string()
            } else {
                out
            }
        })
        .unwrap_or_default()
}

pub fn machine_description(opts: &Opts) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "?".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or("?".into(), |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0));
    let postgres = testkit::bin("postgres")
        .map(|p| sh(&p.to_string_lossy(), &["--version"]))
        .unwrap_or_default();
    let pgbench = testkit::bin("pgbench")
        .map(|p| sh(&p.to_string_lossy(), &["--version"]))
        .unwrap_or_default();
    let pgpool = find_program("pgpool", &["/usr/sbin/pgpool"])
        .map(|p| sh(&p.to_string_lossy(), &["--version"]))
        .unwrap_or_default();
    let pgcache = sh(&opts.pgcache_bin.to_string_lossy(), &["--version"]);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "- CPU: {} × {model} (nproc {})\n- memory: {mem}\n- kernel: {}\n- {postgres}; {pgbench}\n- {pgpool}\n- {pgcache} (release build)\n- load average when the run started: {}",
        sh("nproc", &[]),
        sh("nproc", &[]),
        sh("uname", &["-sr"]),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}
