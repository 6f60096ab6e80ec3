//! The benchmark harness (issue 6): pgcache side by side with the server, with
//! pgpool-II's in-memory query cache, and with a "ceiling" wire server that
//! answers every query with one canned row at no cost.
//!
//! One run, on this machine: a throwaway PostgreSQL (testkit), `pgbench -i` at
//! scale 10, the release `pgcache` binary twice (cache on; and `[cache] enabled
//! = false` for the miss path), pgpool-II with `memory_cache_enabled = on`,
//! `memqcache_method = 'shmem'`, the ceiling (this program re-executed with
//! `--ceiling-server`) and a bare TCP relay to the server (`--forwarder`,
//! the cost of one hop that does nothing). Then pgbench (the standard client) against each
//! target in turn, target order rotated every round, several rounds; medians
//! and ratios go to a Markdown report.
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
//! hot-set runs at the end, if `perf` is installed).
//!
//! Workload ids: hot-simple, hot-prepared, hot-simple-1c, hot-prepared-1c,
//! select-only, tpcb, zipf. The report (`report.md`) and every run
//! (`runs.csv`) are written to `BENCH_OUT` and the report is printed.
//!
//! Numbers are ratios within one run on one machine where the client, the
//! proxy and the server share the cores. Nothing here asserts a timing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use testkit::{Cluster, ClusterOptions};

const USER: &str = "postgres";
const DB: &str = "bench";

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

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--ceiling-server") {
        let addr: SocketAddr = args
            .get(2)
            .ok_or_else(|| anyhow!("--ceiling-server ADDR"))?
            .parse()?;
        return ceiling::serve(addr);
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

// ---------------------------------------------------------------- options

struct Opts {
    seconds: u64,
    seconds_1c: u64,
    rounds: usize,
    clients: u32,
    threads: u32,
    scale: u32,
    workloads: Option<Vec<String>>,
    out: PathBuf,
    pgcache_bin: PathBuf,
    perf: bool,
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
    fn from_env() -> Result<Opts> {
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
        })
    }
}

// ---------------------------------------------------------------- targets

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Server,
    Pgcache,
    PgcacheOff,
    Pgpool,
    Ceiling,
    Forwarder,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Server => "server (direct)",
            Kind::Pgcache => "pgcache",
            Kind::PgcacheOff => "pgcache, cache disabled",
            Kind::Pgpool => "pgpool-II + query cache",
            Kind::Ceiling => "ceiling (canned row)",
            Kind::Forwarder => "forwarder (bare TCP relay)",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Pgcache => "pgcache",
            Kind::PgcacheOff => "pgcache-off",
            Kind::Pgpool => "pgpool",
            Kind::Ceiling => "ceiling",
            Kind::Forwarder => "forwarder",
        }
    }
}

/// A child process that is stopped when dropped.
struct Proc {
    name: String,
    child: Child,
    /// Signal for a clean stop (pgpool wants SIGINT for a fast shutdown).
    stop_signal: &'static str,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args([self.stop_signal, &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("bench: {} did not stop; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Pgpool {
    dir: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
    proc: Option<Proc>,
}

impl Pgpool {
    fn conf(&self, backend: SocketAddr) -> String {
        let d = self.dir.display();
        format!(
            "# written by proxy/examples/bench.rs\n\
backend_clustering_mode = 'raw'\n\
listen_addresses = '127.0.0.1'\n\
port = {port}\n\
unix_socket_directories = '{d}'\n\
pcp_listen_addresses = ''\n\
pcp_port = {pcp}\n\
pcp_socket_dir = '{d}'\n\
backend_hostname0 = '{host}'\n\
backend_port0 = {bport}\n\
backend_weight0 = 1\n\
backend_flag0 = 'DISALLOW_TO_FAILOVER'\n\
enable_pool_hba = off\n\
num_init_children = 64\n\
max_pool = 2\n\
child_life_time = 0\n\
child_max_connections = 0\n\
connection_life_time = 0\n\
client_idle_limit = 0\n\
logdir = '{d}'\n\
pid_file_name = '{d}/pgpool.pid'\n\
health_check_period = 0\n\
sr_check_period = 0\n\
failover_on_backend_error = off\n\
load_balance_mode = off\n\
log_min_messages = warning\n\
memory_cache_enabled = on\n\
memqcache_method = 'shmem'\n\
memqcache_total_size = 256MB\n\
memqcache_max_num_cache = 2000000\n\
memqcache_expire = 0\n\
memqcache_auto_cache_invalidation = on\n\
memqcache_maxcache = 400kB\n\
memqcache_cache_block_size = 1MB\n\
memqcache_oiddir = '{d}/oiddir'\n",
            port = self.port,
            pcp = testkit::free_port(),
            host = backend.ip(),
            bport = backend.port(),
        )
    }

