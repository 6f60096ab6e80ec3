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

use crate::bypass::Bypass;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cache_core::KeyBuilder;
use tracing::warn;

use super::context::Context;
use super::cycle::{Cycle, Internal, Outcome, ParseSlot};
use super::decision::{self, Capture, Lookup};
use super::plan::{Epoch, Plan, PlanMemo, Planner};
use super::probe::{Answer, Ask};
use super::statements::{StatementInfo, Statements};
use crate::catalog::{DbCatalog, Snapshot};
use crate::engine::{Source, WriteSet};
use crate::shared::Shared;
use crate::sql::{
    Analysis, SetCommand, Statement, StatementKind, TxCommand, MAX_ANALYZED_TEXT, TOO_LARGE,
};
use crate::wire::bind::{Bind, BIND_COMPLETE};
use crate::wire::describe::Target;
use crate::wire::error_response::is_syntax_error_in_text;
use crate::wire::error_response::severity_of;
use crate::wire::execute::Execute;
use crate::wire::parse::{Parse, PARSE_COMPLETE};
use crate::wire::result_set::command_tag;
use crate::wire::startup::Startup;
use crate::wire::{backend, frontend, parameter_status, query, TxStatus};

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
    pub tx_status: Option<TxStatus>,
    pub terminated: bool,
    pub server_said_fatal: bool,
    pub backend_pid: Option<u32>,
    cycles: VecDeque<Cycle>,
    batch: Vec<(u8, Bytes)>,
    batch_bytes: usize,
    statements: Statements,
    /// SQL-level prepared statements; `None` for a name whose statement is
    /// not known for sure (a PREPARE in a text that failed).
    sql_prepared: HashMap<String, Option<Statement>>,
    /// Writes of the open transaction block, invalidated again when it ends.
    uncommitted: WriteSet,
    /// Whether the open transaction block runs at READ COMMITTED, as the
    /// server said; `None` until it is asked.
    block_read_committed: Option<bool>,
    /// Something that may change the session's state ran in the open block:
    /// when the block ends (or rolls back to a savepoint) the state is
    /// unknown again.
    block_dirty: bool,
    /// DDL ran in the open block: its COMMIT commits DDL.
    block_ddl: bool,
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
            block_read_committed: None,
            block_dirty: false,
            block_ddl: false,
            catalog: CatalogState::NotLoaded,
            copy_in: false,
            authenticated: false,
            parked: None,
            answer: None,
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
            if super::console::on_message(&self.shared, tag, &message, server, client).await {
                self.terminated = true;
            }
            return;
        }
        if !self.authenticated {
            // The startup exchange (passwords, SASL) is relayed and nothing
            // else is done for a client the server has not accepted yet.
            if tag == frontend::TERMINATE {
                self.terminated = true;
            }
            server.extend_from_slice(&message);
            return;
        }
        match tag {
            frontend::PARSE
            | frontend::BIND
            | frontend::DESCRIBE
            | frontend::EXECUTE
            | frontend::CLOSE => {
                if tag == frontend::PARSE {
                    match Parse::decode(&message) {
                        // A large text is analysed now, off the workers; the
                        // batch finds it in the analyzer's cache.
                        Some(p) if p.query.len() > ANALYZE_INLINE => {
                            self.analyze(p.query).await;
                        }
                        _ => {}
                    }
                }
                self.batch_bytes += message.len();
                self.batch.push((tag, message));
                if self.batch_bytes > MAX_BATCH_BYTES {
                    self.forward_batch(Outcome::Bypass(Bypass::LargeBatch), None, server)
                        .await;
                }
            }
            frontend::SYNC => {
                self.batch.push((tag, message));
                self.run_batch(server, client, false).await;
            }
            frontend::FLUSH if self.batch.is_empty() => {
                // No ReadyForQuery answers a Flush: it opens no cycle (psycopg
                // ends a pipeline with Sync then Flush).
                server.extend_from_slice(&message);
            }
            frontend::FLUSH => {
                self.batch.push((tag, message));
                self.forward_batch(Outcome::Bypass(Bypass::Flush), None, server)
                    .await;
            }
            frontend::QUERY => {
                self.end_of_input(server).await;
                self.simple_query(message, server, client, false).await;
            }
            frontend::FUNCTION_CALL => {
                self.end_of_input(server).await;
                let oid = message
                    .get(5..9)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(u32::MAX);
                let mut cycle = self.cycle_for_request(Outcome::Bypass(Bypass::FunctionCall));
                cycle.writes.add(&Planner::function_call_writes(oid));
                if Planner::function_call_changes_state(oid) {
                    self.state_may_have_changed();
                }
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
                // COPY data, anything else: as it is.
                self.end_of_input(server).await;
                server.extend_from_slice(&message);
            }
        }
    }

    /// The cycle a Query or FunctionCall belongs to. Normally a new one; but
    /// after extended-protocol messages without their Sync, the server
    /// answers them and this request with one ReadyForQuery, so the request
    /// joins (and closes) their cycle rather than expecting an answer of its
    /// own that will never come.
    fn cycle_for_request(&mut self, outcome: Outcome) -> Cycle {
        let mut cycle = match self.cycles.back() {
            Some(c) if c.open => self.cycles.pop_back().expect("back exists"),
            _ => Cycle::new(outcome),
        };
        if cycle.open {
            // Its earlier statements were planned in its own (older) epoch.
            cycle.open = false;
            cycle.outcome = Outcome::Bypass(Bypass::SplitBatch);
        } else {
            cycle.planned_in = self.shared.engine.catalogs.ddl_epoch();
        }
        cycle
    }

    /// Something sent may have changed the session's state behind the text:
    /// the server is asked again before the cache is used.
    fn state_may_have_changed(&mut self) {
        self.context.forget_state();
        self.block_read_committed = None;
        self.block_dirty = true;
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
            self.forward_batch(Outcome::Bypass(Bypass::SplitBatch), None, server)
                .await;
        }
    }

    /// A simple Query: answered from the cache, or forwarded as a cycle.
    /// `probed`: this is the parked query coming back after a probe, so the
    /// server is not asked again.
    async fn simple_query(
        &mut self,
        message: Bytes,
        server: &mut BytesMut,
        client: &mut BytesMut,
        probed: bool,
    ) {
        let started = Instant::now();
        let epoch = self.shared.engine.catalogs.ddl_epoch();
        let text = match query::text(&message) {
            Some(text) => text,
            None => {
                let mut cycle = self.cycle_for_request(Outcome::Bypass(Bypass::Malformed));
                cycle.writes = WriteSet::Everything;
                cycle.self_committing = true;
                cycle.ddl_commit = Some(self.shared.engine.catalogs.begin_ddl_commit());
                self.state_may_have_changed();
                server.extend_from_slice(&message);
                self.cycles.push_back(cycle);
                return;
            }
        };
        let analysis = self.analyze(text).await;
        if !probed && self.may_need_probe() {
            if let Some(ask) = self.probe_needed(wants_state(&analysis)) {
                self.ask(ask, Parked::Query(message), server);
                return;
            }
        }
        let catalog = self.snapshot(started).await;
        let policy = self.shared.engine.policy.load();
        let plan = self.plan(&analysis, &policy, catalog.as_ref());
        let mut cycle = self.cycle_for_request(Outcome::Bypass(Bypass::NotSelect));
        // The oldest plan in the cycle decides whether a DDL commit came after.
        cycle.planned_in = cycle.planned_in.min(epoch);
        cycle.writes.add(&plan.writes);
        for statement in &analysis.statements {
            match &statement.kind {
                StatementKind::Deallocate { name: Some(name) }
                | StatementKind::Execute { name } => self.prepare_silently(name, server),
                _ => {}
            }
        }
        let was_open = cycle.outcome == Outcome::Bypass(Bypass::SplitBatch);
        for statement in &analysis.statements {
            self.note_statement(statement, &mut cycle);
        }
        if was_open {
            // Joined a batch in flight: never cached.
        } else if analysis.error.as_deref() == Some(TOO_LARGE) {
            cycle.outcome = Outcome::Bypass(Bypass::TooLarge);
        } else if analysis.statements.len() > 1 {
            cycle.outcome = Outcome::Bypass(Bypass::MultiStatement);
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
                    match decision::lookup(
                        &self.shared.engine,
                        key.finish(),
                        cacheable,
                        analysis.fingerprint_id,
                        true,
                        epoch,
                    )
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
        if plan.changes_state {
            // Once it runs (an answer from the cache runs nothing).
            self.state_may_have_changed();
        }
        cycle.started = started;
        cycle.fingerprint = Some((analysis.fingerprint_id, analysis.fingerprint.clone()));
        self.release_databases(&analysis, text, &mut cycle).await;
        server.extend_from_slice(&message);
        self.cycles.push_back(cycle);
    }

    /// DROP DATABASE x and the like run only while nobody else uses x; the
    /// proxy's own connections to it (catalog, change feed) are closed
    /// until the cycle ends, as they would not exist against the server.
    async fn release_databases(&self, analysis: &Analysis, text: &str, cycle: &mut Cycle) {
        if !analysis
            .statements
            .iter()
            .any(|s| matches!(s.kind, StatementKind::Ddl))
        {
            return;
        }
        for database in crate::sql::needing_exclusive_use(text) {
            if let Some(released) = self.shared.engine.catalogs.release(&database).await {
                cycle.released.push(released);
            }
        }
    }

    /// What the statements an extended-protocol batch runs need known: the
    /// batch's own Parses, and the statements its Binds name.
    fn batch_wants_state(&self) -> Wants {
        let mut wants = Wants::Nothing;
        for (tag, message) in &self.batch {
            let analysis = match *tag {
                frontend::PARSE => match Parse::decode(message) {
                    Some(p) if p.query.len() <= MAX_ANALYZED_TEXT => self.analyze_bounded(p.query),
                    _ => continue,
                },
                frontend::BIND => {
                    match Bind::decode(message).and_then(|b| self.statements.get(b.statement)) {
                        Some(info) => info.analysis.clone(),
                        None => continue,
                    }
                }
                _ => continue,
            };
            if wants_state(&analysis) != Wants::Nothing {
                wants = Wants::Names;
            }
        }
        wants
    }

    /// Whether to ask the server before deciding about a request that needs
    /// the session's state (`wants`): not while anything else is in flight
    /// (the answer would describe the state before it), nor for a session
    /// that will never use the cache.
    fn probe_needed(&self, wants: Wants) -> Option<Ask> {
        if wants == Wants::Nothing
            || self.in_flight()
            || self.context.poisoned().is_some()
            || !self.shared.engine.policy.load().enabled()
        {
            return None;
        }
        if self.context.probed().is_none() {
            return Some(Ask::State);
        }
        let read_in_block = wants == Wants::Read
            && self.tx_status == Some(TxStatus::InTransaction)
            && self.uncommitted.is_empty();
        (read_in_block && self.block_read_committed.is_none()).then_some(Ask::Isolation)
    }

    /// Cheap first test of `probe_needed`: something about the state is
    /// unknown.
    fn may_need_probe(&self) -> bool {
        self.context.probed().is_none()
            || (self.tx_status == Some(TxStatus::InTransaction)
                && self.block_read_committed.is_none())
    }

    /// Sends a probe and holds `parked` back until it is answered.
    fn ask(&mut self, ask: Ask, parked: Parked, server: &mut BytesMut) {
        ask.write(server);
        self.cycles.push_back(Cycle::internal(Internal::Probe));
        self.answer = None;
        self.parked = Some(parked);
    }

    /// A message is held back for a probe: the client is not read until the
    /// probe is answered and the message processed.
    pub fn parked(&self) -> bool {
        self.parked.is_some()
    }

    /// The probe a parked message waits for has been answered.
    pub fn ready_to_resume(&self) -> bool {
        self.parked.is_some()
            && !self
                .cycles
                .iter()
                .any(|c| c.internal == Some(Internal::Probe))
    }

    /// Processes the parked message, now that the server has said what the
    /// session's state is (or refused to: then the message is not cached).
    pub async fn resume(&mut self, server: &mut BytesMut, client: &mut BytesMut) {
        match self.parked.take() {
            Some(Parked::Query(message)) => self.simple_query(message, server, client, true).await,
            Some(Parked::Batch) => self.run_batch(server, client, true).await,
            None => {}
        }
    }

    /// Requests sent and not answered yet.
    pub fn requests_in_flight(&self) -> usize {
        self.cycles.len()
    }

    /// Requests in flight whose answers could change what the next one
    /// sees. A Parse the proxy sends on its own changes nothing a statement
    /// returns.
    fn in_flight(&self) -> bool {
        self.cycles
            .iter()
            .any(|c| c.internal != Some(Internal::Prepare))
    }

    /// A batch ending in Sync: answered from the cache if it has the one shape
    /// the proxy caches, forwarded otherwise.
    async fn run_batch(&mut self, server: &mut BytesMut, client: &mut BytesMut, probed: bool) {
        let started = Instant::now();
        let epoch = self.shared.engine.catalogs.ddl_epoch();
        let mut outcome = Outcome::Bypass(Bypass::Batch);
        let mut capture = None;
        let mut fingerprint = None;
        let shape = self.cacheable_shape();
        if !probed && self.may_need_probe() {
            let wants = match &shape {
                Some(shape) if shape.analysis.single_cacheable_read().is_some() => Wants::Read,
                _ => self.batch_wants_state(),
            };
            if let Some(ask) = self.probe_needed(wants) {
                self.ask(ask, Parked::Batch, server);
                return;
            }
        }
        if let Some(shape) = shape {
            fingerprint = Some((
                shape.analysis.fingerprint_id,
                shape.analysis.fingerprint.clone(),
            ));
            let policy = self.shared.engine.policy.load();
            let catalog = self.snapshot(started).await;
            let decision = match self.session_bypass(&policy) {
                Some(reason) => Err(reason),
                None => match shape.analysis.single_cacheable_read() {
                    None => Err(Bypass::NotSelect),
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
                        match decision::lookup(
                            &self.shared.engine,
                            key,
                            cacheable,
                            shape.analysis.fingerprint_id,
                            false,
                            epoch,
                        )
                        .await
                        {
                            Lookup::Served(entry, at) => {
                                if shape.has_parse {
                                    client.extend_from_slice(PARSE_COMPLETE);
                                    if let Some(p) = Parse::decode(&shape.parse) {
                                        let named = !p.statement.is_empty();
                                        self.statements.parsed(
                                            p.statement,
                                            StatementInfo {
                                                parse: shape.parse.clone(),
                                                analysis: shape.analysis.clone(),
                                                upstream: named,
                                                confirmed: true,
                                            },
                                        );
                                        if named {
                                            // The client may use it in ways
                                            // that reach the server (SQL
                                            // EXECUTE, pg_prepared_statements):
                                            // it must exist there too.
                                            server.extend_from_slice(&shape.parse);
                                            server.extend_from_slice(frontend::SYNC_MESSAGE);
                                            self.cycles
                                                .push_back(Cycle::internal(Internal::Prepare));
                                        }
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
            cycle.planned_in = cycle.planned_in.min(epoch);
            if fingerprint.is_some() {
                cycle.fingerprint = fingerprint;
            }
        }
    }

    /// `[Parse] Bind [Describe portal] Execute(all rows) Sync` on the unnamed
    /// portal of one statement, with nothing in flight: the batch shape the
    /// proxy answers from the cache.
    fn cacheable_shape(&self) -> Option<Shape> {
        if self.in_flight() || self.statements.overflowed() {
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
            // Re-preparing an existing named statement is an error the server
            // must give; SQL-level and protocol-level names share a namespace.
            if parse.statement != bind.statement
                || (!parse.statement.is_empty()
                    && (self.statements.exists(parse.statement)
                        || self.sql_prepared.contains_key(parse.statement)))
            {
                return None;
            }
            let analysis = self.analyze_bounded(parse.query);
            (message.clone(), analysis)
        } else {
            // Only a statement the server is known to have accepted: a Parse
            // it refused must not lend its text to another statement's answer.
            let info = self
                .statements
                .get(bind.statement)
                .filter(|i| i.confirmed)?;
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
        let epoch = self.shared.engine.catalogs.ddl_epoch();
        let catalog = self.snapshot(Instant::now()).await;
        let policy = self.shared.engine.policy.load();
        let mut cycle = match self.cycles.back() {
            Some(c) if c.open => self.cycles.pop_back().expect("back exists"),
            _ => {
                let mut c = Cycle::new(outcome);
                c.open = true;
                c.planned_in = epoch;
                c
            }
        };
        if capture.is_some() {
            cycle.capture = capture;
        }
        for (tag, message) in &batch {
            match *tag {
                frontend::PARSE => {
                    let name = match Parse::decode(message) {
                        Some(p) => {
                            let analysis = self.analyze_bounded(p.query);
                            // Released with the batch that parses it (drivers
                            // send Parse, Bind, Execute, Sync together).
                            self.release_databases(&analysis, p.query, &mut cycle).await;
                            self.statements.parsed(
                                p.statement,
                                StatementInfo {
                                    parse: message.clone(),
                                    analysis,
                                    upstream: true,
                                    confirmed: false,
                                },
                            );
                            p.statement.to_string()
                        }
                        None => String::new(),
                    };
                    cycle.parse_completes.push_back(ParseSlot::Client(name));
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
                                self.note_statement(statement, &mut cycle);
                            }
                            if plan.changes_state {
                                self.state_may_have_changed();
                            }
                        }
                        None => {
                            cycle.writes = WriteSet::Everything;
                            cycle.self_committing = true;
                            self.state_may_have_changed();
                        }
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
                cycle.parse_completes.push_back(ParseSlot::Injected);
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
        self.cycles.push_back(Cycle::internal(Internal::Prepare));
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
                self.block_ddl = true;
            }
            // A DO block or something not understood may run DDL and commit
            // on its own (DO and procedures may COMMIT).
            StatementKind::Unknown => {
                cycle.ddl = true;
                cycle.self_committing = true;
                self.block_ddl = true;
            }
            StatementKind::Call { .. } => cycle.self_committing = true,
            StatementKind::Transaction(command) => {
                match command {
                    // Even a BEGIN that names READ COMMITTED leaves the
                    // isolation unknown: the probe at the block's first read
                    // is also what takes the block's snapshot on the server,
                    // as the client's own read would have (after it, a late
                    // SET TRANSACTION ISOLATION fails as it does without the
                    // proxy).
                    TxCommand::Savepoint | TxCommand::Release => {}
                    TxCommand::RollbackToSavepoint => {
                        if self.block_dirty {
                            self.context.forget_state();
                        }
                    }
                    _ => {
                        self.block_read_committed = None;
                        if self.block_dirty {
                            // The block's SETs end with it, or with the
                            // rollback to a savepoint.
                            self.context.forget_state();
                        }
                    }
                }
                let commits_ddl = match command {
                    TxCommand::Commit | TxCommand::PrepareTransaction => self.block_ddl,
                    // A prepared transaction may hold DDL of another session.
                    TxCommand::CommitPrepared => true,
                    _ => false,
                };
                if commits_ddl && cycle.ddl_commit.is_none() {
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
            // commits later (and `block_ddl` covers that), but marking the
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
        match self.tx_status {
            Some(TxStatus::Idle) => {}
            Some(TxStatus::InTransaction) if !self.uncommitted.is_empty() => {
                return Some(Bypass::TransactionWrote)
            }
            Some(TxStatus::InTransaction) => match self.block_read_committed {
                Some(true) => {}
                Some(false) => return Some(Bypass::Isolation),
                None => return Some(Bypass::StateUnknown),
            },
            Some(TxStatus::Failed) => return Some(Bypass::FailedTransaction),
            None => return Some(Bypass::Startup),
        }
        match self.context.probed() {
            None => Some(Bypass::StateUnknown),
            Some(p) if p.temporary_relations => Some(Bypass::TemporaryObjects),
            Some(_) => None,
        }
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

    // ---- server side -------------------------------------------------------

    /// One whole server message; appends what the client should get to `client`.
    pub fn on_server_message(&mut self, tag: u8, message: &[u8], client: &mut BytesMut) {
        if let Some(internal) = self.cycles.front().and_then(|c| c.internal) {
            match tag {
                backend::READY_FOR_QUERY => {
                    self.cycles.pop_front();
                    self.tx_status = TxStatus::from_message(message);
                    if internal == Internal::Probe {
                        self.take_answer();
                    }
                    return;
                }
                backend::DATA_ROW => {
                    if internal == Internal::Probe {
                        self.answer = Answer::from_data_row(message);
                    }
                    return;
                }
                backend::PARSE_COMPLETE
                | backend::ROW_DESCRIPTION
                | backend::COMMAND_COMPLETE
                | backend::NOTICE_RESPONSE => return,
                backend::ERROR_RESPONSE
                    if !severity_of(message).is_some_and(|s| s == b"FATAL" || s == b"PANIC") =>
                {
                    self.answer = None;
                    return;
                }
                // Notifications, ParameterStatus, a FATAL error: as usual.
                _ => {}
            }
        }
        match tag {
            backend::READY_FOR_QUERY => self.finish_cycle(message),
            backend::AUTHENTICATION => {
                if message.get(5..9) == Some(&[0, 0, 0, 0]) {
                    self.authenticated = true;
                }
            }
            backend::PARSE_COMPLETE => {
                if let Some(cycle) = self.cycles.front_mut() {
                    match cycle.parse_completes.pop_front() {
                        // Answers a Parse the proxy injected.
                        Some(ParseSlot::Injected) => return,
                        Some(ParseSlot::Client(name)) => self.statements.confirmed(&name),
                        None => {}
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
                            cycle.abandon_capture();
                        }
                    }
                }
                if complete {
                    self.on_command_complete(message);
                }
            }
            backend::ERROR_RESPONSE => {
                if severity_of(message).is_some_and(|s| s == b"FATAL" || s == b"PANIC") {
                    self.server_said_fatal = true;
                }
                if let Some(cycle) = self.cycles.front_mut() {
                    if !cycle.failed {
                        cycle.syntax_error = is_syntax_error_in_text(message);
                    }
                    cycle.failed = true;
                    cycle.abandon_capture();
                }
            }
            backend::COPY_IN_RESPONSE | backend::COPY_BOTH_RESPONSE => {
                self.copy_in = true;
                if let Some(cycle) = self.cycles.front_mut() {
                    cycle.abandon_capture();
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
                    cycle.abandon_capture();
                }
            }
        }
        client.extend_from_slice(message);
    }

    /// A statement finished. What it wrote is done (in autocommit even
    /// committed): invalidate before the client hears of it. A COMMIT or
    /// ROLLBACK ends the block whatever the status says next (`COMMIT AND
    /// CHAIN`, `COMMIT; BEGIN` in one query): what the block wrote is
    /// invalidated now.
    fn on_command_complete(&mut self, message: &[u8]) {
        let engine = &self.shared.engine;
        let Some(cycle) = self.cycles.front_mut() else {
            return;
        };
        cycle.completed += 1;
        let mut source = if cycle.ddl_commit.is_some() {
            Source::Ddl
        } else {
            Source::Write
        };
        let mut writes =
            if engine.catalogs.ddl_settled_since(cycle.planned_in) || cycle.writes.is_empty() {
                cycle.writes.clone()
            } else {
                // Planned against a catalog older than a DDL that may have
                // committed before this statement ran.
                source = Source::Ddl;
                WriteSet::Everything
            };
        let tag = command_tag(message).unwrap_or_default();
        // ("ROLLBACK" is also the tag of ROLLBACK TO SAVEPOINT, after which
        // the block and its earlier writes go on; a rollback needs no
        // invalidation anyway.)
        let ends_block = matches!(tag, "COMMIT" | "PREPARE TRANSACTION" | "COMMIT PREPARED");
        if ends_block {
            if let Some(guard) = cycle.ddl_commit.take() {
                // Before the invalidation: a plan made after it uses a
                // catalog loaded after the commit.
                drop(guard);
            }
            writes.add(&self.uncommitted);
            self.uncommitted = WriteSet::Nothing;
            if std::mem::take(&mut self.block_ddl) {
                source = Source::Ddl;
            }
        }
        engine.invalidate(&writes, source);
    }

    /// The probe in flight was answered (or failed: the state stays unknown
    /// and the parked message is not cached).
    fn take_answer(&mut self) {
        match self.answer.take() {
            Some(Answer::State(probed)) => {
                let in_block = self.tx_status == Some(TxStatus::InTransaction);
                self.block_read_committed = in_block.then_some(probed.read_committed);
                if !in_block {
                    self.block_dirty = false;
                }
                self.context.set_probed(probed);
            }
            Some(Answer::Isolation { read_committed })
                if self.tx_status == Some(TxStatus::InTransaction) =>
            {
                self.block_read_committed = Some(read_committed);
            }
            Some(Answer::Isolation { .. }) | None => {}
        }
    }

    /// Part of a server message too large to inspect: relayed, never cached.
    pub fn on_server_part(&mut self, part: &[u8], client: &mut BytesMut) {
        if let Some(cycle) = self.cycles.front_mut() {
            cycle.abandon_capture();
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
        let first = self.tx_status.is_none();
        self.tx_status = status;
        let engine = &self.shared.engine;
        let Some(mut cycle) = self.cycles.pop_front() else {
            if !first {
                // A ReadyForQuery no request of the client's asked for: the
                // proxy no longer knows which answer belongs to which
                // request. Nothing more is cached for this session, and
                // whatever it may have written is invalidated.
                warn!(backend_pid = ?self.backend_pid, "unexpected ReadyForQuery: the session is no longer cached");
                self.context.poison(Bypass::ProtocolDesync);
                engine.invalidate(&WriteSet::Everything, Source::Desync);
            }
            return;
        };
        // Parses never answered were refused: those statements do not exist.
        for slot in cycle.parse_completes.drain(..) {
            if let ParseSlot::Client(name) = slot {
                self.statements.refused(&name);
            }
        }
        for (name, statement) in cycle.sql_prepares.drain(..) {
            if self.sql_prepared.len() >= MAX_SQL_PREPARED && !self.sql_prepared.contains_key(&name)
            {
                // Untracked: an EXECUTE of it is planned as unknown.
            } else if !cycle.failed {
                self.sql_prepared.entry(name).or_insert(Some(statement));
            } else if cycle.completed > 0 || cycle.self_committing {
                // It may have run before the error: not known for sure.
                self.sql_prepared.entry(name).or_insert(None);
            }
        }
        let writes = cycle.effective_writes().clone();
        if let Some(guard) = cycle.ddl_commit.take() {
            if writes.is_empty() && cycle.failed {
                guard.disarm();
            } else {
                drop(guard);
            }
        }
        if let Some(capture) = cycle.capture.take() {
            decision::complete(engine, capture, !cycle.failed);
        }
        self.uncommitted.add(&writes);
        self.shared.stats.record_cycle(
            cycle.outcome,
            cycle.started,
            cycle.fingerprint.as_ref().map(|(id, f)| (*id, f)),
        );
        if status != Some(TxStatus::InTransaction) && status != Some(TxStatus::Failed) {
            // Committed (or rolled back): invalidate what the block wrote, again.
            let source = if self.block_ddl {
                Source::Ddl
            } else {
                Source::Write
            };
            engine.invalidate(&self.uncommitted, source);
            self.uncommitted = WriteSet::Nothing;
            self.block_read_committed = None;
            self.block_ddl = false;
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
        self.cycles.is_empty()
            && self.batch.is_empty()
            && self.parked.is_none()
            && self.tx_status == Some(TxStatus::Idle)
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
            server.extend_from_slice(&crate::wire::encode::copy_fail("client connection lost"));
            self.copy_in = false;
        }
    }

    /// The session is over: whatever may have been written is invalidated.
    pub fn on_session_end(&mut self) {
        let engine = &self.shared.engine;
        let mut writes = std::mem::take(&mut self.uncommitted);
        for mut cycle in self.cycles.drain(..) {
            writes.add(cycle.effective_writes());
            cycle.abandon_capture();
        }
        engine.invalidate(&writes, Source::Write);
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

/// What part of the session's state a request needs known before it is
/// planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wants {
    Nothing,
    /// Names to resolve: a write to an unqualified table.
    Names,
    /// A read that may be served or stored: names, the key's settings, and
    /// inside a block its isolation.
    Read,
}

/// What `analysis` needs known about the session before it is planned.
fn wants_state(analysis: &Analysis) -> Wants {
    if analysis.single_cacheable_read().is_some() {
        return Wants::Read;
    }
    let unqualified_write = analysis.statements.iter().any(|s| match &s.kind {
        StatementKind::Write(w) => w.targets.iter().any(|t| t.schema.is_none()),
        _ => false,
    });
    if unqualified_write {
        Wants::Names
    } else {
        Wants::Nothing
    }
}
