//! One consistent picture of a database's catalog, and the plain lookups on
//! it. Name resolution is in `resolve.rs`, closures in `closure.rs`,
//! per-role defaults in `settings.rs`, the facts about one function in
//! `facts.rs`.

use crate::bypass::Bypass;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::facts::{FunctionInfo, Oid, Volatility};
use super::hidden_calls::HiddenCalls;

/// `pg_class.relkind`, reduced to what the proxy decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelKind {
    /// `r`
    Table,
    /// `p`: holds no rows itself; its partitions do.
    PartitionedTable,
    /// `v`: reads its base relations.
    View,
    /// `m`: stored rows, changed only by REFRESH (DDL).
    MaterializedView,
    /// `f`: rows live elsewhere, changed by writes the proxy cannot see.
    Foreign,
    /// `S`: changed by nextval() from any column default; never cache reads.
    Sequence,
    /// Indexes, composite types, TOAST tables: nothing a query reads as rows.
    Other,
}

impl RelKind {
    pub(super) fn from_relkind(kind: u8) -> RelKind {
        match kind {
            b'r' => RelKind::Table,
            b'p' => RelKind::PartitionedTable,
            b'v' => RelKind::View,
            b'm' => RelKind::MaterializedView,
            b'f' => RelKind::Foreign,
            b'S' => RelKind::Sequence,
            _ => RelKind::Other,
        }
    }
}

/// The facts about one relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub oid: Oid,
    pub schema: String,
    pub name: String,
    pub kind: RelKind,
    /// `relpersistence = 't'`: private to one session.
    pub temporary: bool,
    /// In `pg_catalog`, `information_schema` or `pg_toast`.
    pub system: bool,
    /// Row level security is enabled (`relrowsecurity`): what a read returns
    /// depends on the role, and its policies may read other relations.
    pub row_security: bool,
    /// Has a trigger that is not internal (FK triggers are internal; triggers
    /// cloned from a partitioned parent are not). Disabled ones count too.
    pub has_user_triggers: bool,
    /// Has a rewrite rule other than a view's `_RETURN` rule.
    pub has_rules: bool,
}

/// Relations and functions one object (a view's query, a rule, a policy, a
/// column default) refers to.
#[derive(Debug, Default, Clone)]
pub(super) struct Deps {
    pub relations: Vec<Oid>,
    pub functions: Vec<Oid>,
    /// What runs without a function oid in the stored tree, as
    /// pseudo-functions (oid 0): CURRENT_TIMESTAMP, CURRENT_USER and the
    /// like (in PostgreSQL 15 not function calls, and without a trace in
    /// pg_depend; STABLE), and the checks of domains the expression coerces
    /// to when they are not IMMUTABLE.
    pub builtins: Vec<FunctionInfo>,
}

/// A foreign key seen from the referenced (parent) table.
#[derive(Debug, Clone, Copy)]
pub(super) struct FkEdge {
    /// The referencing table.
    pub child: Oid,
    /// ON DELETE or ON UPDATE is CASCADE, SET NULL or SET DEFAULT: a write to
    /// the parent writes the child.
    pub cascades: bool,
}

/// What resolution needs to know about a schema.
#[derive(Debug, Clone)]
pub(super) struct SchemaInfo {
    pub owner: String,
    /// PUBLIC has USAGE, so every role searches it.
    pub public_usage: bool,
}

/// One `pg_db_role_setting` row, reduced to the settings the proxy models.
#[derive(Debug, Clone)]
pub(super) struct RoleSetting {
    /// `None`: every role (`ALTER ROLE ALL` / `ALTER DATABASE`).
    pub role: Option<String>,
    /// Set for this database only (`IN DATABASE` / `ALTER DATABASE`).
    pub db_specific: bool,
    pub search_path: Option<String>,
    pub isolation: Option<String>,
}

