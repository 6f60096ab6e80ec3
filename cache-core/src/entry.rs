//! A cached response and what it takes to decide whether it may be served.

use std::mem::size_of;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::generation::{GenerationSnapshot, Generations};
use crate::key::Key;

/// Fixed bytes charged per entry on top of what [`Entry`] itself holds: the
/// LRU list node (key, value pointer, two links), the hash table slot, the
/// `Arc` header and allocator slack. An estimate, deliberately generous:
/// without it a flood of tiny results would use far more memory than the
/// budget says.
pub const ENTRY_OVERHEAD: usize = 128;

/// One cached response.
///
/// Entries are immutable once stored (the store hands out `Arc<Entry>`), so
/// [`Entry::size`] is the same when the entry is added to the byte count and
/// when it is taken out.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The exact response bytes to replay to the client. Give the store a
    /// `Bytes` that owns its buffer: a slice of a larger buffer keeps the
    /// whole buffer alive but is only charged for its own length.
    pub payload: Bytes,
    /// The generations of everything the query read, taken before the
    /// query went upstream.
    pub generations: GenerationSnapshot,
    /// The start of the TTL. Use the instant the query was sent upstream
    /// (when the snapshot was taken): the data is at least that old.
    pub inserted_at: Instant,
    /// How long the entry may be served, bounding staleness from writes the
    /// proxy cannot see.
    pub ttl: Duration,
    /// Opaque to this crate; the proxy stores a fingerprint id here for
    /// admin listings and invalidation by query shape.
    pub tag: u64,
}

impl Entry {
    /// A new entry.
    pub fn new(
        payload: Bytes,
        generations: GenerationSnapshot,
        inserted_at: Instant,
        ttl: Duration,
        tag: u64,
    ) -> Entry {
        Entry {
            payload,
            generations,
            inserted_at,
            ttl,
            tag,
        }
    }

    /// Bytes charged against the store's budget: payload, key, the entry
    /// itself, the snapshot's relation list and [`ENTRY_OVERHEAD`].
    pub fn size(&self) -> usize {
        self.payload
            .len()
            .saturating_add(self.generations.heap_size())
            .saturating_add(size_of::<Key>() + size_of::<Entry>() + ENTRY_OVERHEAD)
    }

    /// When the entry stops being servable, or `None` if the TTL is so long
    /// that the deadline is not representable (never expires).
    pub fn expires_at(&self) -> Option<Instant> {
        self.inserted_at.checked_add(self.ttl)
    }

    /// True once `now` has reached the end of the TTL. A zero TTL is expired
    /// at once. Never panics, whatever the instants.
    pub fn is_expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.inserted_at) >= self.ttl
    }

    /// True if the entry may be served at `now`: within its TTL and no
    /// relation it read has been invalidated since its snapshot.
    pub fn is_servable(&self, gens: &Generations, now: Instant) -> bool {
        !self.is_expired(now) && gens.is_current(&self.generations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(payload: &'static [u8], ttl: Duration, gens: &Generations) -> Entry {
        Entry::new(
            Bytes::from_static(payload),
            gens.snapshot(&[1, 2]),
            Instant::now(),
            ttl,
            0,
        )
    }

    #[test]
    fn size_counts_more_than_payload() {
        let g = Generations::new();
        let small = entry(b"", Duration::from_secs(1), &g);
        let big = entry(b"0123456789", Duration::from_secs(1), &g);
        assert!(small.size() >= ENTRY_OVERHEAD + size_of::<Key>());
        assert_eq!(big.size() - small.size(), 10);
        let no_rels = Entry::new(
            Bytes::new(),
            g.snapshot(&[]),
            Instant::now(),
            Duration::ZERO,
            0,
        );
        assert!(small.size() > no_rels.size());
    }

    #[test]
    fn ttl() {
        let g = Generations::new();
        let e = entry(b"x", Duration::from_secs(10), &g);
        let t0 = e.inserted_at;
        assert!(!e.is_expired(t0));
        assert!(!e.is_expired(t0 + Duration::from_secs(9)));
        assert!(e.is_expired(t0 + Duration::from_secs(10)));
        // A `now` before insertion is not expired (and does not panic).
        assert!(!e.is_expired(t0.checked_sub(Duration::from_secs(1)).unwrap_or(t0)));
        assert_eq!(e.expires_at(), Some(t0 + Duration::from_secs(10)));

        let zero = entry(b"x", Duration::ZERO, &g);
        assert!(zero.is_expired(zero.inserted_at));

        let forever = entry(b"x", Duration::MAX, &g);
        assert_eq!(forever.expires_at(), None);
        assert!(!forever.is_expired(forever.inserted_at + Duration::from_secs(1 << 40)));
    }

    #[test]
    fn servable_follows_generations() {
        let g = Generations::new();
        let e = entry(b"x", Duration::from_secs(10), &g);
        assert!(e.is_servable(&g, e.inserted_at));
        g.bump(&[2]);
        assert!(!e.is_servable(&g, e.inserted_at));
    }
}
