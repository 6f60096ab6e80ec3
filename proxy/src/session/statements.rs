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
    overflowed: bool,
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
                    self.statements.remove(name);
                }
                return;
            }
        }
        if self.statements.len() >= MAX_TRACKED && !self.statements.contains_key(name) {
            self.overflowed = true;
            return;
        }
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
            self.statements.remove(name);
        }
    }

    pub fn closed(&mut self, name: &str) {
        self.statements.remove(name);
    }

    pub fn bound(&mut self, portal: &str, statement: &str) {
        let analysis = self.statements.get(statement).map(|s| s.analysis.clone());
        if self.portals.len() >= MAX_TRACKED && !self.portals.contains_key(portal) {
            self.overflowed = true;
            return;
        }
        self.portals.insert(portal.to_string(), analysis);
    }

    /// The analysis of what `portal` runs; `None` if unknown.
    pub fn portal(&self, portal: &str) -> Option<&Arc<Analysis>> {
        self.portals.get(portal).and_then(Option::as_ref)
    }

    pub fn portal_closed(&mut self, portal: &str) {
        self.portals.remove(portal);
    }

    /// Too many statements to track: the proxy may not know what some run.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}
