//! The settings a new session starts with: `pg_db_role_setting` entries in
//! PostgreSQL's precedence, over the server's own defaults. Only the two the
//! proxy decides on are kept: `search_path` (name resolution) and
//! `default_transaction_isolation` (caching inside transaction blocks).

use super::names::truncate_identifier;
use super::snapshot::{RoleSetting, Snapshot};

impl Snapshot {
    /// The search_path a new session of `role` (the login role) in this
    /// database starts with, split into entries (`"$user"` kept as is).
    pub fn default_search_path(&self, role: &str) -> Vec<String> {
        let value = self
            .role_setting(role, |s| s.search_path.as_deref())
            .unwrap_or(&self.server_search_path);
        parse_search_path(value)
    }

    /// Whether a new session of `role` starts at READ COMMITTED (READ
    /// UNCOMMITTED behaves the same in PostgreSQL).
    pub fn default_isolation_is_read_committed(&self, role: &str) -> bool {
        let value = self
            .role_setting(role, |s| s.isolation.as_deref())
            .unwrap_or(&self.server_isolation);
        isolation_is_read_committed(value)
    }

    /// The value `pick` finds in the most specific entry that has one: this
    /// database and role, then the role in every database, then this
    /// database for every role, then every role in every database. That is
    /// the order of the sources PGC_S_DATABASE_USER > PGC_S_USER >
    /// PGC_S_DATABASE > PGC_S_GLOBAL in PostgreSQL's process_settings().
    fn role_setting<'a>(
        &'a self,
        role: &str,
        pick: impl Fn(&'a RoleSetting) -> Option<&'a str>,
    ) -> Option<&'a str> {
        let order = [
            (true, Some(role)),
            (false, Some(role)),
            (true, None),
            (false, None),
        ];
        order.into_iter().find_map(|(db_specific, who)| {
            self.role_settings
                .iter()
                .filter(|s| s.db_specific == db_specific && s.role.as_deref() == who)
                .find_map(&pick)
        })
    }
}

/// Splits a search_path value the way PostgreSQL's SplitIdentifierString
/// does: comma-separated, surrounding whitespace ignored, `"quoted"` entries
/// kept exactly (`""` is a quote), unquoted ones lower-cased; every entry cut
/// to 63 bytes. `"$user"` comes back as `$user`. Malformed input gives what
/// could be read (PostgreSQL would have rejected it when it was set).
pub fn parse_search_path(value: &str) -> Vec<String> {
    let mut entries = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let mut entry = String::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                // A lone quote ends the entry; a doubled one is a quote.
                if c == '"' && chars.next_if_eq(&'"').is_none() {
                    break;
                }
                entry.push(c);
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',' && !c.is_whitespace()) {
                // downcase_identifier folds ASCII only (in UTF-8 databases).
                entry.push(c.to_ascii_lowercase());
            }
        }
        entries.push(truncate_identifier(&entry).to_string());
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            Some(',') | None => {}
            // Junk after an entry: skip to the next comma.
            Some(_) => while chars.next_if(|c| *c != ',').is_some() {},
        }
        if chars.peek().is_none() {
            break;
        }
    }
    entries
}

/// Whether a `default_transaction_isolation` / `transaction_isolation` value
/// means READ COMMITTED semantics. Unknown values count as "no", the answer
/// under which the proxy caches less.
pub fn isolation_is_read_committed(value: &str) -> bool {
    let value = value.trim().trim_matches(|c| c == '\'' || c == '"').trim();
    let normalized: Vec<String> = value
        .split_whitespace()
        .map(|w| w.to_ascii_lowercase())
        .collect();
    matches!(
        normalized.join(" ").as_str(),
        "read committed" | "read uncommitted"
    )
}

/// Reads the modelled settings out of one `setconfig` array
/// (`name=value` strings, names already lower-case).
pub(super) fn parse_setconfig(
    role: Option<String>,
    db_specific: bool,
    setconfig: &[String],
) -> RoleSetting {
    let mut setting = RoleSetting {
        role,
        db_specific,
        search_path: None,
        isolation: None,
    };
    for item in setconfig {
        let Some((name, value)) = item.split_once('=') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "search_path" => setting.search_path = Some(value.to_string()),
            "default_transaction_isolation" => setting.isolation = Some(value.to_string()),
            _ => {}
        }
    }
    setting
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_postgres() {
        assert_eq!(parse_search_path("\"$user\", public"), ["$user", "public"]);
        assert_eq!(parse_search_path("  A ,\"B\",c"), ["a", "B", "c"]);
        assert_eq!(parse_search_path("\"we\"\"ird, one\""), ["we\"ird, one"]);
        assert_eq!(parse_search_path(""), Vec::<String>::new());
        assert_eq!(parse_search_path("\"\""), [""]);
        let long = "x".repeat(70);
        assert_eq!(parse_search_path(&long), ["x".repeat(63)]);
    }

    #[test]
    fn isolation_values() {
        assert!(isolation_is_read_committed("read committed"));
        assert!(isolation_is_read_committed("READ  UNCOMMITTED"));
        assert!(isolation_is_read_committed("'read committed'"));
        assert!(!isolation_is_read_committed("serializable"));
        assert!(!isolation_is_read_committed("repeatable read"));
        assert!(!isolation_is_read_committed("nonsense"));
    }
}
