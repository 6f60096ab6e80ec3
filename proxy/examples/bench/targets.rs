//! What pgbench is pointed at: the server itself, pgcache (cache on, cache
//! on with the change feed, cache off), pgpool-II, the canned-row ceiling and
//! a bare TCP relay; starting them and stopping them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use testkit::{Cluster, ClusterOptions};

use crate::minipg;
use crate::opts::Opts;
use crate::pgbench::conn_args;
use crate::pgpool::{run_as_postgres, Pgpool};

/// The user and database every target is measured with.
pub const USER: &str = "postgres";
pub const DB: &str = "bench";
/// The table whose one row the freshness measurement writes and reads.
pub const FRESHNESS_TABLE: &str = "bench_freshness";
/// The table of the read-mostly workload whose writes go straight to the
/// server (`direct_writes.rs`).
pub const DIRECT_TABLE: &str = "bench_direct";

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Kind {
    Server,
    Pgcache,
    PgcacheFeed,
    PgcacheOff,
    Pgpool,
    Ceiling,
    Forwarder,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Server => "server (direct)",
            Kind::Pgcache => "pgcache",
            Kind::PgcacheFeed => "pgcache, change feed on",
            Kind::PgcacheOff => "pgcache, cache disabled",
            Kind::Pgpool => "pgpool-II + query cache",
            Kind::Ceiling => "ceiling (canned row)",
            Kind::Forwarder => "forwarder (bare TCP relay)",
        }
    }
    pub fn short(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Pgcache => "pgcache",
            Kind::PgcacheFeed => "pgcache-feed",
            Kind::PgcacheOff => "pgcache-off",
            Kind::Pgpool => "pgpool",
            Kind::Ceiling => "ceiling",
            Kind::Forwarder => "forwarder",
        }
    }
}

/// A child process that is stopped when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
    /// Signal for a clean stop (pgpool wants SIGINT for a fast shutdown).
    pub stop_signal: &'static str,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn stop(&mut self) {
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

pub struct Targets {
    pub cluster: Cluster,
    pub pgcache: Proc,
    pub pgcache_admin: SocketAddr,
    pub pgcache_port: u16,
    /// The same binary with `--change-feed auto`.
    pub pgcache_feed: Proc,
    pub pgcache_feed_admin: SocketAddr,
    pub pgcache_feed_port: u16,
    pub pgcache_off: Proc,
    pub pgcache_off_admin: SocketAddr,
    pub pgcache_off_port: u16,
    pub pgpool: Pgpool,
    pub ceiling: Proc,
    pub ceiling_port: u16,
    pub forwarder: Proc,
    pub forwarder_port: u16,
    pub dir: PathBuf,
}

impl Targets {
    pub fn port(&self, kind: Kind) -> u16 {
        match kind {
            Kind::Server => self.cluster.port(),
            Kind::Pgcache => self.pgcache_port,
            Kind::PgcacheFeed => self.pgcache_feed_port,
            Kind::PgcacheOff => self.pgcache_off_port,
            Kind::Pgpool => self.pgpool.port,
            Kind::Ceiling => self.ceiling_port,
            Kind::Forwarder => self.forwarder_port,
        }
    }
    pub fn addr(&self, kind: Kind) -> SocketAddr {
        localhost(self.port(kind))
    }
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.cluster.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
    /// The process (tree) whose CPU time counts as the proxy's.
    pub fn proxy_pid(&self, kind: Kind) -> Option<u32> {
        match kind {
            Kind::Server => None,
            Kind::Pgcache => Some(self.pgcache.pid()),
            Kind::PgcacheFeed => Some(self.pgcache_feed.pid()),
            Kind::PgcacheOff => Some(self.pgcache_off.pid()),
            Kind::Pgpool => self.pgpool.proc.as_ref().map(Proc::pid),
            Kind::Ceiling => Some(self.ceiling.pid()),
            Kind::Forwarder => Some(self.forwarder.pid()),
        }
    }
    pub fn admin(&self, kind: Kind) -> Option<SocketAddr> {
        match kind {
            Kind::Pgcache => Some(self.pgcache_admin),
            Kind::PgcacheFeed => Some(self.pgcache_feed_admin),
            Kind::PgcacheOff => Some(self.pgcache_off_admin),
            _ => None,
        }
    }
}