    fn start(&mut self) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let pgpool = find_program("pgpool", &["/usr/sbin/pgpool"])?;
        let log = std::fs::File::create(self.dir.join("pgpool.log"))?;
        let mut cmd = Command::new(pgpool);
        cmd.arg("-n")
            .arg("-f")
            .arg(self.dir.join("pgpool.conf"))
            .arg("-F")
            .arg(self.dir.join("pcp.conf"))
            .arg("-a")
            .arg(self.dir.join("pool_hba.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        let child = cmd.spawn().context("start pgpool")?;
        self.proc = Some(Proc {
            name: "pgpool".into(),
            child,
            stop_signal: "-INT",
        });
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        wait_for_sql(addr, Duration::from_secs(30)).with_context(|| {
            format!(
                "pgpool did not come up; its log:\n{}",
                std::fs::read_to_string(self.dir.join("pgpool.log")).unwrap_or_default()
            )
        })
    }

    /// Restart: the shmem cache and its counters start empty.
    fn restart(&mut self) -> Result<()> {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
        self.start()
    }
}

struct Targets {
    cluster: Cluster,
    pgcache: Proc,
    pgcache_admin: SocketAddr,
    pgcache_port: u16,
    pgcache_off: Proc,
    pgcache_off_admin: SocketAddr,
    pgcache_off_port: u16,
    pgpool: Pgpool,
    ceiling: Proc,
    ceiling_port: u16,
    forwarder: Proc,
    forwarder_port: u16,
    dir: PathBuf,
}

impl Targets {
    fn port(&self, kind: Kind) -> u16 {
        match kind {
            Kind::Server => self.cluster.port(),
            Kind::Pgcache => self.pgcache_port,
            Kind::PgcacheOff => self.pgcache_off_port,
            Kind::Pgpool => self.pgpool.port,
            Kind::Ceiling => self.ceiling_port,
            Kind::Forwarder => self.forwarder_port,
        }
    }
    fn addr(&self, kind: Kind) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port(kind)))
    }
    fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.cluster.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
    /// The process (tree) whose CPU time counts as the proxy's.
    fn proxy_pid(&self, kind: Kind) -> Option<u32> {
        match kind {
            Kind::Server => None,
            Kind::Pgcache => Some(self.pgcache.pid()),
            Kind::PgcacheOff => Some(self.pgcache_off.pid()),
            Kind::Pgpool => self.pgpool.proc.as_ref().map(Proc::pid),
            Kind::Ceiling => Some(self.ceiling.pid()),
            Kind::Forwarder => Some(self.forwarder.pid()),
        }
    }
    fn admin(&self, kind: Kind) -> Option<SocketAddr> {
        match kind {
            Kind::Pgcache => Some(self.pgcache_admin),
            Kind::PgcacheOff => Some(self.pgcache_off_admin),
            _ => None,
        }
    }
}

fn find_program(name: &str, extra: &[&str]) -> Result<PathBuf> {
    if let Ok(p) = testkit::bin(name) {
        return Ok(p);
    }
    extra
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("{name} not found (Debian: apt-get install pgpool2 / postgresql)"))
}

