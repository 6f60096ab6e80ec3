//! What the admin API and console show of each database's feed beyond its
//! metrics: the slot it streams from and why it last failed.

use std::collections::BTreeMap;

use parking_lot::RwLock;

/// Each followed database's slot and last error, by database name.
#[derive(Debug, Default)]
pub struct FeedBoard {
    databases: RwLock<BTreeMap<String, DbFeed>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbFeed {
    /// The slot streamed from now, if any.
    pub slot: Option<String>,
    /// Why the last attempt ended or could not start.
    pub last_error: Option<String>,
}

impl FeedBoard {
    /// Every followed database, in name order.
    pub fn databases(&self) -> Vec<(String, DbFeed)> {
        self.databases
            .read()
            .iter()
            .map(|(name, feed)| (name.clone(), feed.clone()))
            .collect()
    }

    pub(super) fn followed(&self, database: &str) {
        self.databases
            .write()
            .entry(database.to_string())
            .or_default();
    }

    pub(super) fn streaming_from(&self, database: &str, slot: Option<&str>) {
        if let Some(feed) = self.databases.write().get_mut(database) {
            feed.slot = slot.map(str::to_string);
        }
    }

    pub(super) fn failed(&self, database: &str, error: String) {
        if let Some(feed) = self.databases.write().get_mut(database) {
            feed.slot = None;
            feed.last_error = Some(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_slots_and_errors_of_followed_databases_only() {
        let board = FeedBoard::default();
        board.streaming_from("unknown", Some("s"));
        assert!(board.databases().is_empty());
        board.followed("b");
        board.followed("a");
        board.streaming_from("a", Some("pgcache_1_0"));
        board.failed("b", "refused".into());
        assert_eq!(
            board.databases(),
            vec![
                (
                    "a".to_string(),
                    DbFeed {
                        slot: Some("pgcache_1_0".into()),
                        last_error: None
                    }
                ),
                (
                    "b".to_string(),
                    DbFeed {
                        slot: None,
                        last_error: Some("refused".into())
                    }
                ),
            ]
        );
    }
}
