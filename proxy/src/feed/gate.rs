//! `--change-feed required`: which databases may be served from the cache.
//!
//! A database is open only while its stream is streaming. The supervisor
//! closes it before it invalidates on a loss, and opens it only after the
//! invalidation that starts a stream, so no hit is ever served from an entry
//! that could have missed a commit.

use std::collections::HashSet;

use parking_lot::RwLock;

/// Which databases have a streaming feed, and whether that is required.
#[derive(Debug, Default)]
pub struct FeedGate {
    required: bool,
    streaming: RwLock<HashSet<String>>,
}

impl FeedGate {
    pub fn new(mode: super::ChangeFeedMode) -> FeedGate {
        FeedGate {
            required: mode == super::ChangeFeedMode::Required,
            streaming: RwLock::default(),
        }
    }

    /// Whether sessions of `database` may use the cache now.
    pub fn allows(&self, database: &str) -> bool {
        !self.required || self.streaming.read().contains(database)
    }

    pub(super) fn set_streaming(&self, database: &str, streaming: bool) {
        let mut set = self.streaming.write();
        if streaming {
            set.insert(database.to_string());
        } else {
            set.remove(database);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ChangeFeedMode;
    use super::*;

    #[test]
    fn only_required_mode_closes_databases() {
        let auto = FeedGate::new(ChangeFeedMode::Auto);
        assert!(auto.allows("db"));
        let required = FeedGate::new(ChangeFeedMode::Required);
        assert!(!required.allows("db"));
        required.set_streaming("db", true);
        assert!(required.allows("db"));
        assert!(!required.allows("other"));
        required.set_streaming("db", false);
        assert!(!required.allows("db"));
    }
}
