//! The live policy: read on every query, replaced whole on reload.
//!
//! Readers take an `Arc<Policy>` snapshot with a lock-free load, so a query
//! sees one consistent policy from start to end even if a reload lands
//! meanwhile. A reload parses the whole file first and swaps only a fully
//! valid policy in; a broken file leaves the old one live.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::error::PolicyErrors;
use crate::model::Policy;

/// The live policy the proxy reads on every query and reloads on change.
pub struct SharedPolicy {
    current: ArcSwap<Policy>,
    path: Option<PathBuf>,
    /// Serializes reloads: two racing reloads could otherwise read the file
    /// in one order and swap in the other, leaving an older version live.
    /// Also holds what the admin API shows about the last attempt.
    state: Mutex<ReloadState>,
}

struct ReloadState {
    loaded_at: SystemTime,
    last_error: Option<PolicyErrors>,
}

impl SharedPolicy {
    /// Starts with `policy` (already loaded from `path`, or built in) live.
    pub fn new(policy: Policy, path: Option<PathBuf>) -> SharedPolicy {
        SharedPolicy {
            current: ArcSwap::from_pointee(policy),
            path,
            state: Mutex::new(ReloadState {
                loaded_at: SystemTime::now(),
                last_error: None,
            }),
        }
    }

    /// Loads `path` and starts with it live.
    pub fn from_file(path: PathBuf) -> Result<SharedPolicy, PolicyErrors> {
        let policy = Policy::load(&path)?;
        Ok(SharedPolicy::new(policy, Some(path)))
    }

    /// The live policy. Cheap and lock-free: take one per query and keep it
    /// for the whole query.
    pub fn load(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// Re-reads the file. On success the new policy becomes live and is
    /// returned; on any error the old policy stays live and the errors are
    /// returned (and kept for [`SharedPolicy::last_error`]). Without a path
    /// there is nothing to re-read, and the live policy is returned.
    pub fn reload(&self) -> Result<Arc<Policy>, PolicyErrors> {
        let Some(path) = &self.path else {
            return Ok(self.load());
        };
        let mut state = self.lock();
        match Policy::load(path) {
            Ok(policy) => {
                let policy = Arc::new(policy);
                self.current.store(Arc::clone(&policy));
                state.loaded_at = SystemTime::now();
                state.last_error = None;
                Ok(policy)
            }
            Err(errors) => {
                state.last_error = Some(errors.clone());
                Err(errors)
            }
        }
    }

    /// Makes `policy` live without reading the file (e.g. from an admin call or
    /// a test).
    pub fn store(&self, policy: Policy) -> Arc<Policy> {
        let mut state = self.lock();
        let policy = Arc::new(policy);
        self.current.store(Arc::clone(&policy));
        state.loaded_at = SystemTime::now();
        state.last_error = None;
        policy
    }

    /// The file reloads read, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// When the live policy was made live.
    pub fn loaded_at(&self) -> SystemTime {
        self.lock().loaded_at
    }

    /// The errors of the last reload if it failed (cleared by a successful
    /// one): lets the admin API say "the file on disk is broken, the previous
    /// policy is still live".
    pub fn last_error(&self) -> Option<PolicyErrors> {
        self.lock().last_error.clone()
    }

    fn lock(&self) -> MutexGuard<'_, ReloadState> {
        // A panic elsewhere while holding the lock cannot leave the state
        // half-written (each field is assigned whole), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for SharedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedPolicy")
            .field("path", &self.path)
            .field("hash", &self.current.load().hash_hex())
            .finish_non_exhaustive()
    }
}
