//! One trust and one SCRAM cluster per process, shared by all its tests.
//!
//! They live in statics and are never dropped. Their postmasters still die
//! with the process (parent-death signal, see [`crate::keeper`]); in addition
//! an `atexit` hook stops them and removes their directories when the process
//! exits normally, which is what a test binary does even when tests failed.

use std::sync::{Once, OnceLock};

use crate::cluster::Cluster;
use crate::config::{Auth, ClusterOptions};

/// A shared cluster, or why it could not be started (kept so that every
/// test reports the same cause instead of each retrying for 30 s).
type Slot = OnceLock<Result<Cluster, String>>;

static SHARED_TRUST: Slot = OnceLock::new();
static SHARED_SCRAM: Slot = OnceLock::new();

impl Cluster {
    /// The process's shared [`Auth::Trust`] cluster, started on first use.
    ///
    /// Tests share it, so each should work in its own database or with its
    /// own role names, and never [`restart`](Cluster::restart) it.
    ///
    /// # Panics
    ///
    /// With the startup error (including the server log) if the cluster
    /// cannot start; every later call panics with the same message.
    pub fn shared() -> &'static Cluster {
        shared(&SHARED_TRUST, Auth::Trust)
    }

    /// The process's shared [`Auth::Scram`] cluster; same rules as
    /// [`shared`](Cluster::shared).
    ///
    /// # Panics
    ///
    /// If the cluster cannot start.
    pub fn shared_scram() -> &'static Cluster {
        shared(&SHARED_SCRAM, Auth::Scram)
    }
}

fn shared(slot: &'static Slot, auth: Auth) -> &'static Cluster {
    let result = slot.get_or_init(|| {
        register_exit_hook();
        Cluster::start(ClusterOptions {
            auth,
            ..ClusterOptions::default()
        })
        .map_err(|e| e.to_string())
    });
    match result {
        Ok(cluster) => cluster,
        Err(e) => panic!("testkit: the shared {auth:?} PostgreSQL cluster could not start: {e}"),
    }
}

/// The pid that registered the hook: a child forked without exec inherits
/// atexit handlers, and must not stop our servers when it exits.
static OWNER_PID: OnceLock<u32> = OnceLock::new();

fn register_exit_hook() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        OWNER_PID.get_or_init(std::process::id);
        // SAFETY: registering a plain extern "C" function; failure only means
        // the directories are left to the next run's sweep.
        unsafe { libc::atexit(stop_shared_clusters) };
    });
}

extern "C" fn stop_shared_clusters() {
    if OWNER_PID.get() != Some(&std::process::id()) {
        return;
    }
    for slot in [&SHARED_TRUST, &SHARED_SCRAM] {
        if let Some(Ok(cluster)) = slot.get() {
            // try_lock: a thread still inside restart() must not hang the exit.
            if let Ok(mut server) = cluster.server.try_lock() {
                let child = server.take();
                cluster.destroy(child);
            }
        }
    }
}
