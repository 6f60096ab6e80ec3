//! The cache decision, in one place: look a request up (a hit, or a capture
//! to fill on the way back, joined with any other session asking the same),
//! and complete a capture (store it, or give up). The session decides *what*
//! may be cached (`plan.rs`, `protocol/`); this module is the only part of
//! it that touches the store, the generations and the coalescer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cache_core::{Entry, GenerationSnapshot, Join, Key, LeaderGuard};

use super::plan::Cacheable;
use crate::engine::{Engine, COALESCE_WAIT};

/// A lookup's result: served (and when), or a capture to fill on the way
/// back.
pub enum Lookup {
    Served(Arc<Entry>, Instant),
    Fill(Capture),
}

/// Looks `key` up; on a miss, joins the coalescer and prepares a capture
/// with the generations taken now, before the query goes upstream.
/// `planned_in`: the catalogs' DDL epoch the plan was made in.
pub async fn lookup(
    engine: &Engine,
    key: Key,
    cacheable: &Cacheable,
    tag: u64,
    recording: bool,
    planned_in: u64,
) -> Lookup {
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
        planned_in,
    })
}

/// The request's cycle is over: a whole answer that succeeded (`ok`), planned
/// with a catalog no DDL has committed past since, is stored and handed to
/// the followers; anything else is given up.
pub fn complete(engine: &Engine, capture: Capture, ok: bool) {
    if !(ok && capture.complete && engine.catalogs.ddl_settled_since(capture.planned_in)) {
        capture.abandon();
        return;
    }
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
    /// The catalog's DDL epoch the read was planned in (see `Catalogs`): the
    /// result is stored only if no DDL committed since.
    pub planned_in: u64,
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
