//! The postmaster process: launching it, waiting until it accepts
//! connections, and stopping it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::{keeper, privilege};

/// How long a fresh server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often readiness and exit are polled.
const POLL: Duration = Duration::from_millis(50);

/// Why [`Cluster::launch`] failed.
pub(crate) enum LaunchError {
    /// The port was taken between choosing and binding it: try another.
    PortInUse(Error),
    /// Anything else.
    Failed(Error),
}

impl From<LaunchError> for Error {
    fn from(e: LaunchError) -> Self {
        match e {
            LaunchError::PortInUse(e) | LaunchError::Failed(e) => e,
        }
    }
}

impl Cluster {
    /// Starts `postgres -D <data dir>` (as our own child, not through
    /// pg_ctl, so we hold its pid) with its output appended to the log, puts
    /// it into `slot` and waits until it accepts TCP connections.
    pub(crate) fn launch(&self, slot: &mut Option<Child>) -> Result<(), LaunchError> {
        let fail = LaunchError::Failed;
        let open_log = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log_path)
                .map_err(|e| Error::io(format!("open server log {}", self.log_path.display()), e))
        };
        let log = open_log().map_err(fail)?;
        let log_offset = log.metadata().map(|m| m.len()).unwrap_or(0);

        let mut cmd = Command::new(&self.programs.postgres);
        cmd.arg("-D")
            .arg(&self.data_dir)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(open_log().map_err(fail)?)
            .stderr(log);
        if let Some(user) = self.run_as {
            user.apply(&mut cmd);
        }
        privilege::die_with_parent(&mut cmd, libc::SIGQUIT);
        let child = keeper::spawn(cmd).map_err(|e| {
            fail(Error::io(
                format!("start {}", self.programs.postgres.display()),
                e,
            ))
        })?;
        let child = slot.insert(child);

        match self.wait_ready(child) {
            Ok(()) => Ok(()),
            Err(reason) => {
                if let Some(child) = slot.take() {
                    let _ = stop(child, libc::SIGQUIT, Duration::from_secs(10));
                }
                let new_log = read_from(&self.log_path, log_offset);
                let error = Error::StartFailed {
                    data_dir: self.data_dir.clone(),
                    reason,
                    log_tail: self.log_tail(40),
                };
                if new_log.contains("could not create any TCP/IP sockets")
                    || new_log.contains("Address already in use")
                {
                    Err(LaunchError::PortInUse(error))
                } else {
                    Err(LaunchError::Failed(error))
                }
            }
        }
    }

    /// Polls `pg_isready` until the server accepts connections; fails early
    /// if the server exits, and after [`READY_TIMEOUT`].
    fn wait_ready(&self, child: &mut Child) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Err(format!("the server exited early ({status})")),
                Ok(None) => {}
                Err(e) => return Err(format!("cannot wait for the server: {e}")),
            }
            if self.is_ready() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not accepting connections on port {} after {READY_TIMEOUT:?}",
                    self.port
                ));
            }
            sleep(POLL);
        }
    }

    /// Whether `pg_isready -h 127.0.0.1 -p <port>` reports "accepting".
    fn is_ready(&self) -> bool {
        Command::new(&self.programs.pg_isready)
            .args(["-q", "-t", "2", "-h", self.host()])
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

/// Sends `signal` to the postmaster and waits for it to exit; after `timeout`
/// it is killed. `SIGINT` is a fast shutdown, `SIGQUIT` an immediate one.
pub(crate) fn stop(mut child: Child, signal: libc::c_int, timeout: Duration) -> Result<()> {
    let context = "stop the PostgreSQL server";
    let pid = child.id() as libc::pid_t;
    // SAFETY: the child has not been reaped yet (we own it), so the pid still
    // names our postmaster.
    unsafe { libc::kill(pid, signal) };
    let deadline = Instant::now() + timeout;
    loop {
        if child
            .try_wait()
            .map_err(|e| Error::io(context, e))?
            .is_some()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            child.kill().map_err(|e| Error::io(context, e))?;
            child.wait().map_err(|e| Error::io(context, e))?;
            return Ok(());
        }
        sleep(Duration::from_millis(20));
    }
}

/// The file's content after `offset`, lossily decoded; empty if unreadable.
fn read_from(path: &std::path::Path, offset: u64) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut file) = File::open(path) {
        if file.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = file.read_to_end(&mut bytes);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
