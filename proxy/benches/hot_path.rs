//! Micro-benchmarks of the pieces a cache hit goes through, without a
//! database: framing client messages, normalizing and fingerprinting a query,
//! building a cache key, a store lookup, and an analysis-cache lookup.
//!
//! `cargo bench -p pgcache --bench hot_path` (add `-- --quick` for a fast
//! look). These are for spotting regressions by comparison with an earlier
//! run on the same machine; nothing asserts a timing.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cache_core::{Entry, Generations, KeyBuilder, Store, StoreConfig};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pgcache::sql::{self, Analyzer};
use pgcache::wire::bind::Bind;
use pgcache::wire::parse::Parse;
use pgcache::wire::{Framer, Piece, MAX_MESSAGE_LEN};

/// The hot-set statement of the benchmark harness, as pgbench sends it.
const HOT_SIMPLE: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = 42;";
const HOT_PREPARED: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;";
/// A larger read, for scale.
const REPORT_QUERY: &str = "SELECT c.name, o.id, sum(l.qty * l.price) AS total \
    FROM customers c JOIN orders o ON o.customer_id = c.id \
    JOIN order_lines l ON l.order_id = o.id \
    WHERE o.created_at >= '2024-01-01' AND c.region IN ('eu', 'us') AND o.status = 'paid' \
    GROUP BY c.name, o.id ORDER BY total DESC LIMIT 50";

fn message(out: &mut BytesMut, tag: u8, body: &[u8]) {
    pgcache::wire::encode::frame_into(out, tag, body);
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// What pgbench -M prepared sends per transaction: Bind, Describe portal,
/// Execute, Sync (the Parse went once, earlier).
fn prepared_batch() -> BytesMut {
    let mut out = BytesMut::new();
    let mut bind = Vec::new();
    cstr(&mut bind, ""); // portal
    cstr(&mut bind, "P_0"); // statement
    bind.extend_from_slice(&0u16.to_be_bytes()); // parameter formats
    bind.extend_from_slice(&1u16.to_be_bytes()); // one parameter
    bind.extend_from_slice(&2i32.to_be_bytes());
    bind.extend_from_slice(b"42");
    bind.extend_from_slice(&0u16.to_be_bytes()); // result formats
    message(&mut out, b'B', &bind);
    message(&mut out, b'D', b"P\0");
    let mut exec = Vec::new();
    cstr(&mut exec, "");
    exec.extend_from_slice(&0u32.to_be_bytes());
    message(&mut out, b'E', &exec);
    message(&mut out, b'S', &[]);
    out
}

fn parse_message(name: &str, query: &str) -> BytesMut {
    let mut body = Vec::new();
    cstr(&mut body, name);
    cstr(&mut body, query);
    body.extend_from_slice(&0u16.to_be_bytes());
    let mut out = BytesMut::new();
    message(&mut out, b'P', &body);
    out
}

fn simple_query(text: &str) -> BytesMut {
    let mut body = Vec::new();
    cstr(&mut body, text);
    let mut out = BytesMut::new();
    message(&mut out, b'Q', &body);
    out
}

/// A server response as the store keeps it: RowDescription, one DataRow,
/// CommandComplete.
fn response_payload() -> Bytes {
    let mut out = BytesMut::new();
    let mut rd = Vec::new();
    rd.extend_from_slice(&1u16.to_be_bytes());
    cstr(&mut rd, "abalance");
    rd.extend_from_slice(&[
        0, 0, 0x40, 0x12, 0, 3, 0, 0, 0, 23, 0, 4, 0xff, 0xff, 0xff, 0xff, 0, 0,
    ]);
    message(&mut out, b'T', &rd);
    message(&mut out, b'D', &[0, 1, 0, 0, 0, 1, b'0']);
    message(&mut out, b'C', b"SELECT 1\0");
    out.freeze()
}

fn framing(c: &mut Criterion) {
    let mut g = c.benchmark_group("framing");
    let batch = prepared_batch();
    g.throughput(Throughput::Elements(4));
    g.bench_function("prepared batch (Bind Describe Execute Sync)", |b| {
        let mut framer = Framer::new(1 << 20, MAX_MESSAGE_LEN);
        b.iter_batched_ref(
            || batch.clone(),
            |buf| {
                let mut n = 0;
                while let Some(piece) = framer.next(buf).expect("valid stream") {
                    if let Piece::Message { tag, bytes } = piece {
                        n += usize::from(tag) + bytes.len();
                    }
                }
                black_box(n)
            },
            BatchSize::SmallInput,
        )
    });
    let query = simple_query(HOT_SIMPLE);
    g.throughput(Throughput::Elements(1));
    g.bench_function("simple Query", |b| {
        let mut framer = Framer::new(1 << 20, MAX_MESSAGE_LEN);
        b.iter_batched_ref(
            || query.clone(),
            |buf| black_box(framer.next(buf).expect("valid stream")),
            BatchSize::SmallInput,
        )
    });
    let parse = parse_message("P_0", HOT_PREPARED);
    let bind = {
        let batch = prepared_batch();
        let len = u32::from_be_bytes([batch[1], batch[2], batch[3], batch[4]]) as usize;
        batch[..1 + len].to_vec()
    };
    g.bench_function("decode Parse + Bind", |b| {
        b.iter(|| {
            let p = Parse::decode(black_box(&parse)).expect("valid Parse");
            let bd = Bind::decode(black_box(&bind)).expect("valid Bind");
            black_box((p.query.len(), bd.arguments.len()))
        })
    });
    g.finish();
}

fn normalize_and_hash(c: &mut Criterion) {
    let mut g = c.benchmark_group("normalize+hash");
    for (name, text) in [
        ("hot-set query", HOT_SIMPLE),
        ("report query", REPORT_QUERY),
    ] {
        g.bench_function(format!("fingerprint, {name}"), |b| {
            b.iter(|| black_box(sql::fingerprint(black_box(text))))
        });
    }
    let digest = [7u8; 32];
    g.bench_function("cache key, simple (digest, text)", |b| {
        b.iter(|| {
            let mut key = KeyBuilder::keyed(black_box(&digest));
            key.part(b"Q").part(black_box(HOT_SIMPLE).as_bytes());
            black_box(key.finish())
        })
    });
    g.bench_function(
        "cache key, prepared (digest, text, types, arguments)",
        |b| {
            b.iter(|| {
                let mut key = KeyBuilder::keyed(black_box(&digest));
                key.part(b"E")
                    .part(black_box(HOT_PREPARED).as_bytes())
                    .part(&[0, 0])
                    .part(black_box(&[0, 0, 0, 1, 0, 0, 0, 2, b'4', b'2', 0, 0][..]))
                    .u32_part(1);
                black_box(key.finish())
            })
        },
    );
    g.finish();
}

fn store_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("store");
    let gens = Generations::new();
    let store = Store::new(StoreConfig::default());
    let payload = response_payload();
    let rel: u64 = 16_384;
    let keys: Vec<_> = (0..10_000u32)
        .map(|i| {
            let mut k = KeyBuilder::new();
            k.part(b"bench").u32_part(i);
            k.finish()
        })
        .collect();
    for k in &keys {
        let entry = Entry::new(
            payload.clone(),
            gens.snapshot(&[rel]),
            Instant::now(),
            Duration::from_secs(3600),
            1,
        );
        store.insert(*k, entry, &gens);
    }
    let mut i = 0usize;
    g.bench_function("get, hit (10k entries)", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(store.get(&keys[i], &gens, Instant::now()).is_hit())
        })
    });
    let absent = {
        let mut k = KeyBuilder::new();
        k.part(b"absent");
        k.finish()
    };
    g.bench_function("get, miss", |b| {
        b.iter(|| {
            black_box(
                store
                    .get(black_box(&absent), &gens, Instant::now())
                    .is_hit(),
            )
        })
    });
    g.bench_function("generations snapshot (1 relation)", |b| {
        b.iter(|| black_box(gens.snapshot(black_box(&[rel]))))
    });
    g.finish();
}