/// A consistent catalog snapshot (all of it read in one REPEATABLE READ
/// transaction). Immutable once loaded; a reload builds a new one.
#[derive(Debug)]
pub struct Snapshot {
    /// Unique per snapshot in this process: sessions memoize decisions made
    /// with a snapshot by this number (an address could be reused).
    pub(super) serial: u64,
    pub(super) loaded_at: Instant,
    pub(super) load_duration: Duration,
    pub(super) relations: HashMap<Oid, Relation>,
    /// schema -> relation name -> oid, every relkind (an index or type of
    /// the same name shadows a table later in the path, as in PostgreSQL).
    pub(super) by_name: HashMap<String, HashMap<String, Oid>>,
    pub(super) schemas: HashMap<String, SchemaInfo>,
    pub(super) superusers: HashSet<String>,
    /// pg_inherits, both ways (partitions and inheritance children).
    pub(super) parents: HashMap<Oid, Vec<Oid>>,
    pub(super) children: HashMap<Oid, Vec<Oid>>,
    /// A view's `_RETURN` rule: what reading the view reads.
    pub(super) view_deps: HashMap<Oid, Deps>,
    /// Other rules, by the relation they are on.
    pub(super) rule_deps: HashMap<Oid, Deps>,
    /// Row-security policies, by the relation they are on.
    pub(super) policy_deps: HashMap<Oid, Deps>,
    /// Column defaults, generated columns and CHECK constraints.
    pub(super) column_deps: HashMap<Oid, Deps>,
    /// Referenced table -> its foreign keys.
    pub(super) fk_children: HashMap<Oid, Vec<FkEdge>>,
    /// Volatility includes what a call runs unnamed (an aggregate's support
    /// functions, argument defaults, domain checks): see `hidden_calls.rs`.
    pub(super) functions: HashMap<Oid, FunctionInfo>,
    /// proname -> oids of every overload in every schema.
    pub(super) functions_by_name: HashMap<String, Vec<Oid>>,
    pub(super) role_settings: Vec<RoleSetting>,
    /// The server-wide defaults (postgresql.conf, or the built-in ones).
    pub(super) server_search_path: String,
    pub(super) server_isolation: String,
    /// User operators, casts and domains whose functions are not IMMUTABLE.
    pub(super) hidden_calls: HiddenCalls,
}

impl Snapshot {
    /// Tells this snapshot apart from every other one of this process.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// When the load that built this snapshot started.
    pub fn loaded_at(&self) -> Instant {
        self.loaded_at
    }

    /// How long the load took (for metrics and logs).
    pub fn load_duration(&self) -> Duration {
        self.load_duration
    }

    /// The relation with this oid, whatever its kind.
    pub fn relation(&self, oid: Oid) -> Option<&Relation> {
        self.relations.get(&oid)
    }

    /// The function with this oid.
    pub fn function(&self, oid: Oid) -> Option<&FunctionInfo> {
        self.functions.get(&oid)
    }

    /// Why a query whose analysis fingerprint is `fingerprint` may run a
    /// function that is not IMMUTABLE without naming it: a user operator
    /// (`volatile_operator`), cast (`volatile_cast`), domain CHECK
    /// (`volatile_domain_check`) or type I/O function (`volatile_type_io`).
    /// `None` when it cannot; then nothing was tokenized if the database
    /// has no such object. Errs towards an answer: names are matched in any
    /// schema, and objects syntax reaches unnamed match every query.
    pub fn hidden_call_risk(&self, fingerprint: &str) -> Option<Bypass> {
        self.hidden_calls.risk(fingerprint)
    }

    /// Number of relations of every kind (for metrics and logs).
    pub fn relation_count(&self) -> usize {
        self.relations.len()
    }

    /// A function's facts by oid, or the worst case for an oid the snapshot
    /// does not know (it cannot happen within one consistent load, but the
    /// answer must still be safe).
    pub(super) fn function_or_worst(&self, oid: Oid) -> FunctionInfo {
        self.functions.get(&oid).cloned().unwrap_or(FunctionInfo {
            oid,
            volatility: Volatility::Volatile,
            is_system: false,
            schema: String::new(),
            name: format!("<function {oid}>"),
        })
    }
}
