//! The result types of an analysis. Plain data: the proxy matches on them.

use crate::bypass::Bypass;
use std::fmt;
use std::sync::Arc;

/// What the analyzer learned about one query text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Analysis {
    /// The normalized shape: literals replaced by `$n` placeholders numbered in
    /// order after the highest explicit `$n` parameter (which are kept),
    /// unquoted identifiers and keywords lower-cased, quoted identifiers kept
    /// verbatim, whitespace canonical, comments dropped, semicolons kept.
    /// Names a shape for metrics, policy rules and the admin listing; it is
    /// never a cache key for results.
    pub fingerprint: Arc<str>,
    /// The first 8 bytes (little endian) of the blake3 hash of `fingerprint`.
    pub fingerprint_id: u64,
    /// One entry per statement; empty for a text with no statement.
    pub statements: Vec<Statement>,
    /// Why some statement could not be understood (the first such reason);
    /// every statement it applies to is [`StatementKind::Unknown`].
    pub error: Option<String>,
}

impl Analysis {
    /// The analysis of a text the proxy does not analyse (too large): one
    /// statement of unknown kind, which may write anything, change session
    /// state or create temporary objects.
    pub fn unknown(reason: &str) -> Analysis {
        let fingerprint: Arc<str> = Arc::from(format!("/* {reason} */"));
        let hash = blake3::hash(fingerprint.as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&hash.as_bytes()[..8]);
        Analysis {
            fingerprint,
            fingerprint_id: u64::from_le_bytes(id),
            statements: vec![Statement {
                kind: StatementKind::Unknown,
                creates_temp: true,
            }],
            error: Some(reason.to_string()),
        }
    }

    /// The statement's [`Read`] when the text is exactly one statement of kind
    /// `Read` that is cacheable as far as syntax goes.
    pub fn single_cacheable_read(&self) -> Option<&Read> {
        match self.statements.as_slice() {
            [Statement {
                kind: StatementKind::Read(r),
                ..
            }] if r.uncacheable.is_none() => Some(r),
            _ => None,
        }
    }

    /// Whether any statement calls the built-in function `name` (see
    /// [`Read::calls`]), including inside a `PREPARE`.
    pub fn calls(&self, name: &str) -> bool {
        self.statements.iter().any(|s| s.kind.calls(name))
    }

    /// Whether any statement creates temporary objects or mentions `pg_temp`.
    pub fn creates_temp(&self) -> bool {
        self.statements.iter().any(|s| s.creates_temp)
    }
}

/// One statement of a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub kind: StatementKind,
    /// `CREATE TEMP/TEMPORARY ...`, `SELECT INTO TEMP`, anything naming
    /// `pg_temp`, or an unknown statement whose text mentions "temp" (a DO
    /// block): after it, a name may resolve to a temporary relation that the
    /// proxy's catalog connection cannot see.
    pub creates_temp: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatementKind {
    /// SELECT, VALUES, TABLE, WITH ... SELECT with read-only CTEs; also
    /// DECLARE CURSOR, COPY ... TO and EXPLAIN ANALYZE of a read, which are
    /// marked uncacheable.
    Read(Read),
    /// INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY ... FROM, REFRESH
    /// MATERIALIZED VIEW, any statement with a data-modifying CTE, and
    /// EXPLAIN ANALYZE of one of those.
    Write(Write),
    /// CREATE/ALTER/DROP anything, GRANT, REVOKE, COMMENT, SECURITY LABEL,
    /// IMPORT FOREIGN SCHEMA, REASSIGN OWNED, SELECT INTO, CREATE TABLE AS:
    /// invalidate everything and refresh the catalog.
    Ddl,
    Transaction(TxCommand),
    Set(SetCommand),
    /// SQL-level `PREPARE name AS stmt`.
    Prepare {
        name: String,
        inner: Box<Statement>,
    },
    /// SQL-level `EXECUTE name`: runs whatever `name` was prepared as.
    Execute {
        name: String,
    },
    /// `DEALLOCATE name`; `None` for `DEALLOCATE ALL`.
    Deallocate {
        name: Option<String>,
    },
    /// `CALL proc(...)`: may write anything.
    Call {
        procedure: FuncName,
    },
    /// No data change and no change of session context: SHOW, EXPLAIN without
    /// ANALYZE, LISTEN, UNLISTEN, NOTIFY, FETCH, MOVE, CLOSE, LOCK, VACUUM,
    /// ANALYZE, CHECKPOINT, LOAD, CLUSTER, REINDEX, DISCARD PLANS/SEQUENCES/TEMP,
    /// SET CONSTRAINTS.
    Harmless,
    /// Not fully understood (parse failure, DO, unrecognized statements): treat
    /// it as a write to everything that may also change session state.
    Unknown,
}

impl StatementKind {
    /// The relations and functions the statement reads, for reads and writes.
    pub fn reads(&self) -> Option<&Read> {
        match self {
            StatementKind::Read(r) => Some(r),
            StatementKind::Write(w) => Some(&w.reads),
            _ => None,
        }
    }

    fn calls(&self, name: &str) -> bool {
        match self {
            StatementKind::Prepare { inner, .. } => inner.kind.calls(name),
            other => other.reads().is_some_and(|r| r.calls(name)),
        }
    }
}

