//! Cache keys.
//!
//! A [`Key`] is a 32-byte BLAKE3 digest of everything that can change a
//! response: the session context, the statement text, the parameters and the
//! requested formats. This crate does not know what those parts are; the
//! proxy feeds them to a [`KeyBuilder`] in a fixed order.
//!
//! The encoding fed to the hash is self-delimiting: every part starts with a
//! one-byte type tag, and byte strings carry a length prefix (LEB128, so a
//! short part costs two bytes of framing and most keys fit one BLAKE3 block). So two different
//! sequences of parts can never produce the same byte stream, which means
//! `("ab", "c")`, `("a", "bc")`, `("abc")`, `(NULL)` and `("")` all hash
//! differently. Without that, a parameter boundary could be moved to make two
//! different queries share a cache entry.

use std::fmt;
use std::hash::{Hash, Hasher};

/// Domain separation: a key built here can never equal a BLAKE3 hash computed
/// for some other purpose, and bumping the version invalidates the key space
/// if the encoding ever changes.
const DOMAIN: &[u8] = b"pgcache key v1\0";

const TAG_BYTES: u8 = 1;
const TAG_NULL: u8 = 2;
const TAG_U32: u8 = 3;

/// A cache key: a BLAKE3 digest over the length-prefixed parts of a request.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key([u8; 32]);

impl Key {
    /// Wraps raw digest bytes (e.g. a key read back from an admin request).
    pub const fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// The raw digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The full digest as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            push_hex(&mut s, b);
        }
        s
    }

    /// Picks a shard. Uses different digest bytes than `Hash` does, so the
    /// keys that land in one shard still spread over that shard's hash table.
    pub(crate) fn shard_index(&self, shards: usize) -> usize {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.0[8..16]);
        // `shards` is at least 1 (the store clamps it), and `max(1)` keeps
        // this total anyway.
        (u64::from_le_bytes(word) % (shards.max(1) as u64)) as usize
    }

    fn prefix_u64(&self) -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(word)
    }
}

/// Feeds only 8 bytes of the digest to the hasher: the digest is already
/// uniformly distributed, and hashing one `u64` instead of 32 bytes (plus a
/// length) keeps lookups cheap. The map's hasher is still randomly seeded,
/// so a client cannot grind queries into one hash bucket. Consistent with
/// `Eq`: equal keys have equal prefixes.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.prefix_u64());
    }
}

/// Short hex (first 8 bytes) keeps logs readable; 64 bits is plenty to tell
/// entries apart by eye.
impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(16);
        for b in &self.0[..8] {
            push_hex(&mut s, *b);
        }
        write!(f, "Key({s}…)")
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fn push_hex(s: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    s.push(HEX[(b >> 4) as usize] as char);
    s.push(HEX[(b & 0x0f) as usize] as char);
}

/// Builds a [`Key`] from a sequence of typed parts.
///
/// ```
/// use cache_core::KeyBuilder;
///
/// let a = KeyBuilder::new().part(b"ab").part(b"c").finish();
/// let b = KeyBuilder::new().part(b"a").part(b"bc").finish();
/// assert_ne!(a, b);
///
/// let null = KeyBuilder::new().opt_part(None).finish();
/// let empty = KeyBuilder::new().opt_part(Some(b"")).finish();
/// assert_ne!(null, empty);
/// ```
#[derive(Clone)]
pub struct KeyBuilder {
    /// The BLAKE3 key of keyed mode, when the builder was started with one.
    keyed: Option<[u8; 32]>,
    /// The encoded parts. Hashed in one call at `finish`: BLAKE3 costs per
    /// 64-byte block, and one `update` per part (three per byte string) cost
    /// more than the hashing itself for keys of a few hundred bytes.
    encoded: Vec<u8>,
}

impl KeyBuilder {
    /// An empty builder.
    pub fn new() -> KeyBuilder {
        let mut encoded = Vec::with_capacity(256);
        encoded.extend_from_slice(DOMAIN);
        KeyBuilder {
            keyed: None,
            encoded,
        }
    }

    /// A builder whose keys all depend on `prefix`, a 32-byte digest (the
    /// session context): it becomes the key of BLAKE3's keyed mode instead
    /// of being hashed again with every key. Keyed and unkeyed hashes are
    /// different functions, so no key built one way equals one built the
    /// other way, and different prefixes give unrelated keys.
    pub fn keyed(prefix: &[u8; 32]) -> KeyBuilder {
        KeyBuilder {
            keyed: Some(*prefix),
            // Keyed mode already sets these keys apart; no DOMAIN prefix.
            encoded: Vec::with_capacity(256),
        }
    }

