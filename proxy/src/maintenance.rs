//! Background upkeep: the policy file watch (and SIGHUP), and the sweep that
//! frees memory held by expired or invalidated entries nobody asks for.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use policies::{Policy, PolicyErrors};
use tokio::task::JoinHandle;
use tracing::{error, info};

use crate::shared::Shared;

/// How often the policy file's modification time is checked.
const POLICY_POLL: Duration = Duration::from_secs(1);
/// How often dead entries are swept out of the store.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Starts the upkeep tasks; aborting the handle stops them.
pub fn spawn(shared: Arc<Shared>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut policy_tick = tokio::time::interval(POLICY_POLL);
        let mut sweep_tick = tokio::time::interval(SWEEP_EVERY);
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut seen = modified(&shared);
        loop {
            tokio::select! {
                _ = policy_tick.tick() => {
                    let now = modified(&shared);
                    if now != seen {
                        seen = now;
                        let _ = reload_policy(&shared, "file changed");
                    }
                }
                _ = async { match hangup.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {
                    let _ = reload_policy(&shared, "SIGHUP");
                }
                _ = sweep_tick.tick() => {
                    let engine = &shared.engine;
                    engine.store.sweep(&engine.generations, Instant::now());
                    engine.catalogs.close_idle(Instant::now());
                }
            }
        }
    })
}

fn modified(shared: &Shared) -> Option<(SystemTime, u64)> {
    let path = shared.engine.policy.path()?;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reloads the policy file. A valid file applies to the next query; an invalid
/// one is refused (its errors returned) and the old policy keeps serving.
pub fn reload_policy(shared: &Shared, why: &str) -> Result<Arc<Policy>, PolicyErrors> {
    let engine = &shared.engine;
    let before = engine.policy.load();
    match engine.policy.reload() {
        Ok(policy) => {
            shared.stats.record_policy_reload(true);
            if policy.hash_hex() != before.hash_hex() {
                engine.apply_policy(&policy);
                info!(why, hash = policy.hash_hex(), "policy reloaded");
            }
            Ok(policy)
        }
        Err(errors) => {
            shared.stats.record_policy_reload(false);
            error!(
                why,
                "policy reload refused, the previous policy stays in force:\n{errors}"
            );
            Err(errors)
        }
    }
}
