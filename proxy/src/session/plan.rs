//! Decisions about one statement, from its analysis, the catalog and the policy:
//! what it may write, and whether (and how) its result may be cached.

use crate::bypass::Bypass;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cache_core::RelationId;
use policies::Policy;

use crate::catalog::{FunctionInfo, RelKind, Relation, Snapshot, Volatility};
use crate::engine::{Engine, TableNames, WriteSet};
use crate::sql::{Analysis, FuncName, Read, RelName, Statement, StatementKind};

/// Built-in OIDs are below this (`FirstNormalObjectId`): a function call message
/// for one of them (large objects, mostly) writes no user table.
const FIRST_NORMAL_OBJECT_ID: u32 = 16384;

/// SQL constructs sqlparser reports as function calls that are not pg_proc
/// functions: syntax, evaluated like immutable expressions.
const SYNTAX_FUNCTIONS: &[&str] = &[
    "coalesce", "nullif", "greatest", "least", "grouping", "trim", "row",
];

/// SQL value functions: stable (they depend on the time or the session), never writes.
const SQL_VALUE_FUNCTIONS: &[&str] = &[
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "current_user",
    "session_user",
    "user",
    "current_role",
    "current_schema",
    "current_catalog",
];

/// How to cache a result.
#[derive(Debug, Clone)]
pub struct Cacheable {
    pub relations: Vec<RelationId>,
    pub ttl: Duration,
    pub max_size: u64,
}

/// Everything needed to decide, for one session at one moment.
pub struct Planner<'a> {
    pub tables: &'a TableNames,
    pub policy: &'a Policy,
    /// None: the catalog could not be loaded; nothing is cached and every write
    /// invalidates everything.
    pub catalog: Option<(&'a Snapshot, u32)>,
    pub search_path: &'a [String],
    pub role: &'a str,
    /// The server told the search_path and role above, and nothing sent
    /// since may have changed them. When not, an unqualified name is not
    /// resolved at all: it may mean another relation than the catalog says.
    pub scope_known: bool,
    /// SQL-level prepared statements of the session (PREPARE name AS ...);
    /// `None` for a name whose statement is not known for sure.
    pub sql_prepared: &'a HashMap<String, Option<Statement>>,
}

/// `pg_catalog.set_config(text, text, bool)`: the one built-in function that
/// changes session settings.
pub const SET_CONFIG_OID: u32 = 2078;

