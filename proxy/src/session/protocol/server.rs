//! The server's side of a session: each answer matched to the cycle at the
//! front of the queue, captured, and turned into invalidations, probe
//! answers and the transaction status.

use bytes::BytesMut;
use tracing::warn;

use crate::bypass::Bypass;
use crate::engine::{Source, WriteSet};
use crate::session::cycle::{Internal, ParseSlot};
use crate::session::decision::{self, Capture};
use crate::session::probe::Answer;
use crate::wire::error_response::is_syntax_error_in_text;
use crate::wire::error_response::severity_of;
use crate::wire::result_set::command_tag;
use crate::wire::{backend, parameter_status, TxStatus};

use super::{Protocol, MAX_SQL_PREPARED};

impl Protocol {
    /// One whole server message; appends what the client should get to `client`.
    pub fn on_server_message(&mut self, tag: u8, message: &[u8], client: &mut BytesMut) {
        if let Some(internal) = self.cycles.front().and_then(|c| c.internal) {
            match tag {
                backend::READY_FOR_QUERY => {
                    self.cycles.pop_front();
                    self.tx.set_status(TxStatus::from_message(message));
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
            let (block, ddl) = self.tx.committed();
            writes.add(&block);
            if ddl {
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
                self.tx.probed_state(probed.read_committed);
                self.context.set_probed(probed);
            }
            Some(Answer::Isolation { read_committed }) => self.tx.probed_isolation(read_committed),
            None => {}
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
        let first = self.tx.set_status(status);
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
        let block_ended = self.tx.cycle_ended(&writes);
        self.shared.stats.record_cycle(
            cycle.outcome,
            cycle.started,
            cycle.fingerprint.as_ref().map(|(id, f)| (*id, f)),
        );
        if let Some((writes, source)) = block_ended {
            // Committed (or rolled back): invalidate what the block wrote, again.
            engine.invalidate(&writes, source);
        }
    }
}
