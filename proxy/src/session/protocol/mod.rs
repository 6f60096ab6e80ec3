//! The message-level state machine of one session: what the client asked, what
//! the server owes, and where the cache comes in.
//!
//! Client messages arrive here framed. A simple Query, or an extended-protocol
//! batch (Parse/Bind/Describe/Execute up to Sync), is either answered from the
//! cache without touching the server, or forwarded as a cycle whose response is
//! recorded for the cache (a miss) or just relayed (a bypass). Server messages
//! are matched to the cycle at the front of the queue: that is where results
//! are captured, and where writes are invalidated, after the server
//! acknowledged them and before the client hears of it.
//!
//! Files: this one holds the session's state and what both directions use
//! (analysis, planning, the catalog, the session's end); `client.rs` takes
//! the client's messages in (batches, the cache decision, probes);
//! `server.rs` matches the server's answers to the cycles in flight.

mod client;
mod server;

use crate::bypass::Bypass;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tracing::warn;

use super::context::Context;
use super::cycle::{Cycle, Cycles};
use super::plan::{Epoch, Plan, PlanMemo, Planner};
use super::probe::Answer;
use super::statements::Statements;
use super::transaction::Transaction;
use crate::catalog::{DbCatalog, Snapshot};
use crate::engine::{Source, WriteSet};
use crate::shared::Shared;
use crate::sql::{Analysis, SetCommand, Statement, StatementKind, MAX_ANALYZED_TEXT};
use crate::wire::startup::Startup;
use crate::wire::TxStatus;

/// An extended-protocol batch larger than this is forwarded as it comes.
const MAX_BATCH_BYTES: usize = 1 << 20;
/// After the catalog of a database could not be loaded, try again after this.
const CATALOG_RETRY: Duration = Duration::from_secs(10);
/// Texts longer than this are analysed off the async workers.
const ANALYZE_INLINE: usize = 8 << 10;
/// SQL-level prepared statements tracked per session; EXECUTE of any other
/// is planned as writing everything.
const MAX_SQL_PREPARED: usize = 10_000;

/// A client message held back until the server has answered a probe.
enum Parked {
    Query(Bytes),
    /// The batch in `Protocol::batch`, up to its Sync.
    Batch,
}

enum CatalogState {
    NotLoaded,
    Ready(Arc<DbCatalog>),
    Failed(Instant),
}

pub struct Protocol {
    shared: Arc<Shared>,
    /// An admin console session: queries are answered by the proxy.
    pub console: bool,
    pub context: Context,
    pub terminated: bool,
    pub server_said_fatal: bool,
    pub backend_pid: Option<u32>,
    cycles: Cycles,
    batch: Vec<(u8, Bytes)>,
    batch_bytes: usize,
    statements: Statements,
    /// SQL-level prepared statements; `None` for a name whose statement is
    /// not known for sure (a PREPARE in a text that failed).
    sql_prepared: HashMap<String, Option<Statement>>,
    /// The transaction as the server last said, and what its block did.
    tx: Transaction,
    catalog: CatalogState,
    /// The server is in COPY FROM STDIN, waiting for the client's data.
    copy_in: bool,
    /// The server said AuthenticationOk: until then nothing is analysed.
    authenticated: bool,
    /// The message waiting for the probe in flight.
    parked: Option<Parked>,
    /// The probe in flight got its answer.
    answer: Option<Answer>,
    plans: PlanMemo,
}
impl Protocol {
    pub fn new(shared: Arc<Shared>, startup: &Startup) -> Protocol {
        Protocol {
            shared,
            console: false,
            context: Context::from_startup(startup),
            terminated: false,
            server_said_fatal: false,
            backend_pid: None,
            cycles: Cycles::default(),
            batch: Vec::new(),
            batch_bytes: 0,
            statements: Statements::default(),
            sql_prepared: HashMap::new(),
            tx: Transaction::default(),
            catalog: CatalogState::NotLoaded,
            copy_in: false,
            authenticated: false,
            parked: None,
            answer: None,
            plans: PlanMemo::default(),
        }
    }

    /// Something sent may have changed the session's state behind the text:
    /// the server is asked again before the cache is used.
    fn state_may_have_changed(&mut self) {
        self.context.forget_state();
        self.tx.state_may_have_changed();
    }

    /// Requests sent and not answered yet.
    pub fn requests_in_flight(&self) -> usize {
        self.cycles.len()
    }

    /// Requests in flight whose answers could change what the next one
    /// sees. A Parse the proxy sends on its own changes nothing a statement
    /// returns.
    fn in_flight(&self) -> bool {
        self.cycles.in_flight()
    }

