//! The analysis cache: one shared, bounded LRU of analyses.
//!
//! Every call runs the tokenizer (cheap, linear). The full parse runs only on
//! a miss, and always on the original text, never on the placeholder shape.
//!
//! Two kinds of entry:
//! - by shape, keyed by (fingerprint, literal categories, time-literal flag,
//!   temp-mention flag), for analyses that hold for every text of that shape:
//!   reads, writes, DDL, transaction control, ... Texts differing only in
//!   literal values then share one analysis and one parse. The two flags are
//!   the only facts the analysis takes from literal values, so they are part
//!   of the key, as is whether each `$n` was a string, number or bit string
//!   (the grammar can tell those apart; explicit `$n` parameters are told
//!   from literals by the fingerprint's numbering). An analysis depending on
//!   anything else in a literal is not stored by shape;
//! - by exact text, for everything else: SET (the value is a literal),
//!   EXPLAIN (`ANALYZE 'off'`), texts whose literals mention "temp", lexical
//!   errors and anything Unknown.
//!
//! A lookup tries the shape first, then the text. Two texts with the same
//! fingerprint have the same tokens apart from literal values, so they have
//! the same statement kinds, hence the same "by shape or by text" decision;
//! a shape entry therefore never answers for a text that would have been
//! analyzed differently.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use super::analysis::{Analysis, Statement, StatementKind};
use super::classify::{self, classify};
use super::cursor::creates_temp;
use super::normalize::{self, Normalized};

/// Texts (and fingerprints) longer than this are analyzed but not cached, so
/// the cache's memory stays bounded by `capacity * MAX_CACHED_TEXT`.
pub const MAX_CACHED_TEXT: usize = 64 * 1024;

/// Texts longer than this are not analysed: they are one Unknown statement
/// with the error "too_large" (not cached, writes handled as unknown), and a
/// fingerprint of their beginning. Parsing is the one cost a client could
/// otherwise raise at will, on the threads every session shares.
pub const MAX_ANALYZED_TEXT: usize = 64 * 1024;
/// The [`Analysis::error`] of a text over [`MAX_ANALYZED_TEXT`] (also the
/// bypass reason it is reported under).
pub const TOO_LARGE: &str = "too_large";

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Shape {
        fingerprint: Arc<str>,
        literal_kinds: Box<[u8]>,
        time_literal: bool,
        mentions_temp: bool,
    },
    Text(Arc<str>),
}

/// Texts up to this long are also remembered verbatim, so a repeated text
/// skips even the tokenizer.
pub const MAX_INDEXED_TEXT: usize = 1024;
/// At most this many verbatim texts (so at most 4 MiB of them).
const TEXT_INDEX_CAPACITY: usize = 4096;

/// Bytes the analyses of `cache` may hold (texts, fingerprints, names), on
/// top of its count: texts up to `MAX_CACHED_TEXT` are cached, and any
/// client chooses them.
pub const MAX_CACHE_BYTES: usize = 16 << 20;

/// An LRU of analyses bounded in count and in (estimated) bytes.
struct Analyses {
    lru: LruCache<Key, Arc<Analysis>>,
    bytes: usize,
}

impl Analyses {
    fn get(&mut self, key: &Key) -> Option<&Arc<Analysis>> {
        self.lru.get(key)
    }

    fn put(&mut self, key: Key, analysis: Arc<Analysis>) {
        self.bytes += charge(&key, &analysis);
        if let Some((k, a)) = self.lru.push(key, analysis) {
            self.bytes = self.bytes.saturating_sub(charge(&k, &a));
        }
        while self.bytes > MAX_CACHE_BYTES {
            let Some((k, a)) = self.lru.pop_lru() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(charge(&k, &a));
        }
    }
}

/// What an entry holds, about: the analysis's fingerprint (shared with a
/// shape key) and names (no longer than the fingerprint), and the text of
/// a text key.
fn charge(key: &Key, analysis: &Analysis) -> usize {
    let key_bytes = match key {
        Key::Shape { literal_kinds, .. } => literal_kinds.len(),
        Key::Text(text) => text.len(),
    };
    key_bytes + 2 * analysis.fingerprint.len() + 256
}

/// Shared by all sessions (`Send + Sync`).
pub struct Analyzer {
    cache: Option<Mutex<Analyses>>,
    /// Exact text -> its analysis (shared with `cache`). An analysis is a
    /// function of the text alone, so this needs no invalidation.
    by_text: Option<Mutex<LruCache<Box<str>, Arc<Analysis>>>>,
    parses: AtomicU64,
}

impl Analyzer {
    /// An analyzer keeping at most `capacity` analyses (0: no caching).
    pub fn new(capacity: usize) -> Analyzer {
        Analyzer {
            cache: NonZeroUsize::new(capacity).map(|c| {
                Mutex::new(Analyses {
                    lru: LruCache::new(c),
                    bytes: 0,
                })
            }),
            by_text: NonZeroUsize::new(capacity.min(TEXT_INDEX_CAPACITY))
                .map(|c| Mutex::new(LruCache::new(c))),
            parses: AtomicU64::new(0),
        }
    }

