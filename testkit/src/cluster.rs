//! A throwaway cluster: creating it, where it is, restarting and removing it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::config::{self, Auth, ClusterOptions};
use crate::error::{Error, Result};
use crate::privilege::RunAs;
use crate::server::{self, LaunchError};
use crate::{binaries, cleanup, quote};

/// The superuser of every cluster.
const SUPERUSER: &str = "postgres";
/// The superuser's password, set in every cluster (Trust ones too, so a test
/// can switch a connection to password auth without changing the cluster).
const SUPERUSER_PASSWORD: &str = "postgres-test-pw";
/// The only address the server listens on.
const HOST: &str = "127.0.0.1";
/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// How often [`Cluster::start`] picks a new port when the chosen one was
/// taken before the server could bind it.
const PORT_ATTEMPTS: usize = 5;
/// How long a fast shutdown (restart) may take before the server is killed.
const FAST_STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an immediate shutdown (drop) may take before the server is killed.
const IMMEDIATE_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL programs a running cluster needs.
#[derive(Debug)]
pub(crate) struct Programs {
    pub(crate) postgres: PathBuf,
    pub(crate) pg_isready: PathBuf,
    pub(crate) psql: PathBuf,
}

/// A running PostgreSQL server in its own temporary directory, listening on
/// `127.0.0.1:<free port>` and on a unix socket.
///
/// Dropping it stops the server (immediate shutdown) and removes the
/// directory. All methods take `&self`, so one cluster can be shared by the
/// threads of a test.
#[derive(Debug)]
pub struct Cluster {
    /// `<temp dir>/pgcache-cluster-<pid>-<n>`, removed on drop.
    pub(crate) root: PathBuf,
    pub(crate) data_dir: PathBuf,
    pub(crate) socket_dir: PathBuf,
    pub(crate) log_path: PathBuf,
    pub(crate) port: u16,
    pub(crate) auth: Auth,
    pub(crate) run_as: Option<RunAs>,
    pub(crate) programs: Programs,
    /// The postmaster; `None` while stopped.
    pub(crate) server: Mutex<Option<Child>>,
}