fn spawn_pgcache(
    opts: &Opts,
    dir: &Path,
    name: &str,
    upstream: &str,
    policy: Option<&Path>,
) -> Result<(Proc, u16, SocketAddr)> {
    let port = testkit::free_port();
    let admin = SocketAddr::from(([127, 0, 0, 1], testkit::free_port()));
    let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
    let mut cmd = Command::new(&opts.pgcache_bin);
    cmd.arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--upstream")
        .arg(upstream)
        .arg("--admin-listen")
        .arg(admin.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(p) = policy {
        cmd.arg("--policy").arg(p);
    }
    let child = cmd.spawn().context("start pgcache")?;
    let proc = Proc {
        name: name.into(),
        child,
        stop_signal: "-TERM",
    };
    wait_for_sql(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(30),
    )
    .with_context(|| format!("{name} did not come up"))?;
    Ok((proc, port, admin))
}

/// Polls until a simple query through `addr` works.
fn wait_for_sql(addr: SocketAddr, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        match minipg::Conn::connect(addr, USER, DB).and_then(|mut c| c.query("SELECT 1")) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn run_as_postgres() -> Result<Option<(u32, u32)>> {
    let id = |flag: &str| -> Result<Option<u32>> {
        let out = Command::new("id").arg(flag).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse().ok())
    };
    if id("-u")? != Some(0) {
        return Ok(None);
    }
    let uid = Command::new("id").args(["-u", "postgres"]).output()?;
    let gid = Command::new("id").args(["-g", "postgres"]).output()?;
    let uid = String::from_utf8_lossy(&uid.stdout).trim().parse()?;
    let gid = String::from_utf8_lossy(&gid.stdout).trim().parse()?;
    Ok(Some((uid, gid)))
}

fn setup(opts: &Opts) -> Result<Targets> {
    let dir = std::env::temp_dir().join(format!("pgcache-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;

    eprintln!("bench: starting PostgreSQL");
    let cluster = Cluster::start(
        ClusterOptions::default()
            .setting("max_connections", "300")
            .setting("shared_buffers", "512MB"),
    )?;
    cluster.psql("postgres", &format!("CREATE DATABASE {DB}"))?;
    eprintln!("bench: pgbench -i -s {}", opts.scale);
    let init = Command::new(testkit::bin("pgbench")?)
        .args(["-i", "-q", "-s", &opts.scale.to_string()])
        .args(conn_args(cluster.addr()))
        .arg(DB)
        .output()?;
    if !init.status.success() {
        bail!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
    }
    cluster.psql(DB, "VACUUM ANALYZE")?;

    let upstream = cluster.url(USER, Some(cluster.superuser_password()), DB);
    let off_policy = dir.join("cache-disabled.toml");
    std::fs::write(&off_policy, "[cache]\nenabled = false\n")?;
    eprintln!("bench: starting pgcache (cache on, and cache disabled)");
    let (pgcache, pgcache_port, pgcache_admin) =
        spawn_pgcache(opts, &dir, "pgcache", &upstream, None)?;
    let (pgcache_off, pgcache_off_port, pgcache_off_admin) =
        spawn_pgcache(opts, &dir, "pgcache-off", &upstream, Some(&off_policy))?;

    eprintln!("bench: starting the ceiling server");
    let ceiling_port = testkit::free_port();
    let ceiling = Proc {
        name: "ceiling".into(),
        child: Command::new(std::env::current_exe()?)
            .arg("--ceiling-server")
            .arg(format!("127.0.0.1:{ceiling_port}"))
            .stdin(Stdio::null())
            .spawn()?,
        stop_signal: "-TERM",
    };
    wait_for_sql(
        SocketAddr::from(([127, 0, 0, 1], ceiling_port)),
        Duration::from_secs(10),
    )?;

    eprintln!("bench: starting the forwarder");
    let forwarder_port = testkit::free_port();
    let forwarder = Proc {
        name: "forwarder".into(),
        child: Command::new(std::env::current_exe()?)
            .arg("--forwarder")
            .arg(format!("127.0.0.1:{forwarder_port}"))
            .arg(cluster.addr().to_string())
            .stdin(Stdio::null())
            .spawn()?,
        stop_signal: "-TERM",
    };
    wait_for_sql(
        SocketAddr::from(([127, 0, 0, 1], forwarder_port)),
        Duration::from_secs(10),
    )?;

    eprintln!("bench: starting pgpool-II");
    let pool_dir = dir.join("pgpool");
    std::fs::create_dir_all(pool_dir.join("oiddir"))?;
    let run_as = run_as_postgres()?;
    let mut pgpool = Pgpool {
        dir: pool_dir.clone(),
        port: testkit::free_port(),
        run_as,
        proc: None,
    };
    std::fs::write(pool_dir.join("pgpool.conf"), pgpool.conf(cluster.addr()))?;
    std::fs::write(pool_dir.join("pcp.conf"), "")?;
    std::fs::write(pool_dir.join("pool_hba.conf"), "")?;
    if let Some((uid, gid)) = run_as {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(&pool_dir)
            .status()?;
        if !status.success() {
            bail!("chown {} failed", pool_dir.display());
        }
        // pgpool must be able to reach its directory.
        let _ = Command::new("chmod").arg("755").arg(&dir).status();
    }
    pgpool.start()?;

    Ok(Targets {
        cluster,
        pgcache,
        pgcache_admin,
        pgcache_port,
        pgcache_off,
        pgcache_off_admin,
        pgcache_off_port,
        pgpool,
        ceiling,
        ceiling_port,
        forwarder,
        forwarder_port,
        dir,
    })
}

fn conn_args(addr: SocketAddr) -> Vec<String> {
    vec![
        "-h".into(),
        addr.ip().to_string(),
        "-p".into(),
        addr.port().to_string(),
        "-U".into(),
        USER.into(),
    ]
}

// ---------------------------------------------------------------- workloads

#[derive(Clone)]
enum Script {
    File(PathBuf),
    Builtin(&'static str),
}

#[derive(Clone)]
struct Workload {
    id: &'static str,
    title: String,
    about: &'static str,
    script: Script,
    mode: &'static str,
    clients: u32,
    threads: u32,
    seconds: u64,
    sampling: f64,
    targets: Vec<Kind>,
    /// Empty both caches before every run.
    cold: bool,
    /// Vacuum branches/tellers and truncate history before every run (what
    /// pgbench does by default for its built-in scripts).
    vacuum: bool,
    /// Statements per transaction (for CPU per query).
    statements: f64,
    /// After each run through a cache: compare reads through it with the server.
    check: bool,
}

fn workloads(opts: &Opts, dir: &Path) -> Result<Vec<Workload>> {
    let hot = dir.join("hot.sql");
    std::fs::write(&hot, HOT_SQL)?;
    let zipf = dir.join("zipf.sql");
    std::fs::write(&zipf, zipf_sql(100_000 * u64::from(opts.scale)))?;
    let (c, j, t) = (opts.clients, opts.threads, opts.seconds);
    let hot_targets = vec![Kind::Server, Kind::Pgcache, Kind::Pgpool, Kind::Ceiling];
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

fn pgbench_args(w: &Workload, addr: SocketAddr, log_prefix: Option<&Path>) -> Vec<String> {
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
fn pgbench_display(w: &Workload) -> String {
    let mut a = pgbench_args(
        w,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(Path::new("LOG")),
    );
    for s in a.iter_mut() {
        if let Some(name) = Path::new(s.as_str()).file_name() {
            if s.ends_with(".sql") {
                *s = name.to_string_lossy().into_owned();
            }
        }
    }
    format!("pgbench {}", a.join(" ")).replace(" -p 0", " -p PORT")
}

// ---------------------------------------------------------------- measurements

#[derive(Clone, Debug, Default)]
struct RunResult {
    tps: f64,
    txns: u64,
    failed: u64,
    p50_ms: f64,
    p99_ms: f64,
    proxy_cpu_s: Option<f64>,
    server_cpu_s: f64,
    /// pgbench's own CPU time.
    client_cpu_s: f64,
    /// Interrupt and softirq time of the whole machine during the run: not
    /// charged to any process, mostly the loopback traffic of the run itself.
    softirq_s: f64,
    /// CPU time of all other processes on the machine (and steal) during the
    /// run, in cores: interference.
    other_cores: f64,
    /// hits, cacheable misses (pgcache: result="miss"; pgpool: num_selects).
    hits: Option<(u64, u64)>,
    ok: bool,
    note: String,
}

/// CPU seconds (user + system, including reaped children) of a process and
/// all its live descendants.
fn tree_cpu(root: u32, clk_tck: f64) -> f64 {
    let mut procs: Vec<(u32, u32, u64)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            // rest starts at field 3 (state): ppid is field 4, utime 14 .. cstime 17.
            if f.len() < 15 {
                continue;
            }
            let ppid: u32 = f[1].parse().unwrap_or(0);
            let ticks: u64 = f[11..15]
                .iter()
                .map(|x| x.parse::<u64>().unwrap_or(0))
                .sum();
            procs.push((pid, ppid, ticks));
        }
    }
    let mut in_tree = std::collections::HashSet::new();
    in_tree.insert(root);
    loop {
        let before = in_tree.len();
        for (pid, ppid, _) in &procs {
            if in_tree.contains(ppid) {
                in_tree.insert(*pid);
            }
        }
        if in_tree.len() == before {
            break;
        }
    }
    procs
        .iter()
        .filter(|(pid, _, _)| in_tree.contains(pid))
        .map(|(_, _, t)| *t as f64)
        .sum::<f64>()
        / clk_tck
}

/// CPU seconds of this process's reaped children (pgbench, once waited for).
fn children_cpu(clk_tck: f64) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17; rest starts at field 3.
    f.get(13..15)
        .map(|v| v.iter().map(|x| x.parse::<u64>().unwrap_or(0)).sum::<u64>())
        .unwrap_or(0) as f64
        / clk_tck
}

/// CPU seconds of the whole machine so far (all CPUs, /proc/stat): time
/// charged to processes (user, nice, system, steal), and irq + softirq time.
fn machine_busy(clk_tck: f64) -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    (
        (get(0) + get(1) + get(2) + get(7)) as f64 / clk_tck,
        (get(5) + get(6)) as f64 / clk_tck,
    )
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Result<String> {
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

fn pgcache_counts(admin: SocketAddr) -> Result<(u64, u64, u64)> {
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
fn pgpool_counts(addr: SocketAddr) -> Result<(u64, u64)> {
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

/// Latencies (µs) from pgbench's per-transaction logs `prefix.*`; removes them.
fn read_latencies(dir: &Path, stem: &str) -> Vec<u32> {
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

fn field<'a>(report: &'a str, prefix: &str) -> Option<&'a str> {
    report
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
}

fn reset_caches(t: &mut Targets, kind: Kind) -> Result<()> {
    match kind {
        Kind::Pgcache | Kind::PgcacheOff => {
            let admin = t.admin(kind).expect("pgcache has an admin address");
            http(admin, "POST", "/api/invalidate", "{\"all\": true}")?;
        }
        Kind::Pgpool => t.pgpool.restart()?,
        _ => {}
    }
    Ok(())
}

fn run_one(t: &mut Targets, w: &Workload, kind: Kind, seq: usize, tck: f64) -> Result<RunResult> {
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
            Kind::Pgcache | Kind::PgcacheOff => {
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

/// Reads through a cache equal the server's: the hot keys and the first
/// Zipfian ranks with the exact text pgbench sends (so cached entries are
/// what is compared), twice each, and the table sums.
fn check_reads(t: &Targets, kind: Kind) -> Result<String> {
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

fn tpcb_invariants(t: &Targets) -> Result<()> {
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

// ---------------------------------------------------------------- the run

fn run(opts: &Opts) -> Result<()> {
    std::fs::create_dir_all(&opts.out)?;
    let machine = machine_description(opts);
    eprintln!("{machine}");
    let mut t = setup(opts)?;
    let tck = clk_tck();
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
    let elapsed = started.elapsed();

    let report = render(opts, &machine, &wls, &results, &checks, elapsed);
    std::fs::write(opts.out.join("report.md"), &report)?;
    std::fs::write(opts.out.join("runs.csv"), &csv)?;
    println!("{report}");
    eprintln!(
        "bench: report in {}, raw runs in {}",
        opts.out.join("report.md").display(),
        opts.out.join("runs.csv").display()
    );

    if opts.perf {
        if let Err(e) = perf_profile(opts, &mut t) {
            eprintln!("bench: perf profile failed: {e:#}");
        }
    }
    let dir = t.dir.clone();
    drop(t);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// Extra hot-set runs (simple, then prepared) with `perf record` attached
/// to pgcache: a flat profile of each (self time by symbol), and for the
/// prepared run an inclusive one from DWARF call graphs. Written to
/// `perf-hot-<mode>.txt` and `perf-hot-prepared-children.txt` next to the report.
fn perf_profile(opts: &Opts, t: &mut Targets) -> Result<()> {
    let perf = find_program("perf", &[])?;
    let wls = workloads(opts, &t.dir)?;
    let base = wls
        .into_iter()
        .find(|w| w.id == "hot-simple")
        .ok_or_else(|| anyhow!("the perf profile needs the hot-simple workload"))?;
    let runs: [(&str, &'static str, &[&str]); 3] = [
        ("perf-hot-simple", "simple", &["-F", "1999"]),
        ("perf-hot-prepared", "prepared", &["-F", "1999"]),
        (
            "perf-hot-prepared-children",
            "prepared",
            &["-F", "499", "--call-graph", "dwarf,16384"],
        ),
    ];
    for (name, mode, rec_args) in runs {
        let w = Workload {
            mode,
            ..base.clone()
        };
        let data = t.dir.join(format!("{name}.data"));
        let rec = Command::new(&perf)
            .args(["record", "-e", "cpu-clock"])
            .args(rec_args)
            .arg("-o")
            .arg(&data)
            .arg("-p")
            .arg(t.pgcache.pid().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut rec = Proc {
            name: "perf".into(),
            child: rec,
            stop_signal: "-INT",
        };
        std::thread::sleep(Duration::from_millis(500));
        let out = Command::new(testkit::bin("pgbench")?)
            .args(pgbench_args(&w, t.addr(Kind::Pgcache), None))
            .output()?;
        rec.stop();
        let children = name.ends_with("children");
        let mut report = Command::new(&perf);
        report.args(["report", "--stdio", "--sort", "dso,symbol", "-g", "none"]);
        if children {
            report.args(["--children", "--percent-limit", "3"]);
        } else {
            report.args(["--no-children", "--percent-limit", "0.5"]);
        }
        let report = report.arg("-i").arg(&data).output()?;
        let path = opts.out.join(format!("{name}.txt"));
        let header = format!(
            "# pgcache, {} (perf record -e cpu-clock {}), pgbench {}\n",
            w.title.replace("simple", mode),
            rec_args.join(" "),
            field(&String::from_utf8_lossy(&out.stdout), "tps =").unwrap_or("?")
        );
        let mut text = header.into_bytes();
        if !children {
            let by_dso = Command::new(&perf)
                .args(["report", "--stdio", "--sort", "dso", "-g", "none", "-i"])
                .arg(&data)
                .output()?;
            text.extend_from_slice(b"# by binary:\n");
            text.extend_from_slice(&by_dso.stdout);
        }
        text.extend_from_slice(&report.stdout);
        std::fs::write(&path, text)?;
        eprintln!("bench: perf profile in {}", path.display());
    }
    Ok(())
}

// ---------------------------------------------------------------- report

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

fn machine_description(opts: &Opts) -> String {
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

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Summary {
    tps: f64,
    rounds: Vec<f64>,
    p50: f64,
    p99: f64,
    hit_ratio: Option<f64>,
    proxy_us: Option<f64>,
    server_us: f64,
    client_us: f64,
    softirq_us: f64,
    other_cores: f64,
    all_ok: bool,
    notes: Vec<String>,
}

fn summarize(w: &Workload, runs: &[RunResult]) -> Summary {
    let per_query = |cpu: f64, r: &RunResult| {
        if r.txns == 0 {
            f64::NAN
        } else {
            cpu * 1e6 / (r.txns as f64 * w.statements)
        }
    };
    let hits: Vec<(u64, u64)> = runs.iter().filter_map(|r| r.hits).collect();
    Summary {
        tps: median(runs.iter().map(|r| r.tps).collect()),
        rounds: runs.iter().map(|r| r.tps).collect(),
        p50: median(runs.iter().map(|r| r.p50_ms).collect()),
        p99: median(runs.iter().map(|r| r.p99_ms).collect()),
        hit_ratio: if hits.is_empty() {
            None
        } else {
            let (h, m) = hits
                .iter()
                .fold((0u64, 0u64), |(a, b), (h, m)| (a + h, b + m));
            if h + m == 0 {
                None
            } else {
                Some(h as f64 / (h + m) as f64)
            }
        },
        proxy_us: runs.iter().any(|r| r.proxy_cpu_s.is_some()).then(|| {
            median(
                runs.iter()
                    .filter_map(|r| Some(per_query(r.proxy_cpu_s?, r)))
                    .collect(),
            )
        }),
        server_us: median(runs.iter().map(|r| per_query(r.server_cpu_s, r)).collect()),
        client_us: median(runs.iter().map(|r| per_query(r.client_cpu_s, r)).collect()),
        softirq_us: median(runs.iter().map(|r| per_query(r.softirq_s, r)).collect()),
        other_cores: median(runs.iter().map(|r| r.other_cores).collect()),
        all_ok: runs.iter().all(|r| r.ok),
        notes: runs
            .iter()
            .filter(|r| !r.note.is_empty())
            .map(|r| r.note.clone())
            .collect(),
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "–".into()
    }
}

fn render(
    opts: &Opts,
    machine: &str,
    wls: &[Workload],
    results: &BTreeMap<(usize, Kind), Vec<RunResult>>,
    checks: &[String],
    elapsed: Duration,
) -> String {
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
    md.push_str(&targets_table(&summaries));
    md
}

fn w_has(wls: &[Workload], id: &str) -> bool {
    wls.iter().any(|w| w.id == id)
}

fn targets_table(s: &BTreeMap<(&str, Kind), Summary>) -> String {
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
    let mut md =
        String::from("### Targets (issue 6)\n\n| target | measured | met |\n|---|---|---|\n");
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

// ---------------------------------------------------------------- a tiny client

/// Just enough of a libpq-like client for the checks: trust authentication,
/// simple Query, text results. Its startup packet carries only user and
/// database, like pgbench's (application_name aside), so it shares cache
/// entries with pgbench's sessions.
mod minipg {
    use super::*;

    pub struct Conn {
        s: TcpStream,
    }

    pub type Row = Vec<Option<String>>;

    impl Conn {
        pub fn connect(addr: SocketAddr, user: &str, db: &str) -> Result<Conn> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            s.set_nodelay(true)?;
            let mut body = Vec::new();
            body.extend_from_slice(&196608u32.to_be_bytes());
            for (k, v) in [
                ("user", user),
                ("database", db),
                ("application_name", "pgbench"),
            ] {
                body.extend_from_slice(k.as_bytes());
                body.push(0);
                body.extend_from_slice(v.as_bytes());
                body.push(0);
            }
            body.push(0);
            let mut pkt = ((body.len() + 4) as u32).to_be_bytes().to_vec();
            pkt.extend_from_slice(&body);
            s.write_all(&pkt)?;
            let mut c = Conn { s };
            loop {
                let (tag, body) = c.read_msg()?;
                match tag {
                    b'R' if body.get(..4) != Some(&[0, 0, 0, 0][..]) => {
                        bail!("server wants a password (only trust is supported here)");
                    }
                    b'E' => bail!("connect: {}", error_text(&body)),
                    b'Z' => return Ok(c),
                    _ => {}
                }
            }
        }

        fn read_msg(&mut self) -> Result<(u8, Vec<u8>)> {
            let mut hdr = [0u8; 5];
            self.s.read_exact(&mut hdr)?;
            let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
            if len < 4 {
                bail!("bad message length");
            }
            let mut body = vec![0u8; len - 4];
            self.s.read_exact(&mut body)?;
            Ok((hdr[0], body))
        }

        pub fn query(&mut self, sql: &str) -> Result<Vec<Row>> {
            let mut msg = vec![b'Q'];
            msg.extend_from_slice(&((sql.len() + 5) as u32).to_be_bytes());
            msg.extend_from_slice(sql.as_bytes());
            msg.push(0);
            self.s.write_all(&msg)?;
            let mut rows = Vec::new();
            let mut err = None;
            loop {
                let (tag, body) = self.read_msg()?;
                match tag {
                    b'D' => rows.push(data_row(&body)?),
                    b'E' => err = Some(error_text(&body)),
                    b'Z' => break,
                    _ => {}
                }
            }
            match err {
                Some(e) => bail!("{sql}: {e}"),
                None => Ok(rows),
            }
        }
    }

    impl Drop for Conn {
        fn drop(&mut self) {
            let _ = self.s.write_all(&[b'X', 0, 0, 0, 4]);
        }
    }

    fn data_row(body: &[u8]) -> Result<Row> {
        let n = u16::from_be_bytes([body[0], body[1]]) as usize;
        let mut at = 2;
        let mut row = Vec::with_capacity(n);
        for _ in 0..n {
            let len = i32::from_be_bytes(body[at..at + 4].try_into()?);
            at += 4;
            if len < 0 {
                row.push(None);
            } else {
                let len = len as usize;
                row.push(Some(
                    String::from_utf8_lossy(&body[at..at + len]).into_owned(),
                ));
                at += len;
            }
        }
        Ok(row)
    }

    fn error_text(body: &[u8]) -> String {
        body.split(|b| *b == 0)
            .filter(|f| f.first() == Some(&b'M'))
            .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
            .next()
            .unwrap_or_else(|| "error".into())
    }
}

// ---------------------------------------------------------------- the ceiling

/// A wire server that answers every query with one canned row, at no cost:
/// the most any cache can deliver to pgbench on this machine. It speaks the
/// startup (trust), simple Query, and the extended protocol (Parse, Bind,
/// Describe, Execute, Close, Sync, Flush). Row-returning statements (SELECT,
/// WITH, VALUES, SHOW, TABLE) get one int4 row `1`; anything else its command
/// tag, so pgbench's setup and TPC-B statements are accepted too.
mod ceiling {
    use std::collections::HashMap;
    use std::net::SocketAddr;

    use bytes::{Buf, BufMut, BytesMut};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    pub fn serve(addr: SocketAddr) -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let listener = TcpListener::bind(addr).await?;
            let mut next_pid = 1000u32;
            loop {
                let (sock, _) = listener.accept().await?;
                let _ = sock.set_nodelay(true);
                next_pid += 1;
                let pid = next_pid;
                tokio::spawn(async move {
                    let _ = conn(sock, pid).await;
                });
            }
        })
    }

    fn msg(out: &mut BytesMut, tag: u8, body: &[u8]) {
        out.put_u8(tag);
        out.put_u32(body.len() as u32 + 4);
        out.put_slice(body);
    }

    fn cstr(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    const ROW_DESCRIPTION: &[u8] = &[
        0, 1, // one field
        b'c', 0, // name
        0, 0, 0, 0, // table oid
        0, 0, // attnum
        0, 0, 0, 23, // int4
        0, 4, // typlen
        0xff, 0xff, 0xff, 0xff, // typmod
        0, 0, // text
    ];
    const DATA_ROW: &[u8] = &[0, 1, 0, 0, 0, 1, b'1'];

    /// Whether the statement returns rows, and its command tag.
    fn classify(sql: &str) -> (bool, String) {
        let word: String = sql
            .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_ascii_uppercase();
        match word.as_str() {
            "SELECT" | "WITH" | "VALUES" | "TABLE" | "SHOW" => (true, "SELECT 1".into()),
            "INSERT" => (false, "INSERT 0 1".into()),
            "UPDATE" | "DELETE" | "MERGE" => (false, format!("{word} 1")),
            "END" | "COMMIT" => (false, "COMMIT".into()),
            "ABORT" | "ROLLBACK" => (false, "ROLLBACK".into()),
            "TRUNCATE" => (false, "TRUNCATE TABLE".into()),
            "" => (false, String::new()),
            w => (false, w.to_string()),
        }
    }

    fn result(out: &mut BytesMut, rows: bool, tag: &str, describe: bool) {
        if rows {
            if describe {
                msg(out, b'T', ROW_DESCRIPTION);
            }
            msg(out, b'D', DATA_ROW);
        }
        let mut t = Vec::with_capacity(tag.len() + 1);
        cstr(&mut t, tag);
        msg(out, b'C', &t);
    }

    fn read_cstr(body: &mut &[u8]) -> String {
        let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
        let s = String::from_utf8_lossy(&body[..end]).into_owned();
        *body = &body[(end + 1).min(body.len())..];
        s
    }

    #[derive(Default)]
    struct State {
        statements: HashMap<String, (bool, String, usize)>,
        portals: HashMap<String, (bool, String)>,
    }

    fn max_param(sql: &str) -> usize {
        let b = sql.as_bytes();
        let mut max = 0;
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'$' {
                let mut n = 0usize;
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    n = n * 10 + usize::from(b[j] - b'0');
                    j += 1;
                }
                max = max.max(n);
                i = j;
            } else {
                i += 1;
            }
        }
        max
    }

    /// Handles one message; false to close the connection.
    fn handle(tag: u8, mut body: &[u8], st: &mut State, out: &mut BytesMut) -> bool {
        match tag {
            b'Q' => {
                let sql = read_cstr(&mut body);
                let (rows, ctag) = classify(&sql);
                if ctag.is_empty() {
                    msg(out, b'I', &[]);
                } else {
                    result(out, rows, &ctag, true);
                }
                msg(out, b'Z', b"I");
            }
            b'P' => {
                let name = read_cstr(&mut body);
                let sql = read_cstr(&mut body);
                let (rows, ctag) = classify(&sql);
                st.statements.insert(name, (rows, ctag, max_param(&sql)));
                msg(out, b'1', &[]);
            }
            b'B' => {
                let portal = read_cstr(&mut body);
                let stmt = read_cstr(&mut body);
                let (rows, ctag, _) = st.statements.get(&stmt).cloned().unwrap_or_default();
                st.portals.insert(portal, (rows, ctag));
                msg(out, b'2', &[]);
            }
            b'D' => {
                let kind = body.first().copied().unwrap_or(b'P');
                body = &body[1.min(body.len())..];
                let name = read_cstr(&mut body);
                if kind == b'S' {
                    let (rows, _, params) = st.statements.get(&name).cloned().unwrap_or_default();
                    let mut pd = Vec::new();
                    pd.extend_from_slice(&(params as u16).to_be_bytes());
                    for _ in 0..params {
                        pd.extend_from_slice(&23u32.to_be_bytes());
                    }
                    msg(out, b't', &pd);
                    if rows {
                        msg(out, b'T', ROW_DESCRIPTION);
                    } else {
                        msg(out, b'n', &[]);
                    }
                } else if st.portals.get(&name).is_some_and(|p| p.0) {
                    msg(out, b'T', ROW_DESCRIPTION);
                } else {
                    msg(out, b'n', &[]);
                }
            }
            b'E' => {
                let name = read_cstr(&mut body);
                let (rows, ctag) = st.portals.get(&name).cloned().unwrap_or_default();
                if ctag.is_empty() {
                    msg(out, b'I', &[]);
                } else {
                    result(out, rows, &ctag, false);
                }
            }
            b'C' => {
                let kind = body.first().copied().unwrap_or(b'S');
                body = &body[1.min(body.len())..];
                let name = read_cstr(&mut body);
                if kind == b'S' {
                    st.statements.remove(&name);
                } else {
                    st.portals.remove(&name);
                }
                msg(out, b'3', &[]);
            }
            b'S' => msg(out, b'Z', b"I"),
            b'H' => {}
            b'X' => return false,
            _ => {
                let mut e = Vec::new();
                for (k, v) in [
                    ("S", "ERROR"),
                    ("C", "0A000"),
                    ("M", "not supported by the ceiling server"),
                ] {
                    e.push(k.as_bytes()[0]);
                    cstr(&mut e, v);
                }
                e.push(0);
                msg(out, b'E', &e);
                msg(out, b'Z', b"I");
            }
        }
        true
    }

    async fn conn(mut sock: TcpStream, pid: u32) -> std::io::Result<()> {
        let mut buf = BytesMut::with_capacity(16 * 1024);
        // Startup: answer SSL/GSS requests with N until a StartupMessage.
        loop {
            while buf.len() < 4
                || buf.len() < u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize
            {
                if sock.read_buf(&mut buf).await? == 0 {
                    return Ok(());
                }
            }
            let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
            let pkt = buf.split_to(len);
            let code = u32::from_be_bytes(pkt[4..8].try_into().unwrap());
            match code {
                80877103 | 80877104 => sock.write_all(b"N").await?,
                80877102 => return Ok(()),
                _ => break,
            }
        }
        let mut out = BytesMut::with_capacity(16 * 1024);
        msg(&mut out, b'R', &0u32.to_be_bytes());
        for (k, v) in [
            ("server_version", "15.0"),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("TimeZone", "UTC"),
        ] {
            let mut b = Vec::new();
            cstr(&mut b, k);
            cstr(&mut b, v);
            msg(&mut out, b'S', &b);
        }
        let mut k = Vec::new();
        k.extend_from_slice(&pid.to_be_bytes());
        k.extend_from_slice(&pid.wrapping_mul(2654435761).to_be_bytes());
        msg(&mut out, b'K', &k);
        msg(&mut out, b'Z', b"I");
        sock.write_all(&out).await?;
        out.clear();

        let mut st = State::default();
        loop {
            while buf.len() >= 5 {
                let len = u32::from_be_bytes(buf[1..5].try_into().unwrap()) as usize;
                if len < 4 {
                    return Ok(());
                }
                if buf.len() < len + 1 {
                    break;
                }
                let tag = buf[0];
                buf.advance(5);
                let body = buf.split_to(len - 4);
                if !handle(tag, &body, &mut st, &mut out) {
                    sock.write_all(&out).await?;
                    return Ok(());
                }
            }
            if !out.is_empty() {
                sock.write_all(&out).await?;
                out.clear();
            }
            if sock.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
    }
}

// ---------------------------------------------------------------- the forwarder

/// A bare TCP relay to the server (`copy_bidirectional`, TCP_NODELAY, the
/// same tokio runtime as pgcache): what one extra hop costs when the proxy
/// does nothing at all. The floor for the miss path, as the ceiling is the
/// roof for hits.
mod forwarder {
    use std::net::SocketAddr;

    use tokio::net::{TcpListener, TcpStream};

    pub fn serve(listen: SocketAddr, upstream: SocketAddr) -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let listener = TcpListener::bind(listen).await?;
            loop {
                let (mut client, _) = listener.accept().await?;
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        })
    }
}