    /// [`Protocol::analyze_bounded`], with a large text analysed on the
    /// blocking pool rather than on the async workers every session shares.
    /// Later analyses of the same text find it in the analyzer's cache.
    async fn analyze(&self, text: &str) -> Arc<Analysis> {
        if text.len() <= ANALYZE_INLINE || text.len() > MAX_ANALYZED_TEXT {
            return self.analyze_bounded(text);
        }
        let shared = self.shared.clone();
        let owned = text.to_owned();
        tokio::task::spawn_blocking(move || shared.engine.analyzer.analyze(&owned))
            .await
            .unwrap_or_else(|_| Arc::new(Analysis::unknown("analysis_failed")))
    }

    /// The analysis of a statement text, or for a text too large to analyse,
    /// an analysis that says so (planned as writing everything).
    fn analyze_bounded(&self, text: &str) -> Arc<Analysis> {
        // The analyzer itself refuses texts over MAX_ANALYZED_TEXT, in
        // linear time: one Unknown statement with the error TOO_LARGE.
        self.shared.engine.analyzer.analyze(text)
    }

    /// Session-level effects of a statement being sent: transactions, DDL,
    /// SQL-level prepared statements. (Settings, roles and temporary objects
    /// are not followed here: the server is asked, see `probe.rs`.)
    fn note_statement(&mut self, statement: &Statement, cycle: &mut Cycle) {
        match &statement.kind {
            StatementKind::Ddl => {
                cycle.ddl = true;
                self.tx.ran_ddl();
            }
            // A DO block or something not understood may run DDL and commit
            // on its own (DO and procedures may COMMIT).
            StatementKind::Unknown => {
                cycle.ddl = true;
                cycle.self_committing = true;
                self.tx.ran_ddl();
            }
            StatementKind::Call { .. } => cycle.self_committing = true,
            StatementKind::Transaction(command) => {
                if self.tx.on_command(command) {
                    self.context.forget_state();
                }
                if self.tx.commits_ddl(command) && cycle.ddl_commit.is_none() {
                    cycle.ddl_commit = Some(self.shared.engine.catalogs.begin_ddl_commit());
                }
            }
            StatementKind::Prepare { name, inner } => {
                cycle.sql_prepares.push((name.clone(), (**inner).clone()));
            }
            // SQL-level and protocol-level prepared statements share one
            // namespace: forget both kinds as the statement goes out, so a
            // name prepared again later is never taken for the old statement.
            StatementKind::Deallocate { name } => match name {
                Some(n) => {
                    self.sql_prepared.remove(n);
                    self.statements.closed(n);
                }
                None => {
                    self.sql_prepared.clear();
                    self.statements.clear();
                }
            },
            StatementKind::Set(SetCommand::DiscardAll) => {
                self.sql_prepared.clear();
                self.statements.clear();
            }
            _ => {}
        }
        if cycle.ddl && cycle.ddl_commit.is_none() {
            // In autocommit the DDL commits with this cycle; in a block it
            // commits later (and `Transaction::commits_ddl` covers that), but marking the
            // catalog now costs nothing the COMMIT would not.
            cycle.ddl_commit = Some(self.shared.engine.catalogs.begin_ddl_commit());
        }
    }

    /// Why this session cannot use the cache right now, if it cannot.
    fn session_bypass(&self, policy: &policies::Policy) -> Option<Bypass> {
        if !policy.enabled() {
            return Some(Bypass::Disabled);
        }
        if let Some(reason) = self.context.poisoned() {
            return Some(reason);
        }
        if let Some(reason) = self.shared.engine.feed_gate.check(
            &self.context.database,
            policy.max_lag(),
            Instant::now(),
        ) {
            return Some(reason);
        }
        if self.in_flight() {
            return Some(Bypass::Pipelined);
        }
        if let Some(reason) = self.tx.bypass() {
            return Some(reason);
        }
        match self.context.probed() {
            None => Some(Bypass::StateUnknown),
            Some(p) if p.temporary_relations => Some(Bypass::TemporaryObjects),
            Some(_) => None,
        }
    }

    /// The status of the server's last ReadyForQuery; `None` before the first.
    pub fn tx_status(&self) -> Option<TxStatus> {
        self.tx.status()
    }

    fn status(&self) -> TxStatus {
        self.tx.status().unwrap_or(TxStatus::Idle)
    }

