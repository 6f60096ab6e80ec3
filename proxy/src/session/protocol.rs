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

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cache_core::{Entry, Join, KeyBuilder};
use tracing::warn;

use super::context::Context;
use super::cycle::{Capture, Cycle, Outcome};
use super::plan::{Cacheable, Epoch, Plan, PlanMemo, Planner};
use super::statements::{StatementInfo, Statements};
use crate::catalog::{DbCatalog, Snapshot};
use crate::engine::{WriteSet, COALESCE_WAIT};
use crate::server::Shared;
use crate::sql::{Analysis, Isolation, SetCommand, Statement, StatementKind, TxCommand};
use crate::wire::bind::{Bind, BIND_COMPLETE};
use crate::wire::describe::Target;
use crate::wire::error_response::severity_of;
use crate::wire::execute::Execute;
use crate::wire::parse::{Parse, PARSE_COMPLETE};
use crate::wire::startup::Startup;
use crate::wire::{backend, frontend, parameter_status, query, TxStatus};

/// An extended-protocol batch larger than this is forwarded as it comes.
const MAX_BATCH_BYTES: usize = 1 << 20;
/// After the catalog of a database could not be loaded, try again after this.
const CATALOG_RETRY: Duration = Duration::from_secs(10);

enum CatalogState {
    NotLoaded,
    Ready(Arc<DbCatalog>),
    Failed(Instant),
}

/// A cache lookup's result: served (and when), or a capture to fill on the
/// way back.
enum Lookup {
    Served(Arc<Entry>, Instant),
    Fill(Capture),
}

pub struct Protocol {
    shared: Arc<Shared>,
    /// An admin console session: queries are answered by the proxy.
    pub console: bool,
    pub context: Context,
    pub tx_status: Option<TxStatus>,
    pub terminated: bool,
    pub server_said_fatal: bool,
    pub backend_pid: Option<u32>,
    cycles: VecDeque<Cycle>,
    batch: Vec<(u8, Bytes)>,
    batch_bytes: usize,
    statements: Statements,
    sql_prepared: HashMap<String, Statement>,
    /// Writes of the open transaction block, invalidated again when it ends.
    uncommitted: WriteSet,
    /// The open transaction block runs at READ COMMITTED.
    tx_read_committed: bool,
    /// Something in the open transaction block (SET LOCAL) keeps it from caching.
    tx_uncacheable: bool,
    catalog: CatalogState,
    /// The server is in COPY FROM STDIN, waiting for the client's data.
    copy_in: bool,
    /// The catalog says the role's sessions start at READ COMMITTED.
    role_default_read_committed: bool,
    /// The snapshot serial and context digest `role_default_read_committed`
    /// was looked up with.
    role_default_seen: Option<(u64, [u8; 32])>,
    plans: PlanMemo,
}

impl Protocol {
    pub fn new(shared: Arc<Shared>, startup: &Startup) -> Protocol {
        Protocol {
            shared,
            console: false,
            context: Context::from_startup(startup),
            tx_status: None,
            terminated: false,
            server_said_fatal: false,
            backend_pid: None,
            cycles: VecDeque::new(),
            batch: Vec::new(),
            batch_bytes: 0,
            statements: Statements::default(),
            sql_prepared: HashMap::new(),
            uncommitted: WriteSet::Nothing,
            tx_read_committed: true,
            tx_uncacheable: false,
            catalog: CatalogState::NotLoaded,
            copy_in: false,
            role_default_read_committed: false,
            role_default_seen: None,
            plans: PlanMemo::default(),
        }
    }

    // ---- client side -------------------------------------------------------

