//! pgpool-II with its shared-memory query cache, configured and started as
//! one of the targets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::targets::{find_program, localhost, wait_for_sql, Proc};

pub struct Pgpool {
    pub dir: PathBuf,
    pub port: u16,
    pub run_as: Option<(u32, u32)>,
    pub proc: Option<Proc>,
}

impl Pgpool {
    pub fn conf(&self, backend: SocketAddr) -> String {
        let d = self.dir.display();
        format!(
            "# written by proxy/examples/bench/pgpool.rs\n\
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

    pub fn start(&mut self) -> Result<()> {
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
        let addr = localhost(self.port);
        wait_for_sql(addr, Duration::from_secs(30)).with_context(|| {
            format!(
                "pgpool did not come up; its log:\n{}",
                std::fs::read_to_string(self.dir.join("pgpool.log")).unwrap_or_default()
            )
        })
    }

    /// Restart: the shmem cache and its counters start empty.
    pub fn restart(&mut self) -> Result<()> {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
        self.start()
    }
}

pub fn run_as_postgres() -> Result<Option<(u32, u32)>> {
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