    fn planner<'a>(
        &'a self,
        policy: &'a policies::Policy,
        catalog: Option<&'a (Arc<Snapshot>, u32)>,
        search_path: &'a [String],
        role: &'a str,
    ) -> Planner<'a> {
        Planner {
            tables: &self.shared.engine.tables,
            policy,
            catalog: catalog.map(|(s, db)| (&**s, *db)),
            search_path,
            role,
            scope_known: self.context.probed().is_some(),
            sql_prepared: &self.sql_prepared,
        }
    }

    /// What `analysis` may write and whether its result may be cached, planned
    /// once per session epoch (see [`PlanMemo`]).
    fn plan(
        &mut self,
        analysis: &Arc<Analysis>,
        policy: &Arc<policies::Policy>,
        catalog: Option<&(Arc<Snapshot>, u32)>,
    ) -> Arc<Plan> {
        let epoch = Epoch {
            snapshot: catalog.map(|(snapshot, db)| (snapshot.serial(), *db)),
            policy: policy.clone(),
            context: self.context.digest(),
        };
        if let Some(plan) = self.plans.get(&epoch, analysis) {
            self.reload_for_unknown_names(&plan);
            return plan;
        }
        let (search_path, role) = self.name_scope();
        let planner = self.planner(policy, catalog, &search_path, &role);
        let mut writes = WriteSet::Nothing;
        for statement in &analysis.statements {
            writes.add(&planner.writes(statement));
        }
        let cacheable = match analysis.single_cacheable_read() {
            None => Err(Bypass::NotSelect),
            Some(_) if !writes.is_empty() => Err(Bypass::VolatileFunction),
            Some(read) => planner.cacheable(read, &analysis.fingerprint),
        };
        let changes_state = analysis
            .statements
            .iter()
            .any(|statement| planner.changes_state(statement));
        let plan = Arc::new(Plan {
            writes,
            cacheable,
            changes_state,
        });
        if PlanMemo::may_keep(analysis) {
            self.plans.put(epoch, analysis.clone(), plan.clone());
        }
        self.reload_for_unknown_names(&plan);
        plan
    }

    /// A read naming a relation the catalog does not know may name one
    /// created around the proxy: the catalog reloads (rate-limited), so the
    /// next such read is planned against it, without waiting for the
    /// periodic refresh.
    fn reload_for_unknown_names(&self, plan: &Plan) {
        if matches!(plan.cacheable, Err(Bypass::UnresolvedRelation)) {
            if let CatalogState::Ready(catalog) = &self.catalog {
                if catalog.unknown_name(Instant::now()) {
                    tracing::debug!(database = %self.context.database, "unknown relation: catalog reload");
                }
            }
        }
    }

    /// The search_path and role that unqualified names resolve with, as the
    /// server last said. Unknown: only `pg_catalog` (searched implicitly
    /// first), and the planner resolves no unqualified relation name.
    fn name_scope(&self) -> (Vec<String>, String) {
        match (self.context.search_path(), self.context.current_role()) {
            (Some(path), Some(role)) => (path, role.to_string()),
            _ => (Vec::new(), self.context.user.clone()),
        }
    }

    /// The catalog snapshot of the session's database, loading it on first use.
    async fn snapshot(&mut self, now: Instant) -> Option<(Arc<Snapshot>, u32)> {
        if let CatalogState::Failed(at) = self.catalog {
            if now.saturating_duration_since(at) < CATALOG_RETRY {
                return None;
            }
            self.catalog = CatalogState::NotLoaded;
        }
        if let CatalogState::NotLoaded = self.catalog {
            match self
                .shared
                .engine
                .catalogs
                .get(&self.context.database)
                .await
            {
                Ok(catalog) => self.catalog = CatalogState::Ready(catalog),
                Err(e) => {
                    warn!(database = %self.context.database, error = %e, "catalog unavailable: not caching, writes invalidate everything");
                    self.catalog = CatalogState::Failed(Instant::now());
                    return None;
                }
            }
        }
        let CatalogState::Ready(catalog) = &self.catalog else {
            return None;
        };
        let index = catalog.index();
        match catalog.snapshot_at(now).await {
            Ok(snapshot) => Some((snapshot, index)),
            Err(e) => {
                warn!(database = %self.context.database, error = %e, "catalog reload failed");
                None
            }
        }
    }

    /// Writes in flight or not yet committed: if the session ends now, they may
    /// still have happened.
    pub fn has_pending_writes(&self) -> bool {
        self.tx.has_uncommitted() || self.cycles.may_write()
    }

    /// Nothing in flight, no transaction open: the session can end without
    /// losing anything.
    pub fn is_idle(&self) -> bool {
        self.cycles.is_empty()
            && self.batch.is_empty()
            && self.parked.is_none()
            && self.tx.status() == Some(TxStatus::Idle)
    }

    /// Requests sent whole (with their Sync) and not answered yet. A batch
    /// whose Sync never came is not waited for: the server rolls it back when
    /// the connection closes.
    pub fn awaiting_answers(&self) -> bool {
        self.cycles.awaiting_answers()
    }

    /// The client left: what to send the server so it finishes the requests in
    /// flight instead of waiting for the client. A COPY FROM STDIN is failed,
    /// as the server itself does when its client disconnects.
    pub fn abandon_client_input(&mut self, server: &mut BytesMut) {
        if self.copy_in {
            server.extend_from_slice(&crate::wire::encode::copy_fail("client connection lost"));
            self.copy_in = false;
        }
    }

    /// The session is over: whatever may have been written is invalidated.
    pub fn on_session_end(&mut self) {
        let engine = &self.shared.engine;
        let mut writes = self.tx.take_uncommitted();
        for mut cycle in self.cycles.drain() {
            writes.add(cycle.effective_writes());
            cycle.abandon_capture();
        }
        engine.invalidate(&writes, Source::Write);
    }
}
