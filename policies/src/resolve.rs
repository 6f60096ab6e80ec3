//! Answering the proxy's questions: for this table, query or function, what
//! does the policy say?
//!
//! Table keys are resolved one by one, most specific first: an exact
//! `[tables."schema.table"]` rule, then the schema's `"schema.*"` rule, then
//! `[defaults]`. So a wildcard `ttl = "1h"` still applies to a table whose
//! exact rule only sets `max_entry_size`.

use std::sync::Arc;
use std::time::Duration;

use crate::fingerprint::canonical_fingerprint;
use crate::model::{FunctionRule, Policy, QueryRule, TableRuleSpec};
use crate::names::QualifiedName;

/// Which rule was the most specific one that matched a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSource {
    /// A `[tables."schema.table"]` rule names this table.
    Exact,
    /// Only a `[tables."schema.*"]` rule matches.
    Schema,
    /// No rule: `[defaults]` alone.
    Default,
}

/// The effective rule for one table.
///
/// `source` lets the proxy tell "cached because a rule says so" from "cached
/// because nothing said otherwise", e.g. to cache system catalogs only when a
/// rule names them explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRule {
    pub cache: bool,
    pub ttl: Duration,
    pub max_entry_size: u64,
    /// What the table's triggers write; `None` when undeclared (a write to a
    /// table with user triggers must then invalidate everything). Shared, so
    /// handing it out per query costs a reference count, not a copy.
    pub trigger_writes: Option<Arc<[QualifiedName]>>,
    pub source: RuleSource,
}

/// What the policy decides for one query: whether to cache, for how long, and
/// up to what size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub cache: bool,
    pub ttl: Duration,
    pub max_entry_size: u64,
    pub decided_by: DecidedBy,
}

/// Why a [`Resolution`] came out as it did (for metrics and the admin API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecidedBy {
    /// `[cache] enabled = false`.
    Disabled,
    /// A `[queries."..."]` rule set `cache`.
    QueryRule,
    /// This table's rule (or `[defaults] cache = false`) refused caching.
    Table(QualifiedName, RuleSource),
    /// The query reads no table and `[defaults] cache = false`.
    Defaults,
    /// Nothing refused: the table rules and defaults allow caching.
    Tables,
}

impl Policy {
    /// The effective rule for a table; `schema` and `name` already folded
    /// (as the catalog returns them, e.g. "public", "orders").
    pub fn table(&self, schema: &str, name: &str) -> TableRule {
        let rules = self.schemas.get(schema);
        let exact = rules.and_then(|s| s.tables.get(name)).map(|e| &e.spec);
        let wildcard = rules.and_then(|s| s.wildcard.as_ref());
        let source = match (exact, wildcard) {
            (Some(_), _) => RuleSource::Exact,
            (None, Some(_)) => RuleSource::Schema,
            (None, None) => RuleSource::Default,
        };
        fn pick<T>(
            exact: Option<&TableRuleSpec>,
            wildcard: Option<&TableRuleSpec>,
            f: impl Fn(&TableRuleSpec) -> Option<T>,
        ) -> Option<T> {
            exact.and_then(&f).or_else(|| wildcard.and_then(&f))
        }
        TableRule {
            cache: pick(exact, wildcard, |s| s.cache).unwrap_or(self.default_cache),
            ttl: pick(exact, wildcard, |s| s.ttl).unwrap_or(self.default_ttl),
            max_entry_size: pick(exact, wildcard, |s| s.max_entry_size)
                .unwrap_or(self.default_max_entry_size),
            trigger_writes: pick(exact, wildcard, |s| s.trigger_writes.clone()),
            source,
        }
    }

    /// The rule for a query fingerprint, compared in canonical form (see
    /// [`canonical_fingerprint`]).
    pub fn query(&self, fingerprint: &str) -> Option<QueryRule> {
        if self.queries.is_empty() {
            return None;
        }
        self.queries
            .get(canonical_fingerprint(fingerprint).as_ref())
            .copied()
    }

    /// The declaration for a function (any overload); `schema` and `name`
    /// already folded. `None`: undeclared, so a call of a user VOLATILE
    /// function must invalidate everything, and a non-IMMUTABLE one is not
    /// cacheable.
    pub fn function(&self, schema: &str, name: &str) -> Option<FunctionRule> {
        self.functions
            .get(schema)
            .and_then(|m| m.get(name))
            .map(|e| e.rule.clone())
    }

    /// Combines the rules for one read-only query: `fingerprint` (if the proxy
    /// has one) and every table it reads, as folded (schema, name).
    ///
    /// - `[cache] enabled = false` refuses everything.
    /// - A query rule's `cache` wins over the tables' and `[defaults]`.
    /// - Otherwise any table whose rule says `cache = false` refuses.
    /// - ttl: the query rule's, else the shortest of the tables', else `[defaults] ttl`.
    /// - max_entry_size: the smallest of the tables', else `[defaults] max_entry_size`.
    ///
    /// This is only the policy's say: the proxy's own safety checks (read-only,
    /// IMMUTABLE functions, transaction state, ...) still have to pass.
    pub fn resolve<'a>(
        &self,
        fingerprint: Option<&str>,
        tables: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Resolution {
        let query = fingerprint.and_then(|f| self.query(f)).unwrap_or_default();
        let mut ttl: Option<Duration> = None;
        let mut max_entry_size: Option<u64> = None;
        let mut refused: Option<DecidedBy> = None;
        for (schema, name) in tables {
            let rule = self.table(schema, name);
            ttl = Some(ttl.map_or(rule.ttl, |t| t.min(rule.ttl)));
            max_entry_size =
                Some(max_entry_size.map_or(rule.max_entry_size, |m| m.min(rule.max_entry_size)));
            if !rule.cache && refused.is_none() {
                refused = Some(DecidedBy::Table(
                    QualifiedName::new(schema, name),
                    rule.source,
                ));
            }
        }
        let (cache, decided_by) = if !self.enabled {
            (false, DecidedBy::Disabled)
        } else if let Some(c) = query.cache {
            (c, DecidedBy::QueryRule)
        } else if let Some(r) = refused {
            (false, r)
        } else if ttl.is_none() && !self.default_cache {
            // A query reading no table (`SELECT 1`) follows [defaults] cache.
            (false, DecidedBy::Defaults)
        } else {
            (true, DecidedBy::Tables)
        };
        Resolution {
            cache,
            ttl: query.ttl.or(ttl).unwrap_or(self.default_ttl),
            max_entry_size: max_entry_size.unwrap_or(self.default_max_entry_size),
            decided_by,
        }
    }
}