fn analysis_cache(c: &mut Criterion) {
    let mut g = c.benchmark_group("analysis");
    let analyzer = Arc::new(Analyzer::new(4096));
    for text in [HOT_SIMPLE, HOT_PREPARED, REPORT_QUERY] {
        analyzer.analyze(text);
    }
    // 20,000 texts are more than the exact-text index keeps, so each one is
    // new to it: tokenizing, the shape lookup and the index insert. 100 texts
    // stay in the index: one lookup.
    for (name, count) in [
        (
            "cached by shape, hot-set query with a literal not seen yet",
            20_000,
        ),
        ("cached, hot-set query (one of 100 texts seen before)", 100),
    ] {
        let texts: Vec<String> = (0..count)
            .map(|aid| format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid};"))
            .collect();
        g.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % texts.len();
                let a = analyzer.analyze(&texts[i]);
                black_box(a.single_cacheable_read().is_some())
            })
        });
    }
    g.bench_function("cached, prepared statement text", |b| {
        b.iter(|| black_box(analyzer.analyze(black_box(HOT_PREPARED))))
    });
    g.bench_function("cached, report query", |b| {
        b.iter(|| black_box(analyzer.analyze(black_box(REPORT_QUERY))))
    });
    g.bench_function("uncached (full parse), hot-set query", |b| {
        b.iter(|| black_box(sql::analyze(black_box(HOT_SIMPLE))))
    });
    g.bench_function("uncached (full parse), report query", |b| {
        b.iter(|| black_box(sql::analyze(black_box(REPORT_QUERY))))
    });
    g.finish();
}

criterion_group!(
    benches,
    framing,
    normalize_and_hash,
    store_lookup,
    analysis_cache
);
criterion_main!(benches);
