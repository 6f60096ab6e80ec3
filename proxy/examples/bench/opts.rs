//! The knobs, from the environment (`BENCH_*`, listed in main.rs).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

pub struct Opts {
    pub seconds: u64,
    pub seconds_1c: u64,
    pub rounds: usize,
    pub clients: u32,
    pub threads: u32,
    pub scale: u32,
    pub workloads: Option<Vec<String>>,
    pub out: PathBuf,
    pub pgcache_bin: PathBuf,
    pub perf: bool,
    /// Direct writes per freshness measurement (0: none).
    pub freshness_writes: u32,
    /// Seconds per target of the read-mostly workload with direct writes
    /// (0: none).
    pub direct_seconds: u64,
    /// The direct writer's pause after each write, in ms.
    pub direct_write_pause_ms: u64,
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| anyhow!("{name}={v}: not a number")),
        _ => Ok(default),
    }
}

impl Opts {
    pub fn from_env() -> Result<Opts> {
        let exe = std::env::current_exe()?;
        // <target>/release/examples/bench -> <target>/release
        let release = exe
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| anyhow!("cannot locate the target directory from {}", exe.display()))?
            .to_path_buf();
        let pgcache_bin = std::env::var_os("BENCH_PGCACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| release.join("pgcache"));
        if !pgcache_bin.is_file() {
            bail!(
                "{} not found: build it first (cargo build --release -p pgcache --bins) or set BENCH_PGCACHE",
                pgcache_bin.display()
            );
        }
        let out = std::env::var_os("BENCH_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| release.join("bench"));
        let workloads = std::env::var("BENCH_WORKLOADS")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.split(',').map(|w| w.trim().to_string()).collect());
        Ok(Opts {
            seconds: env_num("BENCH_SECONDS", 10)?,
            seconds_1c: env_num("BENCH_SECONDS_1C", 4)?,
            rounds: env_num("BENCH_ROUNDS", 3)?.max(1),
            clients: env_num("BENCH_CLIENTS", 8)?,
            threads: env_num("BENCH_THREADS", 2)?,
            scale: env_num("BENCH_SCALE", 10)?,
            workloads,
            out,
            pgcache_bin,
            perf: std::env::var("BENCH_PERF").is_ok_and(|v| v == "1"),
            freshness_writes: env_num("BENCH_FRESHNESS", 300)?,
            direct_seconds: env_num("BENCH_DIRECT_SECONDS", 10)?,
            direct_write_pause_ms: env_num("BENCH_DIRECT_WRITE_MS", 100)?,
        })
    }
}
