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
    /// The exact response bytes to replay to the client, in a buffer of
    /// about their size (see [`Entry::new`]), so that charging the length
    /// charges what is held.
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
    /// A new entry. A payload whose buffer is noticeably larger than its
    /// length (a grown `BytesMut`, frozen, keeps its spare capacity; a slice
    /// keeps the whole buffer) is copied to a buffer of its own size.
    pub fn new(
        payload: Bytes,
        generations: GenerationSnapshot,
        inserted_at: Instant,
        ttl: Duration,
        tag: u64,
    ) -> Entry {
        Entry {
            payload: exact_size(payload),
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

/// Spare capacity a payload may keep: an eighth of its length, and a little.
fn tolerated_spare(len: usize) -> usize {
    len / 8 + 64
}

/// `payload` in a buffer of about its own size.
fn exact_size(payload: Bytes) -> Bytes {
    // Only a buffer this `Bytes` alone holds can be reclaimed, and only that
    // one tells its capacity; a shared one is already charged elsewhere.
    match payload.try_into_mut() {
        Ok(buf) if buf.capacity() > buf.len() + tolerated_spare(buf.len()) => {
            Bytes::copy_from_slice(&buf)
        }
        Ok(buf) => buf.freeze(),
        Err(shared) => shared,
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
    fn a_grown_buffer_is_stored_at_its_size() {
        let g = Generations::new();
        let held = |payload: Bytes| {
            let e = Entry::new(payload, g.snapshot(&[]), Instant::now(), Duration::ZERO, 0);
            let len = e.payload.len();
            let buf = e
                .payload
                .try_into_mut()
                .expect("the entry holds its buffer alone");
            (len, buf.capacity())
        };
        // Grown the way a capture grows: small messages, then a large one.
        let mut grown = bytes::BytesMut::new();
        grown.extend_from_slice(&[b'T'; 40]);
        grown.extend_from_slice(&[b'D'; 100_000]);
        grown.extend_from_slice(&[b'C'; 13]);
        assert!(grown.capacity() > 150_000, "the test grows a buffer");
        let (len, capacity) = held(grown.freeze());
        assert_eq!(len, 100_053);
        assert!(
            capacity <= len + tolerated_spare(len),
            "{capacity} held for {len}"
        );

        let mut large = bytes::BytesMut::with_capacity(1 << 20);
        large.extend_from_slice(&[1; 1000]);
        let slice = large.freeze().slice(10..20);
        let (len, capacity) = held(slice);
        assert_eq!(len, 10);
        assert!(
            capacity <= len + tolerated_spare(len),
            "{capacity} held for {len}"
        );

        let (len, capacity) = held(Bytes::from(vec![7u8; 5000]));
        assert_eq!((len, capacity), (5000, 5000));
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
