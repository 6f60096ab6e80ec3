//! Request cycles: what the proxy expects back from the server.
//!
//! A cycle is everything the server answers up to one ReadyForQuery: a simple
//! Query, an extended-protocol batch ending in Sync, or a function call. Cycles
//! are answered in order, so the proxy keeps a queue and matches each response
//! message to the cycle at its front.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cache_core::{GenerationSnapshot, Key, LeaderGuard};

use crate::engine::WriteSet;
use crate::sql::SetCommand;

/// How a cycle counts in the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Looked up, not found, forwarded (and captured for the cache).
    Miss,
    /// Not cacheable; the reason is a short stable label.
    Bypass(&'static str),
}

pub struct Cycle {
    pub started: Instant,
    /// An extended-protocol batch whose Sync has not been forwarded yet.
    pub open: bool,
    pub outcome: Outcome,
    /// What the statements of this cycle may write.
    pub writes: WriteSet,
    /// The cycle ran DDL: the catalog must reload.
    pub ddl: bool,
    /// A SET to follow once the server accepted it.
    pub on_success: Option<SetCommand>,
    /// The server answered with an error.
    pub failed: bool,
    /// One per Parse forwarded, in order: `true` when the proxy injected it (to
    /// prepare upstream a statement it had answered locally), so its
    /// ParseComplete is not for the client.
    pub parse_completes: VecDeque<bool>,
    pub capture: Option<Capture>,
    /// The query shape, for per-fingerprint statistics.
    pub fingerprint: Option<(u64, std::sync::Arc<str>)>,
    /// Sent by the proxy on its own (see `Protocol::prepare_silently`): its
    /// ParseComplete, error and ReadyForQuery are not for the client, and it
    /// counts in no metric.
    pub silent: bool,
}

impl Cycle {
    pub fn new(outcome: Outcome) -> Cycle {
        Cycle {
            started: Instant::now(),
            open: false,
            outcome,
            writes: WriteSet::Nothing,
            ddl: false,
            on_success: None,
            failed: false,
            parse_completes: VecDeque::new(),
            capture: None,
            fingerprint: None,
            silent: false,
        }
    }
}

/// A response being recorded for the cache.
pub struct Capture {
    pub key: Key,
    /// Generations of everything the query reads, taken before it went upstream.
    pub generations: GenerationSnapshot,
    pub taken_at: Instant,
    pub ttl: Duration,
    pub max_size: usize,
    pub tag: u64,
    /// Other sessions waiting for this result.
    pub leader: Option<LeaderGuard>,
    pub payload: BytesMut,
    /// Recording has begun: at once for a simple Query, after BindComplete for a batch.
    pub recording: bool,
    /// CommandComplete was seen: the result is whole.
    pub complete: bool,
}

impl Capture {
    /// Adds a message to the recording; false if it makes the result too large.
    pub fn record(&mut self, message: &[u8]) -> bool {
        if self.payload.len() + message.len() > self.max_size {
            return false;
        }
        self.payload.extend_from_slice(message);
        true
    }

    /// Gives up: followers are told now rather than when the cycle ends.
    pub fn abandon(self) {
        if let Some(leader) = self.leader {
            leader.complete(None);
        }
    }
}
