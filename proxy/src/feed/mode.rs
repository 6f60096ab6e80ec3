//! `--change-feed`: a low file (it imports nothing of the crate), so the
//! configuration and the gate can name the mode without going through the
//! feed's facade.

use std::str::FromStr;

/// `--change-feed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChangeFeedMode {
    /// Use the feed where the server allows it (`wal_level = logical`, the
    /// service account has REPLICATION, a free slot); TTLs elsewhere. The
    /// default.
    #[default]
    Auto,
    /// Like `auto`, and a database whose feed is not streaming is not served
    /// from the cache (everything passes through) until it is.
    Required,
    /// No feed: only the proxy's own writes and TTLs.
    Off,
}

impl ChangeFeedMode {
    /// The flag's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeFeedMode::Auto => "auto",
            ChangeFeedMode::Required => "required",
            ChangeFeedMode::Off => "off",
        }
    }
}

impl FromStr for ChangeFeedMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(ChangeFeedMode::Auto),
            "required" => Ok(ChangeFeedMode::Required),
            "off" => Ok(ChangeFeedMode::Off),
            other => Err(format!(
                "invalid change feed mode {other:?}: expected auto, required or off"
            )),
        }
    }
}
