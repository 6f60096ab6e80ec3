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

/// The cycles in flight, oldest first: the server answers them in order, so
/// every answer belongs to the front one.
#[derive(Default)]
pub struct Cycles {
    queue: VecDeque<Cycle>,
}

impl Cycles {
    pub fn push(&mut self, cycle: Cycle) {
        self.queue.push_back(cycle);
    }

    /// The cycle the server is answering.
    pub fn front(&self) -> Option<&Cycle> {
        self.queue.front()
    }

    pub fn front_mut(&mut self) -> Option<&mut Cycle> {
        self.queue.front_mut()
    }

    /// The cycle sent last.
    pub fn back_mut(&mut self) -> Option<&mut Cycle> {
        self.queue.back_mut()
    }

    /// ReadyForQuery: the front cycle is over.
    pub fn pop_front(&mut self) -> Option<Cycle> {
        self.queue.pop_front()
    }

    /// Requests sent and not answered yet.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// An extended-protocol batch whose Sync has not gone out is the last
    /// cycle sent.
    pub fn batch_open(&self) -> bool {
        self.queue.back().is_some_and(|c| c.open)
    }

    /// The open batch's cycle, taken out to be extended (and pushed back).
    pub fn take_open(&mut self) -> Option<Cycle> {
        if self.batch_open() {
            self.queue.pop_back()
        } else {
            None
        }
    }

    /// The cycle a Query or FunctionCall belongs to. Normally a new one,
    /// planned in `epoch`; but after extended-protocol messages without
    /// their Sync, the server answers them and this request with one
    /// ReadyForQuery, so the request joins (and closes) their cycle rather
    /// than expecting an answer of its own that will never come.
    pub fn for_request(&mut self, outcome: Outcome, epoch: u64) -> Cycle {
        match self.take_open() {
            Some(mut cycle) => {
                // Its earlier statements were planned in its own (older) epoch.
                cycle.open = false;
                cycle.outcome = Outcome::Bypass(Bypass::SplitBatch);
                cycle
            }
            None => {
                let mut cycle = Cycle::new(outcome);
                cycle.planned_in = epoch;
                cycle
            }
        }
    }

    /// Requests in flight whose answers could change what the next one
    /// sees. A Parse the proxy sends on its own changes nothing a statement
    /// returns.
    pub fn in_flight(&self) -> bool {
        self.queue
            .iter()
            .any(|c| c.internal != Some(Internal::Prepare))
    }

    /// A probe is waiting for its answer.
    pub fn probe_pending(&self) -> bool {
        self.queue
            .iter()
            .any(|c| c.internal == Some(Internal::Probe))
    }

    /// Requests sent whole (with their Sync) and not answered yet.
    pub fn awaiting_answers(&self) -> bool {
        self.queue.iter().any(|c| !c.open)
    }

    /// Some cycle in flight may write.
    pub fn may_write(&self) -> bool {
        self.queue.iter().any(|c| !c.writes.is_empty())
    }

    /// Every cycle in flight, taken out (the session is over).
    pub fn drain(&mut self) -> impl Iterator<Item = Cycle> + '_ {
        self.queue.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_batch(epoch: u64) -> Cycle {
        let mut c = Cycle::new(Outcome::Bypass(Bypass::SplitBatch));
        c.open = true;
        c.planned_in = epoch;
        c
    }

    #[test]
    fn answers_go_to_the_oldest_cycle() {
        let mut q = Cycles::default();
        assert!(q.front().is_none() && q.pop_front().is_none());
        q.push(Cycle::new(Outcome::Miss));
        q.push(Cycle::new(Outcome::Bypass(Bypass::NotSelect)));
        assert_eq!(q.len(), 2);
        assert_eq!(q.front().map(|c| c.outcome), Some(Outcome::Miss));
        q.front_mut().expect("front").failed = true;
        let first = q.pop_front().expect("first");
        assert!(first.failed);
        assert_eq!(
            q.pop_front().map(|c| c.outcome),
            Some(Outcome::Bypass(Bypass::NotSelect))
        );
        assert!(q.is_empty());
    }

    #[test]
    fn a_request_after_an_unsynced_batch_joins_it() {
        let mut q = Cycles::default();
        let fresh = q.for_request(Outcome::Bypass(Bypass::NotSelect), 7);
        assert_eq!(fresh.planned_in, 7);
        assert!(!fresh.open);
        assert_eq!(fresh.outcome, Outcome::Bypass(Bypass::NotSelect));
        q.push(fresh);
        // A batch without its Sync: one ReadyForQuery answers it and the
        // request after it.
        q.push(open_batch(3));
        assert!(q.batch_open());
        assert!(q.awaiting_answers(), "the first request went out whole");
        let joined = q.for_request(Outcome::Bypass(Bypass::NotSelect), 9);
        assert!(!joined.open);
        assert_eq!(joined.planned_in, 3, "keeps the batch's older epoch");
        assert_eq!(joined.outcome, Outcome::Bypass(Bypass::SplitBatch));
        assert_eq!(q.len(), 1, "taken out of the queue");
        assert!(!q.batch_open());
        assert!(q.take_open().is_none());
    }

    #[test]
    fn what_is_in_flight() {
        let mut q = Cycles::default();
        assert!(!q.in_flight() && !q.awaiting_answers() && !q.probe_pending());
        q.push(Cycle::internal(Internal::Prepare));
        assert!(!q.in_flight(), "a silent Parse changes no answer");
        assert!(q.awaiting_answers());
        assert!(!q.probe_pending());
        q.push(Cycle::internal(Internal::Probe));
        assert!(q.in_flight() && q.probe_pending());
        q.pop_front();
        q.pop_front();
        q.push(open_batch(0));
        assert!(q.in_flight());
        assert!(
            !q.awaiting_answers(),
            "a batch whose Sync never came is not waited for"
        );
        assert!(!q.may_write());
        q.back_mut().expect("back").writes = WriteSet::Everything;
        assert!(q.may_write());
        assert_eq!(q.drain().count(), 1);
        assert!(q.is_empty());
    }
}
