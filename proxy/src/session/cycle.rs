//! Request cycles: what the proxy expects back from the server.
//!
//! A cycle is everything the server answers up to one ReadyForQuery: a simple
//! Query, an extended-protocol batch ending in Sync, or a function call. Cycles
//! are answered in order, so the proxy keeps a queue and matches each response
//! message to the cycle at its front.

use crate::bypass::Bypass;
pub use crate::bypass::Outcome;
use std::collections::VecDeque;
use std::time::Instant;

use super::decision::Capture;
use crate::engine::WriteSet;

/// A Parse forwarded in a cycle, in order, so each ParseComplete is matched
/// to the Parse it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseSlot {
    /// The client's Parse of this statement name; its ParseComplete makes
    /// the statement certain to exist on the server.
    Client(String),
    /// A Parse the proxy injected to prepare upstream a statement it had
    /// answered from the cache: its ParseComplete is not for the client.
    Injected,
}

/// Cycles the proxy sends on its own. Their answers are not for the client
/// and they count in no metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Internal {
    /// Prepares upstream a statement the proxy answered from the cache.
    Prepare,
    /// Asks the server for the session's state (see `probe.rs`).
    Probe,
}

pub struct Cycle {
    pub started: Instant,
    /// An extended-protocol batch whose Sync has not been forwarded yet.
    pub open: bool,
    pub outcome: Outcome,
    /// What the statements of this cycle may write.
    pub writes: WriteSet,
    /// The catalog's DDL epoch the writes were planned in: if a DDL committed
    /// since, the plan may have missed a trigger, a rule or a cascade.
    pub planned_in: u64,
    /// The cycle ran DDL: the catalog must reload once it is committed.
    pub ddl: bool,
    /// Held while a statement that may commit DDL is in flight; dropping it
    /// (at the cycle's end, or the session's) marks every catalog stale.
    pub ddl_commit: Option<crate::catalog::DdlCommit>,
    /// A statement that can commit on its own even if the cycle ends in an
    /// error (CALL, DO, anything not understood): its writes count then.
    pub self_committing: bool,
    /// CommandCompletes seen: statements that finished.
    pub completed: u32,
    /// The first error was a syntax error in the client's own text (42601
    /// with a position): the server ran none of it.
    pub syntax_error: bool,
    /// The server answered with an error.
    pub failed: bool,
    /// One per Parse forwarded, in order.
    pub parse_completes: VecDeque<ParseSlot>,
    /// SQL-level `PREPARE`s sent in this cycle, settled when it ends.
    pub sql_prepares: Vec<(String, crate::sql::Statement)>,
    pub capture: Option<Capture>,
    /// The query shape, for per-fingerprint statistics.
    pub fingerprint: Option<(u64, std::sync::Arc<str>)>,
    /// Sent by the proxy on its own.
    pub internal: Option<Internal>,
    /// Databases the proxy keeps its connections away from while this cycle
    /// runs (DROP DATABASE and the like).
    pub released: Vec<crate::catalog::Released>,
}

impl Cycle {
    pub fn new(outcome: Outcome) -> Cycle {
        Cycle {
            started: Instant::now(),
            open: false,
            outcome,
            writes: WriteSet::Nothing,
            planned_in: 0,
            ddl: false,
            ddl_commit: None,
            self_committing: false,
            completed: 0,
            syntax_error: false,
            failed: false,
            parse_completes: VecDeque::new(),
            sql_prepares: Vec::new(),
            capture: None,
            fingerprint: None,
            internal: None,
            released: Vec::new(),
        }
    }

    pub fn internal(kind: Internal) -> Cycle {
        let mut cycle = Cycle::new(Outcome::Bypass(Bypass::Internal));
        cycle.internal = Some(kind);
        cycle
    }

    /// What the cycle wrote as far as the server is concerned. A cycle that
    /// failed before any statement finished wrote nothing, unless one of its
    /// statements can commit by itself; a syntax error in the client's text
    /// means the server rejected all of it before running any (a DO block's
    /// dynamic SQL fails with 42601 too, but at a position inside the block
    /// that is reported as an internal one).
    pub fn effective_writes(&self) -> &WriteSet {
        static NOTHING: WriteSet = WriteSet::Nothing;
        if self.failed && self.completed == 0 && (!self.self_committing || self.syntax_error) {
            &NOTHING
        } else {
            &self.writes
        }
    }

    /// Drops the capture, telling any followers now.
    pub fn abandon_capture(&mut self) {
        if let Some(c) = self.capture.take() {
            c.abandon();
        }
    }
}
