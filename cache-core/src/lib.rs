//! The pgcache engine: keys, a byte-budgeted LRU store, relation
//! generations, request coalescing and stats.
//!
//! This crate knows nothing of SQL, sockets or PostgreSQL. The proxy decides
//! what is cacheable, builds the [`Key`], names the relations a query reads
//! and writes as [`RelationId`]s, and composes the pieces:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use cache_core::{Entry, Generations, InsertOutcome, KeyBuilder, Lookup, Stats, Store, StoreConfig};
//!
//! let stats = Arc::new(Stats::new());
//! let store = Store::with_stats(StoreConfig::default(), Arc::clone(&stats));
//! let gens = Generations::with_stats(Arc::clone(&stats));
//! let users: u64 = (1 << 32) | 16384; // database 1, relation OID 16384
//!
//! let key = KeyBuilder::new().part(b"ctx").part(b"select * from users").finish();
//! assert!(matches!(store.get(&key, &gens, Instant::now()), Lookup::Miss));
//!
//! // Miss: snapshot BEFORE sending the query upstream.
//! let snap = gens.snapshot(&[users]);
//! let sent_at = Instant::now();
//! // ... forward, capture the response ...
//! let entry = Entry::new(Bytes::from_static(b"response"), snap, sent_at, Duration::from_secs(60), 0);
//! assert_eq!(store.insert(key, entry, &gens), InsertOutcome::Inserted);
//! assert!(store.get(&key, &gens, Instant::now()).is_hit());
//!
//! // A write to `users` is acknowledged by the server: bump before relaying it.
//! gens.bump(&[users]);
//! assert!(matches!(store.get(&key, &gens, Instant::now()), Lookup::Stale));
//! ```
//!
//! # Invariants
//!
//! These hold for any sequence of calls, from any number of threads:
//!
//! 1. **The byte budget is never exceeded.** Every entry is charged
//!    [`Entry::size`] (payload, key, metadata and a fixed overhead), each of
//!    the store's shards keeps its total within `max_bytes / shards`, and an
//!    insert evicts least recently used entries *before* the new one is
//!    counted. An entry that cannot fit a shard is refused. (While
//!    [`Store::set_max_bytes`] shrinks the budget, the old budget holds until
//!    it returns.)
//! 2. **No entry is served after a relation it read was invalidated.** An
//!    entry carries a [`GenerationSnapshot`] taken before its query went
//!    upstream; [`Store::get`] (and [`Follower::wait`]) return it only while
//!    every recorded generation, and the global one, is unchanged. A
//!    [`Generations::bump`] that completed before a lookup started is always
//!    seen by it.
//! 3. **No entry is served past its TTL.** Lookups compare against the
//!    `now` they are given; dead entries are removed when found and by
//!    [`Store::sweep`].
//! 4. **A reader that raced a writer cannot plant a stale entry.** If a
//!    write was bumped between a reader's snapshot and its insert, the
//!    insert is refused ([`InsertOutcome::Raced`]); if the bump comes after
//!    the insert, invariant 2 keeps the entry from being served.
//!
//! Invariants 2 and 4 rely on the proxy's side of the contract: take the
//! snapshot before the query is sent upstream, and bump after the server
//! acknowledged a write (or COMMIT) but before that acknowledgement is
//! relayed to the client.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod coalesce;
mod entry;
mod generation;
mod key;
mod stats;
mod store;

pub use coalesce::{Coalescer, Follower, Join, LeaderGuard};
pub use entry::{Entry, ENTRY_OVERHEAD};
pub use generation::{GenerationSnapshot, Generations, RelationId};
pub use key::{Key, KeyBuilder};
pub use stats::{Stats, StatsSnapshot};
pub use store::{InsertOutcome, Lookup, Store, StoreConfig, TagUsage, MAX_SHARDS};