    /// Analyze `text`. Cheapest for a text seen before (one lookup), cheap
    /// for a text of a known shape (tokenize, look up); parses only on a miss.
    pub fn analyze(&self, text: &str) -> Arc<Analysis> {
        if text.len() > MAX_ANALYZED_TEXT {
            return Arc::new(too_large(text));
        }
        let Some(by_text) = self
            .by_text
            .as_ref()
            .filter(|_| text.len() <= MAX_INDEXED_TEXT)
        else {
            return self.analyze_by_shape(text);
        };
        if let Some(hit) = by_text.lock().get(text) {
            return hit.clone();
        }
        let analysis = self.analyze_by_shape(text);
        by_text.lock().put(Box::from(text), analysis.clone());
        analysis
    }

    /// Tokenize, then look up by shape, then by text; parse on a miss.
    fn analyze_by_shape(&self, text: &str) -> Arc<Analysis> {
        let norm = normalize::normalize(text);
        let cache = self
            .cache
            .as_ref()
            .filter(|_| text.len() <= MAX_CACHED_TEXT && norm.fingerprint.len() <= MAX_CACHED_TEXT);
        let Some(cache) = cache else {
            return Arc::new(self.compute(text, &norm).0);
        };
        let fingerprint: Arc<str> = Arc::from(norm.fingerprint.as_str());
        let shape = Key::Shape {
            fingerprint: fingerprint.clone(),
            literal_kinds: norm.literal_kinds.clone().into_boxed_slice(),
            time_literal: norm.time_literal,
            mentions_temp: norm.literal_mentions_temp,
        };
        if let Some(hit) = cache.lock().get(&shape) {
            return hit.clone();
        }
        let by_text = Key::Text(Arc::from(text));
        if let Some(hit) = cache.lock().get(&by_text) {
            return hit.clone();
        }
        let (mut analysis, shareable) = self.compute(text, &norm);
        analysis.fingerprint = fingerprint;
        let analysis = Arc::new(analysis);
        let key = if shareable && !norm.literal_mentions_temp && !norm.secret {
            shape
        } else {
            by_text
        };
        cache.lock().put(key, analysis.clone());
        analysis
    }

    /// Number of cached analyses.
    pub fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.lock().lru.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Estimated bytes held by cached analyses (at most `MAX_CACHE_BYTES`).
    pub fn bytes(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.lock().bytes)
    }

    /// How many texts were analyzed in full (cache misses), for metrics.
    pub fn parse_count(&self) -> u64 {
        self.parses.load(Ordering::Relaxed)
    }

    /// The uncached analysis, and whether it may be shared by shape.
    fn compute(&self, text: &str, norm: &Normalized) -> (Analysis, bool) {
        self.parses.fetch_add(1, Ordering::Relaxed);
        analyze_uncached(text, norm)
    }
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("len", &self.len())
            .field("parses", &self.parse_count())
            .finish()
    }
}

/// How much of a text too large to analyse its fingerprint shows.
const TOO_LARGE_PREFIX: usize = 1024;

/// What the analysis of a text over [`MAX_ANALYZED_TEXT`] says: one Unknown
/// statement, error "too_large", and the fingerprint of its first
/// `TOO_LARGE_PREFIX` bytes with a marker. All of it linear in the text.
pub(crate) fn too_large(text: &str) -> Analysis {
    let mut end = TOO_LARGE_PREFIX.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = normalize::normalize(&text[..end]);
    let fingerprint = format!("{} ... (too large: {} bytes)", head.fingerprint, text.len());
    Analysis {
        fingerprint_id: normalize::fingerprint_id(&fingerprint),
        fingerprint: Arc::from(fingerprint),
        statements: vec![Statement {
            kind: StatementKind::Unknown,
            // Whatever it holds may create temporary objects; a mention is
            // all that can be checked without lexing it.
            creates_temp: super::lexer::contains_ci(text, "temp"),
        }],
        error: Some(TOO_LARGE.into()),
    }
}

/// Analyze without any cache.
pub(crate) fn analyze_uncached(text: &str, norm: &Normalized) -> (Analysis, bool) {
    let fingerprint: Arc<str> = Arc::from(norm.fingerprint.as_str());
    let fingerprint_id = normalize::fingerprint_id(&norm.fingerprint);
    let src = text;
    let toks = &norm.tokens;
    if norm.lex_error {
        // The server's lexer fails the whole text, so nothing in it runs; it is
        // still reported as Unknown, the safe reading of anything unclear.
        let creates_temp = creates_temp(src, toks, &StatementKind::Unknown);
        return (
            Analysis {
                fingerprint,
                fingerprint_id,
                statements: vec![Statement {
                    kind: StatementKind::Unknown,
                    creates_temp,
                }],
                error: Some("lexical error: unterminated literal, comment or identifier, or an invalid character".into()),
            },
            false,
        );
    }
    let mut statements = Vec::new();
    let mut error = None;
    let mut shareable = true;
    for range in normalize::split_statements(src, toks) {
        let seg = &toks[range];
        let mut c = classify(src, seg, 0);
        if norm.time_literal {
            classify::mark_time_literal(&mut c.kind);
        }
        let creates_temp = creates_temp(src, seg, &c.kind);
        shareable = shareable && c.shareable;
        if error.is_none() {
            error = c.error;
        }
        statements.push(Statement {
            kind: c.kind,
            creates_temp,
        });
    }
    (
        Analysis {
            fingerprint,
            fingerprint_id,
            statements,
            error,
        },
        shareable,
    )
}