impl Cluster {
    /// Creates a cluster with `initdb` and starts it; returns once it accepts
    /// connections.
    ///
    /// Also removes directories left behind by earlier test processes that
    /// have exited (see the crate docs). Takes a few seconds, mostly initdb.
    pub fn start(opts: ClusterOptions) -> Result<Cluster> {
        let initdb = binaries::bin("initdb")?;
        let programs = Programs {
            postgres: binaries::bin("postgres")?,
            pg_isready: binaries::bin("pg_isready")?,
            psql: binaries::bin("psql")?,
        };
        let run_as = RunAs::for_server()?;
        let temp = std::env::temp_dir();
        cleanup::sweep_stale(&temp);

        // From here on, an early return drops `cluster`, which removes
        // whatever was created so far.
        let mut cluster = Cluster::create_dirs(&temp, opts.auth, run_as, programs)?;
        cluster.init_db(&initdb)?;
        let base_config = read(&cluster.data_dir.join("postgresql.conf"))?;
        write(
            &cluster.data_dir.join("pg_hba.conf"),
            &config::hba(opts.auth, opts.tls.is_some()),
        )?;
        let mut settings = opts.settings.clone();
        if let Some((cert, key)) = &opts.tls {
            // PostgreSQL insists that its key is private to the server's user.
            let (cert_path, key_path) = (
                cluster.data_dir.join("server.crt"),
                cluster.data_dir.join("server.key"),
            );
            write(&cert_path, cert)?;
            write(&key_path, key)?;
            for path in [&cert_path, &key_path] {
                if let Some(user) = run_as {
                    user.chown(path)?;
                }
            }
            std::fs::set_permissions(
                &key_path,
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .map_err(|e| Error::io("making the TLS key private", e))?;
            settings.push(("ssl".into(), "on".into()));
        }

        let slot = cluster.server.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut slot = std::mem::take(slot);
        for attempt in 1.. {
            cluster.port = free_port();
            let settings = config::server_settings(cluster.port, &cluster.socket_dir, &settings);
            write(
                &cluster.data_dir.join("postgresql.conf"),
                &format!("{base_config}{settings}"),
            )?;
            match cluster.launch(&mut slot) {
                Ok(()) => break,
                Err(LaunchError::PortInUse(_)) if attempt < PORT_ATTEMPTS => continue,
                Err(e) => return Err(e.into()),
            }
        }
        *cluster.server.get_mut().unwrap_or_else(|p| p.into_inner()) = slot;

        cluster.psql(
            "postgres",
            &format!(
                "CREATE ROLE {} NOLOGIN; CREATE ROLE {} NOLOGIN;",
                quote::ident(config::MD5_GROUP),
                quote::ident(config::PASSWORD_GROUP)
            ),
        )?;
        Ok(cluster)
    }

    /// Creates the cluster's directory (and socket directory) with a fresh
    /// name and gives them to the server user.
    fn create_dirs(
        temp: &Path,
        auth: Auth,
        run_as: Option<RunAs>,
        programs: Programs,
    ) -> Result<Cluster> {
        let name = loop {
            let name = cleanup::fresh_cluster_name();
            match std::fs::create_dir(temp.join(&name)) {
                Ok(()) => break name,
                // Left by an earlier process that had our pid: skip it.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::io(
                        format!("create {}", temp.join(&name).display()),
                        e,
                    ))
                }
            }
        };
        let root = temp.join(&name);
        let mut socket_dir = root.join("sock");
        if socket_dir.as_os_str().len() + "/.s.PGSQL.65535".len() > MAX_SOCKET_PATH {
            socket_dir = cleanup::fallback_socket_dir(&name);
        }
        let cluster = Cluster {
            data_dir: root.join("data"),
            log_path: root.join("postgres.log"),
            root,
            socket_dir,
            port: 0,
            auth,
            run_as,
            programs,
            server: Mutex::new(None),
        };
        std::fs::create_dir_all(&cluster.socket_dir)
            .map_err(|e| Error::io(format!("create {}", cluster.socket_dir.display()), e))?;
        if let Some(user) = run_as {
            user.chown(&cluster.root)?;
            user.chown(&cluster.socket_dir)?;
        }
        Ok(cluster)
    }

    /// Runs initdb: UTF8, C locale, no fsync, superuser `postgres` with the
    /// known password, local connections trusted.
    fn init_db(&self, initdb: &Path) -> Result<()> {
        let pwfile = self.root.join("pwfile");
        write(&pwfile, SUPERUSER_PASSWORD)?;
        if let Some(user) = self.run_as {
            user.chown(&pwfile)?;
        }
        let auth_host = match self.auth {
            Auth::Trust => "trust",
            Auth::Scram => "scram-sha-256",
        };
        let mut cmd = Command::new(initdb);
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C", "-N"])
            .arg("--auth-local=trust")
            .arg(format!("--auth-host={auth_host}"))
            .arg(format!("--pwfile={}", pwfile.display()))
            .current_dir(&self.root)
            .stdin(Stdio::null());
        if let Some(user) = self.run_as {
            user.apply(&mut cmd);
        }
        let output = cmd
            .output()
            .map_err(|e| Error::io(format!("run {}", initdb.display()), e))?;
        let _ = std::fs::remove_file(&pwfile);
        if !output.status.success() {
            return Err(Error::CommandFailed {
                program: initdb.display().to_string(),
                status: output.status.to_string(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            });
        }
        Ok(())
    }

    /// Always `"127.0.0.1"`: the server listens on IPv4 loopback only.
    pub fn host(&self) -> &str {
        HOST
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port)
    }

    /// The superuser role, `"postgres"`.
    pub fn superuser(&self) -> &str {
        SUPERUSER
    }

    /// The superuser's password, `"postgres-test-pw"` in every cluster.
    pub fn superuser_password(&self) -> &str {
        SUPERUSER_PASSWORD
    }

    /// How TCP clients authenticate.
    pub fn auth(&self) -> Auth {
        self.auth
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The directory holding the unix socket `.s.PGSQL.<port>`; pass it as
    /// `host` to libpq clients.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The server's log file (stdout and stderr of the postmaster).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// A `postgres://user[:password]@127.0.0.1:port/db` URL, with user,
    /// password and database percent-encoded.
    pub fn url(&self, user: &str, password: Option<&str>, db: &str) -> String {
        let password = password
            .map(|p| format!(":{}", quote::percent_encode(p)))
            .unwrap_or_default();
        format!(
            "postgres://{}{password}@{HOST}:{}/{}",
            quote::percent_encode(user),
            self.port,
            quote::percent_encode(db)
        )
    }

    /// Stops the server with a fast shutdown and starts it again on the same
    /// port and data directory, for fault tests. Connections are dropped; data
    /// is kept. Do not call it on a [`shared`](Cluster::shared) cluster: other
    /// tests use it.
    pub fn restart(&self) -> Result<()> {
        let mut slot = self.server.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(child) = slot.take() {
            server::stop(child, libc::SIGINT, FAST_STOP_TIMEOUT)?;
        }
        self.launch(&mut slot).map_err(Error::from)
    }

    /// The last `lines` lines of the server log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read(&self.log_path).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops the server (immediate shutdown) and removes the cluster's
    /// directories. Used by `Drop` and by the exit hook of shared clusters.
    pub(crate) fn destroy(&self, server: Option<Child>) {
        if let Some(child) = server {
            let _ = server::stop(child, libc::SIGQUIT, IMMEDIATE_STOP_TIMEOUT);
        }
        let _ = std::fs::remove_dir_all(&self.root);
        if !self.socket_dir.starts_with(&self.root) {
            let _ = std::fs::remove_dir_all(&self.socket_dir);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let server = self
            .server
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.destroy(server);
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it
/// for a listener we closed again). Another process may grab it before it is
/// used; [`Cluster::start`] retries with a new port when that happens.
///
/// # Panics
///
/// If no socket can be bound on 127.0.0.1 at all.
pub fn free_port() -> u16 {
    TcpListener::bind((HOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("testkit: cannot bind a TCP port on {HOST}: {e}"))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(format!("read {}", path.display()), e))
}

fn write(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content).map_err(|e| Error::io(format!("write {}", path.display()), e))
}
