//! The client's prepared statements and portals, as the proxy has seen them.
//!
//! When the proxy answers a batch from the cache, the server never sees its
//! Parse. The statement is remembered as not prepared upstream, and its Parse is
//! sent ahead of the first forwarded message that uses it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::sql::Analysis;

/// Statements and portals beyond this many are not tracked individually: the
/// session then stops caching extended-protocol batches (see `overflowed`).
const MAX_TRACKED: usize = 10_000;
/// Nor beyond this many bytes of statement texts and names per session: a
/// client cannot make the proxy hold more than this, however many or large
/// the statements it prepares (the server holds them too, but the proxy must
/// not hold the client's memory on top of the server's).
pub const MAX_TRACKED_BYTES: usize = 16 << 20;

pub struct StatementInfo {
    /// The client's Parse message, verbatim.
    pub parse: Bytes,
    pub analysis: Arc<Analysis>,
    /// The server has this statement, or is about to (its Parse was sent).
    pub upstream: bool,
    /// The server accepted it (ParseComplete), or the client was told so.
    pub confirmed: bool,
}

#[derive(Default)]
pub struct Statements {
    statements: HashMap<String, StatementInfo>,
    /// Portal name -> the analysis of its statement.
    portals: HashMap<String, Option<Arc<Analysis>>>,
    /// What the maps above hold, in bytes (texts, fingerprints, names).
    bytes: usize,
    overflowed: bool,
}

impl StatementInfo {
    /// The bytes this entry holds for its session.
    fn weight(&self, name: &str) -> usize {
        name.len() + self.parse.len() + self.analysis.fingerprint.len()
    }
}

impl Statements {
    pub fn get(&self, name: &str) -> Option<&StatementInfo> {
        self.statements.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut StatementInfo> {
        self.statements.get_mut(name)
    }

    /// Records a Parse. A named statement that already exists is kept as it
    /// was: the server will refuse the new one. But if the existing one is
    /// itself not confirmed yet, which of the two the server keeps depends
    /// on whether the first fails: the name is forgotten, so whatever uses
    /// it is planned as unknown.
    pub fn parsed(&mut self, name: &str, info: StatementInfo) {
        if !name.is_empty() {
            if let Some(existing) = self.statements.get(name) {
                if !existing.confirmed {
                    self.closed(name);
                }
                return;
            }
        }
        let weight = info.weight(name);
        if let Some(old) = self.statements.get(name) {
            self.bytes -= old.weight(name);
        }
        if (self.statements.len() >= MAX_TRACKED && !self.statements.contains_key(name))
            || self.bytes + weight > MAX_TRACKED_BYTES
        {
            // Untracked: whatever uses it is planned as unknown.
            self.statements.remove(name);
            self.overflowed = true;
            return;
        }
        self.bytes += weight;
        self.statements.insert(name.to_string(), info);
    }

    pub fn exists(&self, name: &str) -> bool {
        self.statements.contains_key(name)
    }

    /// DEALLOCATE ALL or DISCARD ALL: the server forgets every statement
    /// (DISCARD ALL also closes the portals; an unknown portal is only
    /// planned more conservatively, so both are forgotten).
    pub fn clear(&mut self) {
        self.statements.clear();
        self.portals.clear();
        self.bytes = 0;
    }

    /// The server answered the Parse of `name` with ParseComplete.
    pub fn confirmed(&mut self, name: &str) {
        if let Some(info) = self.statements.get_mut(name) {
            info.confirmed = true;
        }
    }

    /// The server refused the Parse of `name` (its cycle ended without a
    /// ParseComplete for it): the statement does not exist.
    pub fn refused(&mut self, name: &str) {
        if self.statements.get(name).is_some_and(|i| !i.confirmed) {
            self.closed(name);
        }
    }

    pub fn closed(&mut self, name: &str) {
        if let Some(old) = self.statements.remove(name) {
            self.bytes -= old.weight(name);
        }
    }

    pub fn bound(&mut self, portal: &str, statement: &str) {
        let analysis = self.statements.get(statement).map(|s| s.analysis.clone());
        if !self.portals.contains_key(portal) {
            if self.portals.len() >= MAX_TRACKED || self.bytes + portal.len() > MAX_TRACKED_BYTES {
                self.overflowed = true;
                return;
            }
            self.bytes += portal.len();
        }
        self.portals.insert(portal.to_string(), analysis);
    }

    /// The analysis of what `portal` runs; `None` if unknown.
    pub fn portal(&self, portal: &str) -> Option<&Arc<Analysis>> {
        self.portals.get(portal).and_then(Option::as_ref)
    }

    pub fn portal_closed(&mut self, portal: &str) {
        if self.portals.remove(portal).is_some() {
            self.bytes -= portal.len();
        }
    }

    /// Too many statements to track: the proxy may not know what some run.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(text: &str) -> StatementInfo {
        StatementInfo {
            parse: Bytes::from(text.to_string()),
            analysis: Arc::new(crate::sql::analyze("SELECT 1")),
            upstream: true,
            confirmed: false,
        }
    }

    #[test]
    fn held_bytes_are_bounded_and_given_back() {
        let mut s = Statements::default();
        let big = "x".repeat(1 << 20);
        for i in 0..64 {
            s.parsed(&format!("s{i}"), info(&big));
        }
        assert!(s.overflowed(), "16 MiB of texts at most");
        assert!(s.bytes <= MAX_TRACKED_BYTES);
        let held = s.statements.len();
        assert!(held < 64);
        for i in 0..64 {
            s.closed(&format!("s{i}"));
        }
        assert_eq!(s.bytes, 0);
        // Refused, replaced and unnamed statements keep the count exact.
        s.parsed("", info("a"));
        s.parsed("", info("bb"));
        s.parsed("n", info("ccc"));
        s.refused("n");
        s.confirmed("");
        s.refused("");
        let fingerprint = crate::sql::analyze("SELECT 1").fingerprint.len();
        assert_eq!(s.bytes, "".len() + 2 + fingerprint);
        s.bound("p", "");
        s.portal_closed("p");
        s.clear();
        assert_eq!(s.bytes, 0);
    }

    #[test]
    fn a_name_parsed_twice_before_either_answer_is_forgotten() {
        let mut s = Statements::default();
        s.parsed("s1", info("SELECT no_such_column"));
        s.parsed("s1", info("UPDATE t SET v = 1"));
        assert!(
            s.get("s1").is_none(),
            "which one the server keeps is not known"
        );
        s.parsed("s2", info("SELECT 1"));
        s.confirmed("s2");
        s.parsed("s2", info("SELECT 2"));
        assert_eq!(
            &s.get("s2").unwrap().parse[..],
            b"SELECT 1",
            "the server refuses the second"
        );
    }
}
