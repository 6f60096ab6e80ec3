//! Naming of cluster directories and removal of ones left behind.
//!
//! Every cluster lives in `<temp dir>/pgcache-cluster-<pid>-<n>`. A process
//! that dies without running destructors (a killed test binary, and every
//! process using [`Cluster::shared`](crate::Cluster::shared) that is not
//! stopped at exit) leaves its directory behind; its postmaster has already
//! died of the parent-death signal. So each start removes the directories of
//! processes that no longer exist.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of a cluster's own directory (data, log, usually the socket).
const CLUSTER_PREFIX: &str = "pgcache-cluster-";
/// Prefix of a socket directory placed directly in `/tmp` because the temp
/// dir's path was too long for a unix socket.
const SOCKET_PREFIX: &str = "pgcache-sock-";

/// Distinguishes the clusters of one process.
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// A fresh `pgcache-cluster-<pid>-<n>` name, unique within this process.
pub(crate) fn fresh_cluster_name() -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    format!("{CLUSTER_PREFIX}{}-{n}", std::process::id())
}

/// The fallback socket directory that belongs with `cluster_name`.
pub(crate) fn fallback_socket_dir(cluster_name: &str) -> PathBuf {
    let suffix = cluster_name
        .strip_prefix(CLUSTER_PREFIX)
        .unwrap_or(cluster_name);
    Path::new("/tmp").join(format!("{SOCKET_PREFIX}{suffix}"))
}

/// Removes cluster and socket directories in `dir` whose creating process is
/// gone. Errors are ignored: another process may be sweeping concurrently, and
/// a leftover directory is only clutter.
pub(crate) fn sweep_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if !process_exists(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The pid in `pgcache-cluster-<pid>-<n>` or `pgcache-sock-<pid>-<n>`.
fn owner_pid(name: &str) -> Option<libc::pid_t> {
    let rest = name
        .strip_prefix(CLUSTER_PREFIX)
        .or_else(|| name.strip_prefix(SOCKET_PREFIX))?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// Whether a process with this pid exists. Only `ESRCH` counts as gone:
/// `EPERM` means it exists but belongs to someone else.
pub(crate) fn process_exists(pid: libc::pid_t) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_owner_pid() {
        assert_eq!(owner_pid("pgcache-cluster-123-4"), Some(123));
        assert_eq!(owner_pid("pgcache-sock-77-0"), Some(77));
        assert_eq!(owner_pid("pgcache-cluster-123"), None);
        assert_eq!(owner_pid("pgcache-cluster-abc-1"), None);
        assert_eq!(owner_pid("other-123-4"), None);
    }

    #[test]
    fn sweeps_only_dead_owners() {
        let dir =
            std::env::temp_dir().join(format!("pgcache-testkit-sweep-{}", std::process::id()));
        // Above the kernel's pid_max, so no such process can exist.
        let dead = dir.join("pgcache-cluster-2147483000-0");
        let dead_sock = dir.join("pgcache-sock-2147483000-0");
        let alive = dir.join(format!("pgcache-cluster-{}-999", std::process::id()));
        let unrelated = dir.join("something-else");
        for d in [&dead, &dead_sock, &alive, &unrelated] {
            std::fs::create_dir_all(d.join("data")).unwrap();
        }
        sweep_stale(&dir);
        let (dead_gone, sock_gone) = (!dead.exists(), !dead_sock.exists());
        let kept = alive.exists() && unrelated.exists();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(dead_gone && sock_gone, "stale directories were not removed");
        assert!(kept, "live or unrelated directories were removed");
    }

    #[test]
    fn names_are_unique_and_carry_our_pid() {
        let a = fresh_cluster_name();
        let b = fresh_cluster_name();
        assert_ne!(a, b);
        assert_eq!(owner_pid(&a), Some(std::process::id() as libc::pid_t));
        let sock = fallback_socket_dir(&a);
        let sock_name = sock.file_name().unwrap().to_str().unwrap();
        assert_eq!(owner_pid(sock_name), owner_pid(&a));
    }
}
