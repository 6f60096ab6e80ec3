//! The client's side of a session: its messages taken in, batched, answered
//! from the cache or forwarded as cycles, and held back for a probe.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use cache_core::KeyBuilder;

use crate::bypass::Bypass;
use crate::engine::WriteSet;
use crate::session::cycle::{Cycle, Internal, Outcome, ParseSlot};
use crate::session::decision::{self, Capture, Lookup};
use crate::session::plan::Planner;
use crate::session::probe::Ask;
use crate::session::statements::StatementInfo;
use crate::sql::{Analysis, StatementKind, MAX_ANALYZED_TEXT, TOO_LARGE};
use crate::wire::bind::{Bind, BIND_COMPLETE};
use crate::wire::describe::Target;
use crate::wire::execute::Execute;
use crate::wire::parse::{Parse, PARSE_COMPLETE};
use crate::wire::{frontend, query};

use super::{Parked, Protocol, ANALYZE_INLINE, MAX_BATCH_BYTES};

impl Protocol {
    /// One whole client message.
    pub async fn on_client_message(
        &mut self,
        tag: u8,
        message: Bytes,
        server: &mut BytesMut,
        client: &mut BytesMut,
    ) {
        if self.console && self.tx.status().is_some() {
            if crate::session::console::on_message(&self.shared, tag, &message, server, client)
                .await
            {
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
                self.cycles.push(cycle);
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

    /// The cycle a Query or FunctionCall belongs to (see
    /// `Cycles::for_request`), planned in the catalog's current DDL epoch.
    fn cycle_for_request(&mut self, outcome: Outcome) -> Cycle {
        let epoch = self.shared.engine.catalogs.ddl_epoch();
        self.cycles.for_request(outcome, epoch)
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
                self.cycles.push(cycle);
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
        self.cycles.push(cycle);
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
        (wants == Wants::Read && self.tx.needs_isolation()).then_some(Ask::Isolation)
    }

    /// Cheap first test of `probe_needed`: something about the state is
    /// unknown.
    fn may_need_probe(&self) -> bool {
        self.context.probed().is_none() || self.tx.isolation_unknown()
    }

    /// Sends a probe and holds `parked` back until it is answered.
    fn ask(&mut self, ask: Ask, parked: Parked, server: &mut BytesMut) {
        ask.write(server);
        self.cycles.push(Cycle::internal(Internal::Probe));
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
        self.parked.is_some() && !self.cycles.probe_pending()
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
                                            self.cycles.push(Cycle::internal(Internal::Prepare));
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
        let mut cycle = match self.cycles.take_open() {
            Some(c) => c,
            None => {
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
                            // Released when it runs, whichever batch parsed
                            // it (tokio-postgres prepares in one, executes in
                            // the next). The fingerprint keeps names as the
                            // server folds them.
                            let fingerprint = analysis.fingerprint.clone();
                            self.release_databases(&analysis, &fingerprint, &mut cycle)
                                .await;
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
        self.cycles.push(cycle);
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
        if self.cycles.batch_open() {
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
        self.cycles.push(Cycle::internal(Internal::Prepare));
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