    /// One whole client message.
    pub async fn on_client_message(
        &mut self,
        tag: u8,
        message: Bytes,
        server: &mut BytesMut,
        client: &mut BytesMut,
    ) {
        if self.console && self.tx_status.is_some() {
            return self.on_console_message(tag, &message, server, client);
        }
        match tag {
            frontend::PARSE
            | frontend::BIND
            | frontend::DESCRIBE
            | frontend::EXECUTE
            | frontend::CLOSE => {
                self.batch_bytes += message.len();
                self.batch.push((tag, message));
                if self.batch_bytes > MAX_BATCH_BYTES {
                    self.forward_batch(Outcome::Bypass("large_batch"), None, server)
                        .await;
                }
            }
            frontend::SYNC => {
                self.batch.push((tag, message));
                self.run_batch(server, client).await;
            }
            frontend::FLUSH => {
                self.batch.push((tag, message));
                self.forward_batch(Outcome::Bypass("flush"), None, server)
                    .await;
            }
            frontend::QUERY => {
                self.end_of_input(server).await;
                self.simple_query(message, server, client).await;
            }
            frontend::FUNCTION_CALL => {
                self.end_of_input(server).await;
                let oid = message
                    .get(5..9)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(u32::MAX);
                let mut cycle = Cycle::new(Outcome::Bypass("function_call"));
                cycle.writes = Planner::function_call_writes(oid);
                server.extend_from_slice(&message);
                self.cycles.push_back(cycle);
            }
            _ => {
                if tag == frontend::TERMINATE {
                    self.terminated = true;
                }
                if tag == frontend::COPY_DONE || tag == frontend::COPY_FAIL {
                    self.copy_in = false;
                }
                // COPY data, password messages, anything else: as it is.
                self.end_of_input(server).await;
                server.extend_from_slice(&message);
            }
        }
    }

    /// The admin console, once logged in: simple queries only.
    fn on_console_message(
        &mut self,
        tag: u8,
        message: &[u8],
        server: &mut BytesMut,
        client: &mut BytesMut,
    ) {
        match tag {
            frontend::QUERY => {
                let text = query::text(message).unwrap_or_default();
                crate::observe::console::answer(&self.shared, text, client);
                client.extend_from_slice(TxStatus::Idle.message());
            }
            frontend::SYNC => {
                client.extend_from_slice(
                    &crate::wire::ErrorResponse::error(
                        crate::wire::SqlState::FEATURE_NOT_SUPPORTED,
                        "the pgcache admin console speaks the simple query protocol only",
                    )
                    .encode(),
                );
                client.extend_from_slice(TxStatus::Idle.message());
            }
            frontend::TERMINATE => {
                self.terminated = true;
                server.extend_from_slice(message);
            }
            _ => {}
        }
    }

    /// Part of a client message too large to inspect (COPY data, a huge Bind):
    /// forwarded as it comes. A batch it belongs to can no longer be cached.
    pub async fn on_client_part(&mut self, part: &[u8], server: &mut BytesMut) {
        self.end_of_input(server).await;
        server.extend_from_slice(part);
    }

    /// All the client has sent so far is processed. A batch whose Sync has not
    /// arrived is forwarded now: some clients wait for answers (CopyInResponse,
    /// or rows after a Flush) before they send the rest.
    pub async fn end_of_input(&mut self, server: &mut BytesMut) {
        if !self.batch.is_empty() {
            self.forward_batch(Outcome::Bypass("split_batch"), None, server)
                .await;
        }
    }