pub fn find_program(name: &str, extra: &[&str]) -> Result<PathBuf> {
    if let Ok(p) = testkit::bin(name) {
        return Ok(p);
    }
    extra
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("{name} not found (Debian: apt-get install pgpool2 / postgresql)"))
}

pub fn spawn_pgcache(
    opts: &Opts,
    dir: &Path,
    name: &str,
    upstream: &str,
    policy: Option<&Path>,
    extra: &[&str],
) -> Result<(Proc, u16, SocketAddr)> {
    let port = testkit::free_port();
    let admin = localhost(testkit::free_port());
    let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
    let mut cmd = Command::new(&opts.pgcache_bin);
    cmd.arg("--listen")
        .arg(localhost(port).to_string())
        .arg("--upstream")
        .arg(upstream)
        .arg("--admin-listen")
        .arg(admin.to_string())
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(p) = policy {
        cmd.arg("--policy").arg(p);
    }
    // The feed is on by default; only the target that measures it has it.
    if !extra.contains(&"--change-feed") {
        cmd.args(["--change-feed", "off"]);
    }
    let child = cmd.spawn().context("start pgcache")?;
    let proc = Proc {
        name: name.into(),
        child,
        stop_signal: "-TERM",
    };
    wait_for_sql(localhost(port), Duration::from_secs(30))
        .with_context(|| format!("{name} did not come up"))?;
    Ok((proc, port, admin))
}

/// Runs this program again as one of its helper servers (`mode` LISTEN
/// `rest`), listening on `port`, and waits until it answers queries.
fn spawn_helper(name: &str, port: u16, mode: &[&str], rest: &[&str]) -> Result<Proc> {
    let child = Command::new(std::env::current_exe()?)
        .args(mode)
        .arg(localhost(port).to_string())
        .args(rest)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("start the {name}"))?;
    let proc = Proc {
        name: name.into(),
        child,
        stop_signal: "-TERM",
    };
    wait_for_sql(localhost(port), Duration::from_secs(10))?;
    Ok(proc)
}

/// Every target listens on the loopback interface.
pub fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Polls until a simple query through `addr` works.
pub fn wait_for_sql(addr: SocketAddr, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        match minipg::Conn::connect(addr, USER, DB).and_then(|mut c| c.query("SELECT 1")) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

pub fn setup(opts: &Opts) -> Result<Targets> {
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
    // The freshness measurement's row, made before any pgcache starts so
    // that their catalogs know the table.
    cluster.psql(
        DB,
        &format!("CREATE TABLE {FRESHNESS_TABLE} (id int PRIMARY KEY, v bigint NOT NULL); INSERT INTO {FRESHNESS_TABLE} VALUES (1, 0)"),
    )?;
    crate::direct_writes::create_table(&cluster)?;
    cluster.psql(DB, "VACUUM ANALYZE")?;

    let upstream = cluster.url(USER, Some(cluster.superuser_password()), DB);
    let off_policy = dir.join("cache-disabled.toml");
    std::fs::write(&off_policy, "[cache]\nenabled = false\n")?;
    eprintln!("bench: starting pgcache (cache on, with the change feed, and cache disabled)");
    let (pgcache, pgcache_port, pgcache_admin) =
        spawn_pgcache(opts, &dir, "pgcache", &upstream, None, &[])?;
    let (pgcache_feed, pgcache_feed_port, pgcache_feed_admin) = spawn_pgcache(
        opts,
        &dir,
        "pgcache-feed",
        &upstream,
        None,
        &["--change-feed", "auto"],
    )?;
    let (pgcache_off, pgcache_off_port, pgcache_off_admin) =
        spawn_pgcache(opts, &dir, "pgcache-off", &upstream, Some(&off_policy), &[])?;

    eprintln!("bench: starting the ceiling server");
    let ceiling_port = testkit::free_port();
    let ceiling = spawn_helper("ceiling", ceiling_port, &["--ceiling-server"], &[])?;

    eprintln!("bench: starting the forwarder");
    let forwarder_port = testkit::free_port();
    let forwarder = spawn_helper(
        "forwarder",
        forwarder_port,
        &["--forwarder"],
        &[&cluster.addr().to_string()],
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
        pgcache_feed,
        pgcache_feed_admin,
        pgcache_feed_port,
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