    /// Appends a byte string: tag, length (LEB128), bytes.
    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.encoded.push(TAG_BYTES);
        let mut len = bytes.len() as u64;
        while len >= 0x80 {
            self.encoded.push((len as u8) | 0x80);
            len >>= 7;
        }
        self.encoded.push(len as u8);
        self.encoded.extend_from_slice(bytes);
        self
    }

    /// Appends a nullable byte string. `None` (SQL NULL) has its own tag, so
    /// it never collides with `Some(b"")` (an empty string).
    pub fn opt_part(&mut self, bytes: Option<&[u8]>) -> &mut Self {
        match bytes {
            Some(bytes) => self.part(bytes),
            None => {
                self.encoded.push(TAG_NULL);
                self
            }
        }
    }

    /// Appends an integer (format codes, counts, flags).
    pub fn u32_part(&mut self, value: u32) -> &mut Self {
        self.encoded.push(TAG_U32);
        self.encoded.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// The key for the parts appended so far. The builder can keep going,
    /// so a common prefix can be built once and cloned.
    pub fn finish(&self) -> Key {
        let hash = match &self.keyed {
            Some(key) => blake3::keyed_hash(key, &self.encoded),
            None => blake3::hash(&self.encoded),
        };
        Key(*hash.as_bytes())
    }
}

impl Default for KeyBuilder {
    fn default() -> Self {
        KeyBuilder::new()
    }
}

impl fmt::Debug for KeyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyBuilder").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(parts: &[&[u8]]) -> Key {
        let mut b = KeyBuilder::new();
        for p in parts {
            b.part(p);
        }
        b.finish()
    }

    #[test]
    fn keyed_builders_differ_from_unkeyed_and_by_prefix() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let keyed = |prefix: &[u8; 32]| KeyBuilder::keyed(prefix).part(b"q").finish();
        assert_eq!(keyed(&a), keyed(&a));
        assert_ne!(keyed(&a), keyed(&b));
        assert_ne!(keyed(&a), KeyBuilder::new().part(b"q").finish());
        assert_ne!(keyed(&a), KeyBuilder::new().part(&a).part(b"q").finish());
    }

    #[test]
    fn deterministic() {
        assert_eq!(key(&[b"select 1", b"x"]), key(&[b"select 1", b"x"]));
    }

    #[test]
    fn boundaries_matter() {
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
        assert_ne!(key(&[b"abc"]), key(&[b"ab", b"c"]));
        assert_ne!(key(&[b""]), key(&[]));
        assert_ne!(key(&[b"", b""]), key(&[b""]));
        // Multi-byte lengths: 127 fits one byte, 128 and 300 need two.
        let long = [b'a'; 301];
        for n in [127, 128, 300] {
            assert_ne!(key(&[&long[..n], b"a"]), key(&[&long[..n + 1]]));
            assert_ne!(key(&[&long[..n], b""]), key(&[&long[..n]]));
        }
    }

    #[test]
    fn null_is_not_empty() {
        let null = KeyBuilder::new().opt_part(None).finish();
        let empty = KeyBuilder::new().opt_part(Some(b"")).finish();
        let nothing = KeyBuilder::new().finish();
        assert_ne!(null, empty);
        assert_ne!(null, nothing);
        assert_eq!(empty, key(&[b""]));
    }

    #[test]
    fn integers_are_typed() {
        let int = KeyBuilder::new().u32_part(1).finish();
        let bytes = KeyBuilder::new().part(&1u32.to_le_bytes()).finish();
        assert_ne!(int, bytes);
        assert_ne!(
            KeyBuilder::new().u32_part(0).finish(),
            KeyBuilder::new().u32_part(1).finish()
        );
    }

    #[test]
    fn clone_extends_a_prefix() {
        let mut ctx = KeyBuilder::new();
        ctx.part(b"db").part(b"user");
        let a = ctx.clone().part(b"q1").finish();
        let b = ctx.clone().part(b"q1").finish();
        let c = ctx.clone().part(b"q2").finish();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, key(&[b"db", b"user", b"q1"]));
    }

    #[test]
    fn formatting() {
        let k = Key::from_bytes([0xab; 32]);
        assert_eq!(format!("{k:?}"), "Key(abababababababab…)");
        assert_eq!(k.to_hex().len(), 64);
        assert_eq!(k.to_string(), k.to_hex());
        assert_eq!(k.as_bytes(), &[0xab; 32]);
    }

    #[test]
    fn shard_index_in_range() {
        for n in [0usize, 1, 3, 16] {
            let k = key(&[b"x"]);
            assert!(k.shard_index(n) < n.max(1));
        }
    }
}
