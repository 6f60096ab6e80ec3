//! The file-descriptor limit the configured connection limits need.
//!
//! Each client session holds two descriptors (the client's socket and its
//! upstream connection); the admin server holds one per connection; catalog
//! connections, listeners, the policy watch and logs need a few more. A
//! process that runs out refuses clients with "Too many open files" instead
//! of the proxy's own 53300, so the limit is checked, and raised, at start.

use tracing::{info, warn};

/// Descriptors beyond the sessions' and admin connections': listeners,
/// catalog connections, the policy watch, logs, cancel forwarding.
pub const SLACK: u64 = 64;

/// Descriptors needed for `max_clients` sessions and `max_admin` admin
/// connections.
pub fn needed(max_clients: usize, max_admin: usize) -> u64 {
    2 * max_clients as u64 + max_admin as u64 + SLACK
}

/// What the check found and did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Enough { soft: u64 },
    Raised { from: u64, to: u64 },
    TooLow { soft: u64, needed: u64 },
}

/// Compares RLIMIT_NOFILE with what the limits need, raises the soft limit
/// (up to the hard one) if it is short, and warns, naming what to raise,
/// if that is still not enough.
pub fn check(max_clients: usize, max_admin: usize) -> Outcome {
    let needed = needed(max_clients, max_admin);
    let outcome = raise_to(needed);
    match outcome {
        Outcome::Enough { .. } => {}
        Outcome::Raised { from, to } => {
            info!(
                from,
                to, needed, "raised the open-file limit (RLIMIT_NOFILE)"
            )
        }
        Outcome::TooLow { soft, needed } => warn!(
            limit = soft,
            needed,
            "the open-file limit (RLIMIT_NOFILE, `ulimit -n`) is below what \
             --max-client-connections needs (2 per client, plus the admin \
             server's and {SLACK} more): raise it to {needed} (ulimit -n, \
             LimitNOFILE= in systemd, nofile in limits.conf) or lower \
             --max-client-connections to {}",
            soft.saturating_sub(max_admin as u64 + SLACK) / 2
        ),
    }
    outcome
}

fn raise_to(needed: u64) -> Outcome {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Outcome::TooLow { soft: 0, needed };
    }
    let (soft, hard) = (limit.rlim_cur, limit.rlim_max);
    if soft >= needed {
        return Outcome::Enough { soft };
    }
    let raised = libc::rlimit {
        rlim_cur: hard.min(needed.max(soft)),
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the struct it is given; raising the soft limit
    // up to the hard one needs no privilege.
    if raised.rlim_cur > soft && unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        let to = raised.rlim_cur;
        if to >= needed {
            return Outcome::Raised { from: soft, to };
        }
        return Outcome::TooLow { soft: to, needed };
    }
    Outcome::TooLow { soft, needed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_per_client_plus_admin_and_slack() {
        assert_eq!(needed(1000, 64), 2000 + 64 + SLACK);
    }
}
