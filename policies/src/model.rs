//! The validated policy: what the file says, in the shape lookups need.
//!
//! Everything here has passed validation, so nothing downstream re-checks.
//! Rules are indexed by schema then name (not by [`QualifiedName`]) so that a
//! lookup with the `&str`s the proxy has in hand allocates nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::error::PolicyErrors;
use crate::names::QualifiedName;
use crate::units::{ser, MIB};

/// `[cache] max_memory` when not set: 256MiB.
pub const DEFAULT_MAX_MEMORY: u64 = 256 * MIB;
/// `[cache] max_lag` when not set: 250ms.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_millis(250);
/// The longest accepted max_lag.
pub const MAX_MAX_LAG: Duration = Duration::from_secs(3600);
/// `[defaults] ttl` when not set: 60s.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// `[defaults] max_entry_size` when not set: 1MiB.
pub const DEFAULT_MAX_ENTRY_SIZE: u64 = MIB;
/// The longest accepted ttl, 10 years ("87600h"). Far beyond any useful bound
/// on staleness, yet small enough that `Instant::now() + ttl` can never
/// overflow in the cache engine.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A validated, immutable policy. Build it with [`Policy::parse`] or
/// [`Policy::load`]; [`Policy::default`] is what an empty file means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub(crate) enabled: bool,
    pub(crate) max_memory: u64,
    pub(crate) max_lag: Duration,
    pub(crate) default_cache: bool,
    pub(crate) default_ttl: Duration,
    pub(crate) default_max_entry_size: u64,
    /// schema -> its wildcard rule and its tables' rules.
    pub(crate) schemas: BTreeMap<String, SchemaRules>,
    /// canonical fingerprint -> rule.
    pub(crate) queries: BTreeMap<String, QueryRule>,
    /// schema -> function name -> rule.
    pub(crate) functions: BTreeMap<String, BTreeMap<String, FunctionEntry>>,
    pub(crate) hash_hex: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SchemaRules {
    pub(crate) wildcard: Option<TableRuleSpec>,
    pub(crate) tables: BTreeMap<String, TableEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableEntry {
    pub(crate) name: QualifiedName,
    pub(crate) spec: TableRuleSpec,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FunctionEntry {
    pub(crate) name: QualifiedName,
    pub(crate) rule: FunctionRule,
}

/// One `[tables."..."]` rule as written: a key left out is `None` and falls
/// through to the schema wildcard, then to `[defaults]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableRuleSpec {
    /// `cache = true|false`: whether results reading this table may be cached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    /// `ttl = "5s"`: the longest a cached result reading this table is served.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser::opt_duration"
    )]
    pub ttl: Option<Duration>,
    /// `max_entry_size = "256KiB"`: results larger than this pass through uncached.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser::opt_size"
    )]
    pub max_entry_size: Option<u64>,
    /// `trigger_writes = ["public.audit_log"]`: every table this table's
    /// triggers write. `None` means undeclared: a write to a table with user
    /// triggers then invalidates everything. `Some([])` declares that the
    /// triggers write no other table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_writes: Option<Arc<[QualifiedName]>>,
}

/// One `[queries."..."]` rule. Keys left out are `None`: the tables decide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueryRule {
    /// `cache = true|false`: overrides the table rules and `[defaults] cache`
    /// for this query shape (never `[cache] enabled`, nor the proxy's own
    /// safety checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    /// `ttl = "5s"`: replaces the ttl the tables would give.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser::opt_duration"
    )]
    pub ttl: Option<Duration>,
}

/// One `[functions."..."]` declaration. It applies to every overload of the name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FunctionRule {
    /// `writes = ["public.counters"]`: every table the function writes. A call
    /// invalidates these instead of everything. Empty when the function writes
    /// nothing (declared `writes = []`, or implied by `cacheable = true`).
    pub writes: Vec<QualifiedName>,
    /// `cacheable = true`: treat the function as if it were IMMUTABLE when
    /// deciding whether a SELECT calling it may be cached.
    pub cacheable: bool,
}

impl Default for Policy {
    /// What an empty policy file means: caching on, 256MiB, ttl 60s, entries up
    /// to 1MiB, every table cached, no rules.
    fn default() -> Self {
        Policy {
            enabled: true,
            max_memory: DEFAULT_MAX_MEMORY,
            max_lag: DEFAULT_MAX_LAG,
            default_cache: true,
            default_ttl: DEFAULT_TTL,
            default_max_entry_size: DEFAULT_MAX_ENTRY_SIZE,
            schemas: BTreeMap::new(),
            queries: BTreeMap::new(),
            functions: BTreeMap::new(),
            hash_hex: hash_hex(""),
        }
    }
}

pub(crate) fn hash_hex(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

impl Policy {
    /// Parses and validates policy text. `path` is only used to name the file
    /// in errors. Every problem found is returned, sorted by position.
    pub fn parse(text: &str, path: Option<&Path>) -> Result<Policy, PolicyErrors> {
        crate::validate::parse(text, path)
    }

    /// Reads and parses a policy file. A file that cannot be read (missing,
    /// unreadable, not UTF-8) is also reported as [`PolicyErrors`].
    pub fn load(path: &Path) -> Result<Policy, PolicyErrors> {
        let text = crate::validate::read(path)?;
        Policy::parse(&text, Some(path))
    }

    /// `[cache] enabled`: the master switch. When false nothing is cached.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// `[cache] max_memory`: the store's byte budget.
    pub fn max_memory(&self) -> u64 {
        self.max_memory
    }

    /// `[cache] max_lag`: under the change feed, a database is served from
    /// the cache only while its feed is at most this far behind the server.
    pub fn max_lag(&self) -> Duration {
        self.max_lag
    }

    /// `[defaults] cache`: whether a table no rule names is cached.
    pub fn default_cache(&self) -> bool {
        self.default_cache
    }

    /// `[defaults] ttl`.
    pub fn default_ttl(&self) -> Duration {
        self.default_ttl
    }

    /// `[defaults] max_entry_size`.
    pub fn max_entry_size(&self) -> u64 {
        self.default_max_entry_size
    }

    /// Hex blake3 of the source text: tells which file version is live.
    pub fn hash_hex(&self) -> &str {
        &self.hash_hex
    }

    /// Every exact table rule, ordered by schema then name (for an admin listing).
    pub fn tables(&self) -> impl Iterator<Item = (&QualifiedName, &TableRuleSpec)> {
        self.schemas
            .values()
            .flat_map(|s| s.tables.values().map(|e| (&e.name, &e.spec)))
    }

    /// Every schema wildcard rule (`"analytics.*"`), as (schema, rule).
    pub fn schemas(&self) -> impl Iterator<Item = (&str, &TableRuleSpec)> {
        self.schemas
            .iter()
            .filter_map(|(schema, s)| s.wildcard.as_ref().map(|w| (schema.as_str(), w)))
    }

    /// Every query rule, as (canonical fingerprint, rule).
    pub fn queries(&self) -> impl Iterator<Item = (&str, &QueryRule)> {
        self.queries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Every function declaration.
    pub fn functions(&self) -> impl Iterator<Item = (&QualifiedName, &FunctionRule)> {
        self.functions
            .values()
            .flat_map(|m| m.values().map(|e| (&e.name, &e.rule)))
    }
}