    async fn simple_query(&mut self, message: Bytes, server: &mut BytesMut, client: &mut BytesMut) {
        let started = Instant::now();
        let Some(text) = query::text(&message) else {
            server.extend_from_slice(&message);
            self.cycles
                .push_back(Cycle::new(Outcome::Bypass("malformed")));
            return;
        };
        let analysis = self.shared.engine.analyzer.analyze(text);
        let catalog = self.snapshot(started).await;
        let policy = self.shared.engine.policy.load();
        let plan = self.plan(&analysis, &policy, catalog.as_ref());
        let mut cycle = Cycle::new(Outcome::Bypass("not_select"));
        cycle.writes = plan.writes.clone();
        for statement in &analysis.statements {
            if let StatementKind::Deallocate { name: Some(name) } = &statement.kind {
                self.prepare_silently(name, server);
            }
        }
        let standalone = analysis.statements.len() == 1;
        for statement in &analysis.statements {
            self.note_statement(statement, standalone, &mut cycle);
        }
        if analysis.statements.len() > 1 {
            cycle.outcome = Outcome::Bypass("multi_statement");
        } else if analysis.single_cacheable_read().is_some() {
            let decision = match self.session_bypass(&policy) {
                Some(reason) => Err(reason),
                None => plan.cacheable.as_ref().map_err(|reason| *reason),
            };
            match decision {
                Err(reason) => cycle.outcome = Outcome::Bypass(reason),
                Ok(cacheable) => {
                    let mut key = KeyBuilder::keyed(&self.context.digest());
                    key.part(b"Q").part(text.as_bytes());
                    match self
                        .lookup(key.finish(), cacheable, analysis.fingerprint_id, true)
                        .await
                    {
                        Lookup::Served(entry, at) => {
                            client.extend_from_slice(&entry.payload);
                            client.extend_from_slice(self.status().message());
                            self.shared.stats.record_hit(
                                at.saturating_duration_since(started),
                                Some((analysis.fingerprint_id, &analysis.fingerprint)),
                            );
                            return;
                        }
                        Lookup::Fill(capture) => {
                            cycle.outcome = Outcome::Miss;
                            cycle.capture = Some(capture);
                        }
                    }
                }
            }
        }
        cycle.started = started;
        cycle.fingerprint = Some((analysis.fingerprint_id, analysis.fingerprint.clone()));
        server.extend_from_slice(&message);
        self.cycles.push_back(cycle);
    }

    /// A batch ending in Sync: answered from the cache if it has the one shape
    /// the proxy caches, forwarded otherwise.
    async fn run_batch(&mut self, server: &mut BytesMut, client: &mut BytesMut) {
        let started = Instant::now();
        let mut outcome = Outcome::Bypass("batch");
        let mut capture = None;
        let mut fingerprint = None;
        if let Some(shape) = self.cacheable_shape() {
            fingerprint = Some((
                shape.analysis.fingerprint_id,
                shape.analysis.fingerprint.clone(),
            ));
            let policy = self.shared.engine.policy.load();
            let catalog = self.snapshot(started).await;
            let decision = match self.session_bypass(&policy) {
                Some(reason) => Err(reason),
                None => match shape.analysis.single_cacheable_read() {
                    None => Err("not_select"),
                    Some(_) => Ok(self.plan(&shape.analysis, &policy, catalog.as_ref())),
                },
            };
            let decision = match &decision {
                Err(reason) => Err(*reason),
                Ok(plan) => plan.cacheable.as_ref().map_err(|reason| *reason),
            };
            match decision {
                Err(reason) => outcome = Outcome::Bypass(reason),
                Ok(cacheable) => {
                    let key = {
                        let parsed = Parse::decode(&shape.parse);
                        let bind = Bind::decode(&self.batch[shape.bind].1);
                        match (parsed, bind) {
                            // A parameter 'now' cast to a timestamp is the time of execution.
                            (Some(_), Some(b))
                                if b.text_params().flatten().any(|v| {
                                    std::str::from_utf8(v).is_ok_and(crate::sql::is_time_literal)
                                }) =>
                            {
                                None
                            }
                            (Some(p), Some(b)) => {
                                let mut key = KeyBuilder::keyed(&self.context.digest());
                                key.part(b"E")
                                    .part(p.query.as_bytes())
                                    .part(p.param_types)
                                    .part(b.arguments)
                                    .u32_part(shape.describe as u32);
                                Some(key.finish())
                            }
                            _ => None,
                        }
                    };
                    if let Some(key) = key {
                        match self
                            .lookup(key, cacheable, shape.analysis.fingerprint_id, false)
                            .await
                        {
                            Lookup::Served(entry, at) => {
                                if shape.has_parse {
                                    client.extend_from_slice(PARSE_COMPLETE);
                                    if let Some(p) = Parse::decode(&shape.parse) {
                                        self.statements.parsed(
                                            p.statement,
                                            StatementInfo {
                                                parse: shape.parse.clone(),
                                                analysis: shape.analysis.clone(),
                                                upstream: false,
                                            },
                                        );
                                    }
                                }
                                client.extend_from_slice(BIND_COMPLETE);
                                client.extend_from_slice(&entry.payload);
                                client.extend_from_slice(self.status().message());
                                self.batch.clear();
                                self.batch_bytes = 0;
                                self.shared.stats.record_hit(
                                    at.saturating_duration_since(started),
                                    Some((
                                        shape.analysis.fingerprint_id,
                                        &shape.analysis.fingerprint,
                                    )),
                                );
                                return;
                            }
                            Lookup::Fill(c) => {
                                outcome = Outcome::Miss;
                                capture = Some(c);
                            }
                        }
                    }
                }
            }
        }
        self.forward_batch(outcome, capture, server).await;
        if let Some(cycle) = self.cycles.back_mut() {
            cycle.started = started;
            if fingerprint.is_some() {
                cycle.fingerprint = fingerprint;
            }
        }
    }