/// What a statement reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Read {
    /// Every name in a table position (FROM, JOIN, subqueries, CTE bodies,
    /// LATERAL, set operations, IN/EXISTS subqueries), deduplicated, in order
    /// of appearance. A name equal to one of `cte_names` may be the CTE.
    pub relations: Vec<RelName>,
    /// Names defined by WITH anywhere in the statement.
    pub cte_names: Vec<String>,
    /// Every function called anywhere, including aggregates, window and
    /// table functions, and the SQL value functions (`current_timestamp`,
    /// `current_user`, ...) as unqualified names. Syntax that PostgreSQL turns
    /// into a call of a `pg_catalog` function appears with that name
    /// (`EXTRACT` as `pg_catalog.extract`, `AT TIME ZONE` as
    /// `pg_catalog.timezone`, `TRIM` as `pg_catalog.btrim`, ...). Expression
    /// forms that are not functions (COALESCE, NULLIF, GREATEST, LEAST, ROW,
    /// ARRAY(subquery), GROUPING, the XML and SQL/JSON constructors) are left
    /// out; their arguments are still searched.
    pub functions: Vec<FuncName>,
    /// Why this read must not be cached even if everything it names allows it
    /// (a short stable tag): "locking_clause", "tablesample", "time_literal",
    /// "cursor", "copy", "explain". `None`: cacheable as far as syntax goes.
    pub uncacheable: Option<Bypass>,
}

impl Read {
    /// Whether the built-in function `name` is called: an unqualified call or
    /// one qualified with `pg_catalog` (`set_config`, `pg_catalog.set_config`).
    pub fn calls(&self, name: &str) -> bool {
        self.functions
            .iter()
            .any(|f| f.name == name && f.schema.as_deref().is_none_or(|s| s == "pg_catalog"))
    }
}

/// What a data-modifying statement writes and reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Write {
    /// Tables written: every TRUNCATE target, the MERGE/INSERT/UPDATE/DELETE
    /// target, the target of every data-modifying CTE.
    pub targets: Vec<RelName>,
    /// What it reads: sources, subqueries, functions (targets themselves are
    /// not repeated here unless also read in another position).
    pub reads: Read,
    /// `TRUNCATE ... CASCADE`.
    pub cascade: bool,
}

/// A relation name as written, folded like PostgreSQL folds identifiers:
/// unquoted parts lower-cased (ASCII), quoted parts kept exactly, both cut to
/// 63 bytes. A catalog prefix (`db.schema.t`) is dropped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelName {
    pub schema: Option<String>,
    pub name: String,
}

/// A function or procedure name, folded like [`RelName`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncName {
    pub schema: Option<String>,
    pub name: String,
}

impl RelName {
    pub fn new(schema: Option<&str>, name: &str) -> RelName {
        RelName {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        }
    }
}

impl FuncName {
    pub fn new(schema: Option<&str>, name: &str) -> FuncName {
        FuncName {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for RelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl fmt::Display for FuncName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxCommand {
    /// BEGIN / START TRANSACTION with its modes.
    Begin {
        isolation: Option<Isolation>,
        read_only: bool,
    },
    /// COMMIT / END (also `AND CHAIN`).
    Commit,
    /// ROLLBACK / ABORT (also `AND CHAIN`).
    Rollback,
    Savepoint,
    Release,
    RollbackToSavepoint,
    /// SET TRANSACTION ... (also `SET transaction_isolation = ...`).
    SetTransaction {
        isolation: Option<Isolation>,
    },
    PrepareTransaction,
    CommitPrepared,
    RollbackPrepared,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    ReadUncommitted,
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetCommand {
    /// `SET [LOCAL|SESSION] name {TO|=} value`, and the special forms with the
    /// GUC they set: TIME ZONE (`timezone`), NAMES (`client_encoding`), SCHEMA
    /// (`search_path`), XML OPTION (`xmloption`).
    Set {
        /// Lower-cased GUC name (GUC names are case-insensitive).
        name: String,
        value: SetValue,
        local: bool,
    },
    /// `RESET name` (also `RESET TIME ZONE`, `RESET TRANSACTION ISOLATION LEVEL`).
    Reset {
        name: String,
    },
    ResetAll,
    DiscardAll,
    /// `SET ROLE x`, `SET role = x`; `None` for NONE, DEFAULT, RESET ROLE.
    SetRole {
        role: Option<String>,
        local: bool,
    },
    /// `SET SESSION AUTHORIZATION x`; `None` for DEFAULT and RESET.
    SetSessionAuthorization {
        user: Option<String>,
        local: bool,
    },
    /// `SET SESSION CHARACTERISTICS AS TRANSACTION ...`.
    SessionCharacteristics {
        isolation: Option<Isolation>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetValue {
    Default,
    /// The value as the server stores it: list items joined by ", ";
    /// identifiers lower-cased unless double-quoted; string literals unquoted;
    /// integers in decimal. For list-valued settings whose items are names
    /// (`search_path`, `temp_tablespaces`, ...) each item is quoted like
    /// `quote_ident` would, so `SET search_path = 'a, b'` (one schema named
    /// "a, b") stays distinct from `SET search_path = a, b`, and
    /// `SET search_path TO "My", public` gives `"My", public`.
    Value(String),
}
