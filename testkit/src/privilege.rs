//! Which OS user the server runs as.
//!
//! PostgreSQL refuses to run as root. Tests (and CI) often do run as root, so
//! then `initdb` and `postgres` run as the `postgres` OS user, and the files
//! they must write (the cluster directory, the socket directory) are chowned
//! to it. When we are not root, everything simply runs as the current user.

use std::ffi::CStr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The OS user name the server runs as when we are root.
const SERVER_USER: &CStr = c"postgres";

/// An unprivileged user to switch to before exec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RunAs {
    uid: u32,
    gid: u32,
}

impl RunAs {
    /// The user for server programs: `Some(postgres)` when we are root,
    /// `None` (stay as we are) otherwise.
    pub(crate) fn for_server() -> Result<Option<RunAs>> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(None);
        }
        static POSTGRES: OnceLock<Option<RunAs>> = OnceLock::new();
        POSTGRES
            .get_or_init(|| lookup(SERVER_USER))
            .map(Some)
            .ok_or(Error::NoServerUser)
    }

    /// Makes `cmd` switch to this user. `Command::uid` also calls
    /// `setgroups(0, NULL)`, which drops root's supplementary groups.
    pub(crate) fn apply(self, cmd: &mut Command) {
        cmd.uid(self.uid).gid(self.gid);
    }

    /// Gives `path` to this user so the server can write into it.
    pub(crate) fn chown(self, path: &Path) -> Result<()> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .map_err(|e| Error::io(format!("chown {} to the postgres user", path.display()), e))
    }
}

/// Looks up a user's uid and primary gid with the thread-safe `getpwnam_r`.
fn lookup(name: &CStr) -> Option<RunAs> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain old data; getpwnam_r fills it in.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the duration of the call and buf's
    // length is passed along.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some(RunAs {
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

/// Makes the child receive `signal` when the thread that spawned it dies.
///
/// Only Linux has a parent-death signal. Elsewhere (macOS) this does nothing:
/// a postmaster whose test process was killed runs on until the next start
/// sweeps its directory, and PostgreSQL stops when it sees its lock file gone.
#[cfg(not(target_os = "linux"))]
pub(crate) fn die_with_parent(_cmd: &mut Command, _signal: libc::c_int) {}

/// Makes the child receive `signal` when the thread that spawned it dies.
///
/// Linux delivers the parent-death signal when the *thread* that forked the
/// child exits, not the process; see [`crate::keeper`] for why that is fine.
/// The hook runs in the child after std has switched uid/gid (a credential
/// change would clear the setting again), right before exec.
#[cfg(target_os = "linux")]
pub(crate) fn die_with_parent(cmd: &mut Command, signal: libc::c_int) {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the hook only calls the async-signal-safe prctl and getppid and
    // builds an io::Error from a raw errno, which does not allocate.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then nobody
            // would ever send the signal, so refuse to start.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_existing_and_missing_users() {
        let root = lookup(c"root").expect("root exists");
        assert_eq!(root, RunAs { uid: 0, gid: 0 });
        assert_eq!(lookup(c"no-such-user-pgcache"), None);
    }
}