    /// `[Parse] Bind [Describe portal] Execute(all rows) Sync` on the unnamed
    /// portal of one statement, with nothing in flight: the batch shape the
    /// proxy answers from the cache.
    fn cacheable_shape(&self) -> Option<Shape> {
        if !self.cycles.is_empty() || self.statements.overflowed() {
            return None;
        }
        let mut tags = [0u8; 5];
        if self.batch.len() > tags.len() {
            return None;
        }
        for (tag, (t, _)) in tags.iter_mut().zip(&self.batch) {
            *tag = *t;
        }
        let tags = &tags[..self.batch.len()];
        let (has_parse, rest) = match tags.split_first()? {
            (&frontend::PARSE, rest) => (true, rest),
            _ => (false, tags),
        };
        let describe = match rest {
            [frontend::BIND, frontend::EXECUTE, frontend::SYNC] => false,
            [frontend::BIND, frontend::DESCRIBE, frontend::EXECUTE, frontend::SYNC] => true,
            _ => return None,
        };
        let bind_at = usize::from(has_parse);
        let bind = Bind::decode(&self.batch[bind_at].1)?;
        if !bind.portal.is_empty() {
            return None;
        }
        if describe && Target::decode(&self.batch[bind_at + 1].1)? != Target::Portal("") {
            return None;
        }
        let execute = Execute::decode(&self.batch[bind_at + 1 + usize::from(describe)].1)?;
        if !execute.portal.is_empty() || execute.max_rows != 0 {
            return None;
        }
        let (parse, analysis) = if has_parse {
            let message = &self.batch[0].1;
            let parse = Parse::decode(message)?;
            // Re-preparing an existing named statement is an error the server must give.
            if parse.statement != bind.statement
                || (!parse.statement.is_empty() && self.statements.exists(parse.statement))
            {
                return None;
            }
            let analysis = self.shared.engine.analyzer.analyze(parse.query);
            (message.clone(), analysis)
        } else {
            let info = self.statements.get(bind.statement)?;
            (info.parse.clone(), info.analysis.clone())
        };
        Some(Shape {
            has_parse,
            bind: bind_at,
            describe,
            parse,
            analysis,
        })
    }

    /// Forwards the buffered batch messages, tracking statements and portals,
    /// preparing upstream the statements answered locally before, and noting
    /// what each Execute may write.
    async fn forward_batch(
        &mut self,
        outcome: Outcome,
        capture: Option<Capture>,
        server: &mut BytesMut,
    ) {
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let catalog = self.snapshot(Instant::now()).await;
        let policy = self.shared.engine.policy.load();
        let mut cycle = match self.cycles.back() {
            Some(c) if c.open => self.cycles.pop_back().expect("back exists"),
            _ => {
                let mut c = Cycle::new(outcome);
                c.open = true;
                c
            }
        };
        if capture.is_some() {
            cycle.capture = capture;
        }
        let executes = batch
            .iter()
            .filter(|(t, _)| *t == frontend::EXECUTE)
            .count();
        let standalone = executes == 1 && self.cycles.is_empty();
        for (tag, message) in &batch {
            match *tag {
                frontend::PARSE => {
                    if let Some(p) = Parse::decode(message) {
                        let analysis = self.shared.engine.analyzer.analyze(p.query);
                        self.statements.parsed(
                            p.statement,
                            StatementInfo {
                                parse: message.clone(),
                                analysis,
                                upstream: true,
                            },
                        );
                    }
                    cycle.parse_completes.push_back(false);
                }
                frontend::BIND => {
                    if let Some(b) = Bind::decode(message) {
                        self.prepare_upstream(b.statement, &mut cycle, server);
                        self.statements.bound(b.portal, b.statement);
                    }
                }
                frontend::DESCRIBE => {
                    if let Some(Target::Statement(s)) = Target::decode(message) {
                        self.prepare_upstream(s, &mut cycle, server);
                    }
                }
                frontend::CLOSE => match Target::decode(message) {
                    Some(Target::Statement(s)) => self.statements.closed(s),
                    Some(Target::Portal(p)) => self.statements.portal_closed(p),
                    None => {}
                },
                frontend::EXECUTE => {
                    let analysis: Option<Arc<Analysis>> = Execute::decode(message)
                        .and_then(|e| self.statements.portal(e.portal).cloned());
                    match analysis {
                        Some(analysis) => {
                            let plan = self.plan(&analysis, &policy, catalog.as_ref());
                            cycle.writes.add(&plan.writes);
                            for statement in &analysis.statements {
                                self.note_statement(statement, standalone, &mut cycle);
                            }
                        }
                        None => cycle.writes = WriteSet::Everything,
                    }
                }
                frontend::SYNC => cycle.open = false,
                _ => {}
            }
            server.extend_from_slice(message);
        }
        self.cycles.push_back(cycle);
    }