impl Planner<'_> {
    /// What running `statement` may change.
    pub fn writes(&self, statement: &Statement) -> WriteSet {
        match &statement.kind {
            StatementKind::Read(read) => self.function_writes(&read.functions),
            StatementKind::Write(write) => {
                let mut set = self.table_writes(&write.targets, write.cascade);
                set.add(&self.function_writes(&write.reads.functions));
                set
            }
            StatementKind::Call { procedure } => self.declared_writes(procedure),
            StatementKind::Execute { name } => match self.sql_prepared.get(name) {
                Some(Some(inner)) => self.writes(inner),
                _ => WriteSet::Everything,
            },
            StatementKind::Ddl | StatementKind::Unknown => WriteSet::Everything,
            StatementKind::Transaction(crate::sql::TxCommand::CommitPrepared) => {
                // A prepared transaction's writes are not known here.
                WriteSet::Everything
            }
            StatementKind::Transaction(_)
            | StatementKind::Set(_)
            | StatementKind::Prepare { .. }
            | StatementKind::Deallocate { .. }
            | StatementKind::Harmless => WriteSet::Nothing,
        }
    }

    /// A fast-path function call ('F') by OID.
    pub fn function_call_writes(oid: u32) -> WriteSet {
        if oid < FIRST_NORMAL_OBJECT_ID {
            WriteSet::Nothing
        } else {
            WriteSet::Everything
        }
    }

    /// Whether a fast-path function call may change the session's state.
    pub fn function_call_changes_state(oid: u32) -> bool {
        oid >= FIRST_NORMAL_OBJECT_ID || oid == SET_CONFIG_OID
    }

    /// Whether running `statement` may change the session's state (settings,
    /// role, temporary objects) in a way its text does not say: after it,
    /// the server is asked again before the cache is used. Errs towards yes.
    pub fn changes_state(&self, statement: &Statement) -> bool {
        match &statement.kind {
            StatementKind::Read(read) => self.functions_change_state(&read.functions),
            StatementKind::Write(write) => {
                self.functions_change_state(&write.reads.functions)
                    || self.has_triggers(&write.targets, write.cascade)
            }
            StatementKind::Set(command) => !super::context::Context::is_harmless(command),
            StatementKind::Ddl
            | StatementKind::Unknown
            | StatementKind::Call { .. }
            | StatementKind::Execute { .. } => true,
            StatementKind::Transaction(_)
            | StatementKind::Prepare { .. }
            | StatementKind::Deallocate { .. }
            | StatementKind::Harmless => statement.creates_temp,
        }
    }

    /// A user function can do anything a session can, unless it is
    /// IMMUTABLE: the cache trusts that promise for results, and trusts it
    /// for side effects too. Of the built-in functions, only set_config
    /// changes settings.
    fn functions_change_state(&self, functions: &[FuncName]) -> bool {
        functions.iter().any(|f| {
            if is_syntax_or_value_function(f) {
                return false;
            }
            let Some((snapshot, _)) = self.catalog else {
                return true;
            };
            match snapshot.function_volatility(f, self.search_path, self.role) {
                Some(info) if info.is_system => info.name == "set_config",
                Some(info) => info.volatility != Volatility::Immutable,
                None => true,
            }
        })
    }

    /// Whether writing `targets` fires user triggers (which may run any
    /// code, set_config included).
    fn has_triggers(&self, targets: &[RelName], cascade: bool) -> bool {
        let Some((snapshot, _)) = self.catalog else {
            return true;
        };
        let mut oids = Vec::with_capacity(targets.len());
        for target in targets {
            if target.schema.is_none() && !self.scope_known {
                return true;
            }
            match snapshot.resolve(target, self.search_path, self.role) {
                Some(rel) => oids.push(rel.oid),
                None => return true,
            }
        }
        let closure = snapshot.write_closure(&oids, cascade);
        !closure.triggered.is_empty() || !closure.unknown.is_empty()
    }

    fn table_writes(&self, targets: &[RelName], cascade: bool) -> WriteSet {
        let Some((snapshot, db)) = self.catalog else {
            return WriteSet::Everything;
        };
        let mut oids = Vec::with_capacity(targets.len());
        for target in targets {
            if target.schema.is_none() && !self.scope_known {
                return WriteSet::Everything;
            }
            match snapshot.resolve(target, self.search_path, self.role) {
                Some(rel) => oids.push(rel.oid),
                // Created behind the proxy's back, or a temporary table: unknown.
                None => return WriteSet::Everything,
            }
        }
        let closure = snapshot.write_closure(&oids, cascade);
        if !closure.unknown.is_empty() {
            return WriteSet::Everything;
        }
        let mut ids: Vec<RelationId> = closure
            .relations
            .iter()
            .map(|&oid| self.id(snapshot, db, oid))
            .collect();
        for oid in closure.triggered {
            let Some(rel) = snapshot.relation(oid) else {
                return WriteSet::Everything;
            };
            let rule = self.policy.table(&rel.schema, &rel.name);
            let Some(declared) = rule.trigger_writes else {
                // Its triggers may write anything.
                return WriteSet::Everything;
            };
            for name in declared.iter() {
                let name = RelName {
                    schema: Some(name.schema.clone()),
                    name: name.name.clone(),
                };
                match snapshot.resolve(&name, self.search_path, self.role) {
                    Some(rel) => {
                        let extra = snapshot.write_closure(&[rel.oid], false);
                        ids.extend(extra.relations.iter().map(|&o| self.id(snapshot, db, o)));
                    }
                    None => return WriteSet::Everything,
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        WriteSet::Relations(ids)
    }

    /// Volatile user functions may write anything, unless the policy says what.
    fn function_writes(&self, functions: &[FuncName]) -> WriteSet {
        let mut set = WriteSet::Nothing;
        for f in functions {
            if is_syntax_or_value_function(f) {
                continue;
            }
            let Some((snapshot, _)) = self.catalog else {
                return WriteSet::Everything;
            };
            match snapshot.function_volatility(f, self.search_path, self.role) {
                Some(info) if info.volatility != Volatility::Volatile || info.is_system => {}
                Some(info) => set.add(&self.declared_writes(&FuncName {
                    schema: Some(info.schema.clone()),
                    name: info.name.clone(),
                })),
                None => return WriteSet::Everything,
            }
        }
        set
    }

    /// What the policy declares a function or procedure writes; everything if
    /// it declares nothing.
    fn declared_writes(&self, f: &FuncName) -> WriteSet {
        let schema = f.schema.as_deref().unwrap_or("public");
        let Some(rule) = self.policy.function(schema, &f.name) else {
            return WriteSet::Everything;
        };
        let targets: Vec<RelName> = rule
            .writes
            .iter()
            .map(|q| RelName {
                schema: Some(q.schema.clone()),
                name: q.name.clone(),
            })
            .collect();
        if targets.is_empty() {
            WriteSet::Nothing
        } else {
            self.table_writes(&targets, false)
        }
    }

    /// Whether a read may be cached; `Err` names why not.
    pub fn cacheable(&self, read: &Read, fingerprint: &str) -> Result<Cacheable, Bypass> {
        if let Some(reason) = read.uncacheable {
            return Err(reason);
        }
        if !self.scope_known {
            return Err(Bypass::StateUnknown);
        }
        let (snapshot, db) = self.catalog.ok_or(Bypass::CatalogUnavailable)?;
        let mut oids = Vec::with_capacity(read.relations.len());
        for name in &read.relations {
            match snapshot.resolve(name, self.search_path, self.role) {
                Some(rel) => oids.push(rel.oid),
                // An unresolved unqualified name that a WITH defines is the CTE.
                None if name.schema.is_none() && read.cte_names.contains(&name.name) => {}
                None => return Err(Bypass::UnresolvedRelation),
            }
        }
        let closure = snapshot.read_closure(&oids);
        if !closure.unknown.is_empty() {
            return Err(Bypass::UnresolvedRelation);
        }
        let mut tables = Vec::with_capacity(closure.relations.len());
        for &oid in &closure.relations {
            let rel = snapshot.relation(oid).ok_or(Bypass::UnresolvedRelation)?;
            check_relation(rel)?;
            tables.push(rel);
        }
        for f in &read.functions {
            if is_syntax_or_value_function(f) {
                if SQL_VALUE_FUNCTIONS.contains(&f.name.as_str()) {
                    return Err(Bypass::VolatileFunction);
                }
                continue;
            }
            let info = snapshot
                .function_volatility(f, self.search_path, self.role)
                .ok_or(Bypass::UnknownFunction)?;
            self.check_function(&info)?;
        }
        for info in &closure.view_functions {
            self.check_function(info)?;
        }
        // What the query runs without naming it: operators, casts, domain
        // checks, type I/O.
        if let Some(reason) = snapshot.hidden_call_risk(fingerprint) {
            return Err(reason);
        }
        let resolution = self.policy.resolve(
            Some(fingerprint),
            tables.iter().map(|r| (r.schema.as_str(), r.name.as_str())),
        );
        if !resolution.cache {
            return Err(Bypass::Policy);
        }
        Ok(Cacheable {
            // The database's own pseudo-relation too: a feed loss drops
            // this database's entries only.
            relations: closure
                .relations
                .iter()
                .map(|&oid| self.id(snapshot, db, oid))
                .chain([Engine::database_id(db)])
                .collect(),
            ttl: resolution.ttl,
            max_size: resolution.max_entry_size,
        })
    }

    /// The relation id of `oid`, its name noted for metrics and the admin API.
    fn id(&self, snapshot: &Snapshot, db: u32, oid: u32) -> RelationId {
        let id = Engine::relation_id(db, oid);
        if let Some(rel) = snapshot.relation(oid) {
            self.tables.note(id, &rel.schema, &rel.name);
        }
        id
    }

    fn check_function(&self, info: &FunctionInfo) -> Result<(), Bypass> {
        if info.volatility == Volatility::Immutable {
            return Ok(());
        }
        match self.policy.function(&info.schema, &info.name) {
            Some(rule) if rule.cacheable => Ok(()),
            _ => Err(Bypass::VolatileFunction),
        }
    }
}

fn is_syntax_or_value_function(f: &FuncName) -> bool {
    f.schema.is_none()
        && (SYNTAX_FUNCTIONS.contains(&f.name.as_str())
            || SQL_VALUE_FUNCTIONS.contains(&f.name.as_str()))
}

fn check_relation(rel: &Relation) -> Result<(), Bypass> {
    if rel.temporary {
        return Err(Bypass::TemporaryRelation);
    }
    if rel.system {
        return Err(Bypass::SystemCatalog);
    }
    if rel.row_security {
        return Err(Bypass::RowSecurity);
    }
    match rel.kind {
        RelKind::Table | RelKind::PartitionedTable | RelKind::View | RelKind::MaterializedView => {
            Ok(())
        }
        RelKind::Foreign => Err(Bypass::ForeignTable),
        RelKind::Sequence => Err(Bypass::Sequence),
        RelKind::Other => Err(Bypass::UnsupportedRelation),
    }
}

/// What the planner decided for one analysis in one session state.
#[derive(Debug)]
pub struct Plan {
    /// What running all of its statements may write.
    pub writes: WriteSet,
    /// For exactly one cacheable read: how to cache its result; otherwise,
    /// or when it may write, why not.
    pub cacheable: Result<Cacheable, Bypass>,
    /// Running it may change the session's state (see [`Planner::changes_state`]).
    pub changes_state: bool,
}

/// Everything a [`Plan`] depends on besides the analysis: the catalog
/// snapshot (by serial, with the database), the policy (the `Arc` is held,
/// so its address cannot be reused) and the session context's digest, which
/// covers the role and search_path names resolve with.
pub struct Epoch {
    pub snapshot: Option<(u64, u32)>,
    pub policy: Arc<Policy>,
    pub context: [u8; 32],
}

impl PartialEq for Epoch {
    fn eq(&self, other: &Epoch) -> bool {
        self.snapshot == other.snapshot
            && Arc::ptr_eq(&self.policy, &other.policy)
            && self.context == other.context
    }
}

/// The plans a session made in its current epoch, so a repeated statement
/// (a prepared one, or a simple query of a known shape) is not planned again
/// on every execution. Small and per session: no lock, bounded memory.
#[derive(Default)]
pub struct PlanMemo {
    epoch: Option<Epoch>,
    plans: Vec<(Arc<Analysis>, Arc<Plan>)>,
    /// The slot the next plan replaces once the memo is full.
    next: usize,
}

impl PlanMemo {
    /// Plans kept per session.
    const CAPACITY: usize = 16;
    /// Longest fingerprint whose plan is kept.
    const MAX_SHAPE: usize = 4096;

    /// The plan made for `analysis` in `epoch`, if any. A new epoch forgets
    /// every plan of the old one.
    pub fn get(&mut self, epoch: &Epoch, analysis: &Arc<Analysis>) -> Option<Arc<Plan>> {
        if self.epoch.as_ref() != Some(epoch) {
            return None;
        }
        self.plans
            .iter()
            .find(|(a, _)| Arc::ptr_eq(a, analysis))
            .map(|(_, plan)| plan.clone())
    }

    pub fn put(&mut self, epoch: Epoch, analysis: Arc<Analysis>, plan: Arc<Plan>) {
        if self.epoch.as_ref() != Some(&epoch) {
            self.plans.clear();
            self.next = 0;
            self.epoch = Some(epoch);
        }
        if self.plans.len() < Self::CAPACITY {
            self.plans.push((analysis, plan));
        } else {
            self.plans[self.next] = (analysis, plan);
            self.next = (self.next + 1) % Self::CAPACITY;
        }
    }

    /// Whether to keep a plan of `analysis`. An `EXECUTE` of an SQL-level
    /// prepared statement also depends on the session's `PREPARE`s, so it is
    /// planned every time. Long statements are not kept either: the memo
    /// holds their analyses alive, and this bounds that to
    /// `CAPACITY * MAX_SHAPE` bytes of fingerprints per session.
    pub fn may_keep(analysis: &Analysis) -> bool {
        analysis.fingerprint.len() <= Self::MAX_SHAPE
            && !analysis
                .statements
                .iter()
                .any(|s| matches!(s.kind, StatementKind::Execute { .. }))
    }
}

#[cfg(test)]
mod memo_tests {
    use super::*;

    fn plan() -> Arc<Plan> {
        Arc::new(Plan {
            writes: WriteSet::Nothing,
            cacheable: Err(Bypass::Policy),
            changes_state: false,
        })
    }

    fn epoch(policy: &Arc<Policy>, snapshot: u64, context: u8) -> Epoch {
        Epoch {
            snapshot: Some((snapshot, 1)),
            policy: policy.clone(),
            context: [context; 32],
        }
    }

    #[test]
    fn a_plan_holds_only_in_its_epoch() {
        let policy = Arc::new(Policy::default());
        let analysis = Arc::new(crate::sql::analyze("SELECT * FROM t WHERE id = 1"));
        let mut memo = PlanMemo::default();
        memo.put(epoch(&policy, 1, 0), analysis.clone(), plan());
        assert!(memo.get(&epoch(&policy, 1, 0), &analysis).is_some());
        // Plans go by the analysis itself (the analyzer shares one per shape),
        // not by its text.
        let twin = Arc::new(crate::sql::analyze("SELECT * FROM t WHERE id = 1"));
        assert!(memo.get(&epoch(&policy, 1, 0), &twin).is_none());
        // A new snapshot, context or policy: not valid.
        assert!(memo.get(&epoch(&policy, 2, 0), &analysis).is_none());
        assert!(memo.get(&epoch(&policy, 1, 9), &analysis).is_none());
        let other_policy = Arc::new(Policy::default());
        assert!(memo.get(&epoch(&other_policy, 1, 0), &analysis).is_none());
        // Putting in a new epoch forgets the old one's plans.
        memo.put(epoch(&policy, 2, 0), twin.clone(), plan());
        assert!(memo.get(&epoch(&policy, 1, 0), &analysis).is_none());
        assert!(memo.get(&epoch(&policy, 2, 0), &analysis).is_none());
        assert!(memo.get(&epoch(&policy, 2, 0), &twin).is_some());
    }

    #[test]
    fn the_memo_is_bounded() {
        let policy = Arc::new(Policy::default());
        let mut memo = PlanMemo::default();
        let analyses: Vec<_> = (0..PlanMemo::CAPACITY + 5)
            .map(|i| Arc::new(crate::sql::analyze(&format!("SELECT {i}"))))
            .collect();
        for a in &analyses {
            memo.put(epoch(&policy, 1, 0), a.clone(), plan());
        }
        assert_eq!(memo.plans.len(), PlanMemo::CAPACITY);
        assert!(memo
            .get(&epoch(&policy, 1, 0), analyses.last().unwrap())
            .is_some());
        assert!(memo.get(&epoch(&policy, 1, 0), &analyses[0]).is_none());
    }

    #[test]
    fn execute_and_long_statements_are_not_kept() {
        assert!(PlanMemo::may_keep(&crate::sql::analyze("SELECT 1")));
        assert!(!PlanMemo::may_keep(&crate::sql::analyze("EXECUTE q(1)")));
        let long = format!("SELECT {}", "x + ".repeat(2000) + "1");
        assert!(!PlanMemo::may_keep(&crate::sql::analyze(&long)));
    }
}
