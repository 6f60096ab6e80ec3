//! pgbench's command line, and reading what it reports and logs.

use std::net::SocketAddr;
use std::path::Path;

use crate::targets::{localhost, DB, USER};
use crate::workloads::{Script, Workload};

/// `-h -p -U` for a target (pgbench and psql spell them alike).
pub fn conn_args(addr: SocketAddr) -> Vec<String> {
    vec![
        "-h".into(),
        addr.ip().to_string(),
        "-p".into(),
        addr.port().to_string(),
        "-U".into(),
        USER.into(),
    ]
}

pub fn pgbench_args(w: &Workload, addr: SocketAddr, log_prefix: Option<&Path>) -> Vec<String> {
    let mut args = vec!["-n".to_string()];
    match &w.script {
        Script::Builtin(name) => args.extend(["-b".into(), name.to_string()]),
        Script::File(p) => args.extend(["-f".into(), p.display().to_string()]),
    }
    args.extend([
        "-M".into(),
        w.mode.into(),
        "-c".into(),
        w.clients.to_string(),
        "-j".into(),
        w.threads.to_string(),
        "-T".into(),
        w.seconds.to_string(),
    ]);
    if let Some(prefix) = log_prefix {
        args.push("-l".into());
        args.push(format!("--log-prefix={}", prefix.display()));
        if w.sampling < 1.0 {
            args.push(format!("--sampling-rate={}", w.sampling));
        }
    }
    args.extend(conn_args(addr));
    args.push(DB.into());
    args
}

/// The command line as written in the report (paths shortened).
pub fn pgbench_display(w: &Workload) -> String {
    let mut a = pgbench_args(w, localhost(0), Some(Path::new("LOG")));
    for s in a.iter_mut() {
        if let Some(name) = Path::new(s.as_str()).file_name() {
            if s.ends_with(".sql") {
                *s = name.to_string_lossy().into_owned();
            }
        }
    }
    format!("pgbench {}", a.join(" ")).replace(" -p 0", " -p PORT")
}

/// Latencies (µs) from pgbench's per-transaction logs `prefix.*`; removes them.
pub fn read_latencies(dir: &Path, stem: &str) -> Vec<u32> {
    let mut lat = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&format!("{stem}.")) {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(e.path()) {
                for line in text.lines() {
                    // client_id transaction_no time script_no time_epoch time_us ...
                    if let Some(t) = line.split_whitespace().nth(2) {
                        if let Ok(us) = t.parse::<u32>() {
                            lat.push(us);
                        }
                    }
                }
            }
            let _ = std::fs::remove_file(e.path());
        }
    }
    lat.sort_unstable();
    lat
}

pub fn field<'a>(report: &'a str, prefix: &str) -> Option<&'a str> {
    report
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
}