    /// Sends the Parse of a statement the server has not seen (it was answered
    /// from the cache), so the message that uses it finds it there.
    fn prepare_upstream(&mut self, name: &str, cycle: &mut Cycle, server: &mut BytesMut) {
        if let Some(info) = self.statements.get_mut(name) {
            if !info.upstream {
                server.extend_from_slice(&info.parse);
                info.upstream = true;
                cycle.parse_completes.push_back(true);
            }
        }
    }

    /// `DEALLOCATE name` of a statement the server has not seen (the proxy
    /// answered it from the cache) would fail upstream, where against the
    /// server alone it succeeds: prepare it there first, in a cycle of its
    /// own (Parse, Sync) whose answers the client does not see. Not while an
    /// extended-protocol batch is open: that Sync would end the batch.
    fn prepare_silently(&mut self, name: &str, server: &mut BytesMut) {
        if self.cycles.back().is_some_and(|c| c.open) {
            return;
        }
        let Some(info) = self.statements.get_mut(name) else {
            return;
        };
        if info.upstream {
            return;
        }
        server.extend_from_slice(&info.parse);
        server.extend_from_slice(frontend::SYNC_MESSAGE);
        info.upstream = true;
        let mut cycle = Cycle::new(Outcome::Bypass("internal"));
        cycle.silent = true;
        self.cycles.push_back(cycle);
    }

    /// Session-level effects of a statement being sent: SET, transactions,
    /// temporary objects, SQL-level PREPARE.
    fn note_statement(&mut self, statement: &Statement, standalone: bool, cycle: &mut Cycle) {
        if statement.creates_temp {
            // Temporary relations shadow others; the catalog cannot see them.
            self.context.poison("temporary_objects");
        }
        match &statement.kind {
            StatementKind::Ddl => cycle.ddl = true,
            StatementKind::Read(read) if read.calls("set_config") => {
                self.context.poison("set_config")
            }
            StatementKind::Transaction(TxCommand::Begin { isolation, .. }) => {
                self.tx_read_committed = match isolation {
                    None => self.context.default_read_committed && self.catalog_default_rc(),
                    Some(i) => *i == Isolation::ReadCommitted,
                };
            }
            StatementKind::Transaction(TxCommand::SetTransaction { isolation })
                if !matches!(isolation, None | Some(Isolation::ReadCommitted)) =>
            {
                self.tx_read_committed = false;
            }
            StatementKind::Prepare { name, inner } => {
                self.sql_prepared
                    .entry(name.clone())
                    .or_insert_with(|| (**inner).clone());
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
            StatementKind::Set(command @ SetCommand::DiscardAll) => {
                self.sql_prepared.clear();
                self.statements.clear();
                self.note_set(command, standalone, cycle);
            }
            StatementKind::Set(command) => self.note_set(command, standalone, cycle),
            _ => {}
        }
    }

    fn note_set(&mut self, command: &SetCommand, standalone: bool, cycle: &mut Cycle) {
        if Context::is_harmless(command) {
            return;
        }
        match command {
            SetCommand::Set { local: true, .. }
            | SetCommand::SetRole { local: true, .. }
            | SetCommand::SetSessionAuthorization { local: true, .. } => self.tx_uncacheable = true,
            _ if standalone && self.status() == TxStatus::Idle && self.cycles.is_empty() => {
                cycle.on_success = Some(command.clone());
            }
            // A SET a ROLLBACK (TO SAVEPOINT) may undo, or one among others
            // that may fail: the proxy cannot follow it.
            _ => self.context.poison("set_in_transaction"),
        }
    }

    /// Why this session cannot use the cache right now, if it cannot.
    fn session_bypass(&self, policy: &policies::Policy) -> Option<&'static str> {
        if !policy.enabled() {
            return Some("disabled");
        }
        if let Some(reason) = self.context.poisoned() {
            return Some(reason);
        }
        if !self.cycles.is_empty() {
            return Some("pipelined");
        }
        match self.tx_status {
            Some(TxStatus::Idle) => None,
            Some(TxStatus::InTransaction) if !self.tx_read_committed => Some("isolation"),
            Some(TxStatus::InTransaction) if !self.uncommitted.is_empty() => {
                Some("transaction_wrote")
            }
            Some(TxStatus::InTransaction) if self.tx_uncacheable => Some("set_local"),
            Some(TxStatus::InTransaction) => None,
            Some(TxStatus::Failed) => Some("failed_transaction"),
            None => Some("startup"),
        }
    }

    /// Looks `key` up; on a miss, joins the coalescer and prepares a capture
    /// with the generations taken now, before the query goes upstream.
    async fn lookup(
        &self,
        key: cache_core::Key,
        cacheable: &Cacheable,
        tag: u64,
        recording: bool,
    ) -> Lookup {
        let engine = &self.shared.engine;
        let now = Instant::now();
        if let Some(entry) = engine.store.get(&key, &engine.generations, now).hit() {
            return Lookup::Served(entry, now);
        }
        let leader = match engine.coalescer.join(key) {
            Join::Leader(guard) => {
                // Another leader may have finished between the lookup and the join.
                if let Some(entry) = engine.store.get(&key, &engine.generations, now).hit() {
                    guard.complete(Some(entry.clone()));
                    return Lookup::Served(entry, now);
                }
                Some(guard)
            }
            Join::Follower(follower) => {
                if let Some(entry) = follower.wait(&engine.generations, COALESCE_WAIT).await {
                    return Lookup::Served(entry, Instant::now());
                }
                None
            }
        };
        let generations = engine.generations.snapshot(&cacheable.relations);
        Lookup::Fill(Capture {
            key,
            generations,
            taken_at: now,
            ttl: cacheable.ttl,
            max_size: cacheable.max_size.min(engine.store.max_entry_bytes()) as usize,
            tag,
            leader,
            payload: BytesMut::new(),
            recording,
            complete: false,
        })
    }

    fn status(&self) -> TxStatus {
        self.tx_status.unwrap_or(TxStatus::Idle)
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
            return plan;
        }
        let (search_path, role) = self.name_scope(catalog);
        let planner = self.planner(policy, catalog, &search_path, &role);
        let mut writes = WriteSet::Nothing;
        for statement in &analysis.statements {
            writes.add(&planner.writes(statement));
        }
        let cacheable = match analysis.single_cacheable_read() {
            None => Err("not_select"),
            Some(_) if !writes.is_empty() => Err("volatile_function"),
            Some(read) => planner.cacheable(read, &analysis.fingerprint),
        };
        let plan = Arc::new(Plan { writes, cacheable });
        if PlanMemo::may_keep(analysis) {
            self.plans.put(epoch, analysis.clone(), plan.clone());
        }
        plan
    }

    /// The search_path and role that unqualified names resolve with.
    fn name_scope(&self, catalog: Option<&(Arc<Snapshot>, u32)>) -> (Vec<String>, String) {
        let role = self.context.current_role().to_string();
        let path = self.context.search_path().unwrap_or_else(|| match catalog {
            Some((snapshot, _)) => snapshot.default_search_path(&role),
            None => vec!["$user".into(), "public".into()],
        });
        (path, role)
    }

    fn catalog_default_rc(&self) -> bool {
        self.role_default_read_committed
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
            Ok(snapshot) => {
                let seen = (snapshot.serial(), self.context.digest());
                if self.role_default_seen != Some(seen) {
                    self.role_default_read_committed =
                        snapshot.default_isolation_is_read_committed(self.context.current_role());
                    self.role_default_seen = Some(seen);
                }
                Some((snapshot, index))
            }
            Err(e) => {
                warn!(database = %self.context.database, error = %e, "catalog reload failed");
                None
            }
        }
    }

    // ---- server side -------------------------------------------------------

    /// One whole server message; appends what the client should get to `client`.
    pub fn on_server_message(&mut self, tag: u8, message: &[u8], client: &mut BytesMut) {
        if self.cycles.front().is_some_and(|c| c.silent) {
            match tag {
                backend::READY_FOR_QUERY => {
                    self.cycles.pop_front();
                    self.tx_status = TxStatus::from_message(message);
                    return;
                }
                backend::PARSE_COMPLETE => return,
                backend::ERROR_RESPONSE
                    if !severity_of(message).is_some_and(|s| s == b"FATAL" || s == b"PANIC") =>
                {
                    return;
                }
                // Notices, notifications, ParameterStatus, a FATAL error: as usual.
                _ => {}
            }
        }
        match tag {
            backend::READY_FOR_QUERY => self.finish_cycle(message),
            backend::PARSE_COMPLETE => {
                if let Some(cycle) = self.cycles.front_mut() {
                    if cycle.parse_completes.pop_front() == Some(true) {
                        return; // answers a Parse the proxy injected
                    }
                }
            }
            backend::BIND_COMPLETE => {
                if let Some(capture) = self.front_capture() {
                    capture.recording = true;
                }
            }
            backend::ROW_DESCRIPTION | backend::DATA_ROW | backend::COMMAND_COMPLETE => {
                let complete = tag == backend::COMMAND_COMPLETE;
                if let Some(cycle) = self.cycles.front_mut() {
                    if let Some(capture) = &mut cycle.capture {
                        if capture.recording && !capture.complete && capture.record(message) {
                            capture.complete = complete;
                        } else if capture.recording {
                            if let Some(c) = cycle.capture.take() {
                                c.abandon();
                            }
                        }
                    }
                    if complete {
                        // The write is done (in autocommit it is even committed):
                        // invalidate before the client hears of it.
                        self.shared.engine.invalidate(&cycle.writes);
                    }
                }
            }
            backend::ERROR_RESPONSE => {
                if severity_of(message).is_some_and(|s| s == b"FATAL" || s == b"PANIC") {
                    self.server_said_fatal = true;
                }
                if let Some(cycle) = self.cycles.front_mut() {
                    cycle.failed = true;
                    if let Some(c) = cycle.capture.take() {
                        c.abandon();
                    }
                }
            }
            backend::COPY_IN_RESPONSE | backend::COPY_BOTH_RESPONSE => {
                self.copy_in = true;
                if let Some(cycle) = self.cycles.front_mut() {
                    if let Some(c) = cycle.capture.take() {
                        c.abandon();
                    }
                }
            }
            backend::PARAMETER_STATUS => {
                if let Some((name, value)) = parameter_status::parse(message) {
                    self.context.on_parameter_status(name, value);
                }
            }
            backend::BACKEND_KEY_DATA => {
                if let Some(pid) = message.get(5..9) {
                    self.backend_pid = Some(u32::from_be_bytes([pid[0], pid[1], pid[2], pid[3]]));
                }
            }
            _ => {
                // A notice, notification, NoData, PortalSuspended, COPY...: not
                // something to replay from the cache.
                if let Some(cycle) = self.cycles.front_mut() {
                    if let Some(c) = cycle.capture.take() {
                        c.abandon();
                    }
                }
            }
        }
        client.extend_from_slice(message);
    }

    /// Part of a server message too large to inspect: relayed, never cached.
    pub fn on_server_part(&mut self, part: &[u8], client: &mut BytesMut) {
        if let Some(cycle) = self.cycles.front_mut() {
            if let Some(c) = cycle.capture.take() {
                c.abandon();
            }
        }
        client.extend_from_slice(part);
    }

    fn front_capture(&mut self) -> Option<&mut Capture> {
        self.cycles.front_mut()?.capture.as_mut()
    }

    /// ReadyForQuery: the front cycle is over.
    fn finish_cycle(&mut self, message: &[u8]) {
        self.copy_in = false;
        let status = TxStatus::from_message(message);
        self.tx_status = status;
        let engine = &self.shared.engine;
        if let Some(mut cycle) = self.cycles.pop_front() {
            if let Some(capture) = cycle.capture.take() {
                if !cycle.failed && capture.complete {
                    let entry = Arc::new(Entry::new(
                        capture.payload.freeze(),
                        capture.generations,
                        capture.taken_at,
                        capture.ttl,
                        capture.tag,
                    ));
                    engine
                        .store
                        .insert_arc(capture.key, entry.clone(), &engine.generations);
                    if let Some(leader) = capture.leader {
                        leader.complete(Some(entry));
                    }
                } else {
                    capture.abandon();
                }
            }
            if !cycle.failed {
                if let Some(command) = cycle.on_success.take() {
                    self.context.apply(&command);
                }
            }
            if cycle.ddl {
                engine.catalogs.mark_all_stale();
            }
            self.uncommitted.add(&cycle.writes);
            self.shared.stats.record_cycle(
                cycle.outcome,
                cycle.started,
                cycle.fingerprint.as_ref().map(|(id, f)| (*id, f)),
            );
        }
        if status != Some(TxStatus::InTransaction) && status != Some(TxStatus::Failed) {
            // Committed (or rolled back): invalidate what the block wrote, again.
            engine.invalidate(&self.uncommitted);
            self.uncommitted = WriteSet::Nothing;
            self.tx_read_committed = true;
            self.tx_uncacheable = false;
        }
    }

    /// Writes in flight or not yet committed: if the session ends now, they may
    /// still have happened.
    pub fn has_pending_writes(&self) -> bool {
        !self.uncommitted.is_empty() || self.cycles.iter().any(|c| !c.writes.is_empty())
    }

    /// Nothing in flight, no transaction open: the session can end without
    /// losing anything.
    pub fn is_idle(&self) -> bool {
        self.cycles.is_empty() && self.batch.is_empty() && self.tx_status == Some(TxStatus::Idle)
    }

    /// Requests sent whole (with their Sync) and not answered yet. A batch
    /// whose Sync never came is not waited for: the server rolls it back when
    /// the connection closes.
    pub fn awaiting_answers(&self) -> bool {
        self.cycles.iter().any(|c| !c.open)
    }

    /// The client left: what to send the server so it finishes the requests in
    /// flight instead of waiting for the client. A COPY FROM STDIN is failed,
    /// as the server itself does when its client disconnects.
    pub fn abandon_client_input(&mut self, server: &mut BytesMut) {
        if self.copy_in {
            let reason = b"client connection lost\0";
            server.extend_from_slice(&[frontend::COPY_FAIL]);
            server.extend_from_slice(&((reason.len() + 4) as u32).to_be_bytes());
            server.extend_from_slice(reason);
            self.copy_in = false;
        }
    }

    /// The session is over: whatever may have been written is invalidated.
    pub fn on_session_end(&mut self) {
        let engine = &self.shared.engine;
        let mut writes = std::mem::take(&mut self.uncommitted);
        for mut cycle in self.cycles.drain(..) {
            writes.add(&cycle.writes);
            if let Some(c) = cycle.capture.take() {
                c.abandon();
            }
        }
        engine.invalidate(&writes);
    }
}

struct Shape {
    has_parse: bool,
    bind: usize,
    describe: bool,
    /// The statement's Parse: this batch's, or the one that prepared it.
    parse: Bytes,
    analysis: Arc<Analysis>,
}
