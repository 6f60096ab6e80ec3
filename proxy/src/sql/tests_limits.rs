//! The analyzer's cost is bounded by the text: texts over
//! [`MAX_ANALYZED_TEXT`] are not analysed, and below it the work is linear
//! in the number of names.

use std::time::{Duration, Instant};

use super::cache::MAX_CACHE_BYTES;
use super::{analyze, fingerprint, Analyzer, StatementKind, MAX_ANALYZED_TEXT, TOO_LARGE};

/// `SELECT 1 FROM s.t0, s.t1, ...` of at least `bytes` bytes.
fn many_tables(bytes: usize) -> String {
    let mut text = String::from("SELECT 1 FROM s.t0");
    let mut i = 1;
    while text.len() < bytes {
        text.push_str(&format!(", s.t{i}"));
        i += 1;
    }
    text
}

#[test]
fn a_text_over_the_limit_is_not_analysed() {
    let text = many_tables(512 << 10);
    let started = Instant::now();
    let analysis = Analyzer::new(100).analyze(&text);
    assert_eq!(analysis.error.as_deref(), Some(TOO_LARGE));
    assert!(matches!(
        analysis.statements.as_slice(),
        [s] if s.kind == StatementKind::Unknown
    ));
    assert!(
        analysis.fingerprint.len() <= 2048,
        "{}",
        analysis.fingerprint.len()
    );
    assert!(analysis
        .fingerprint
        .starts_with("select $1 from s.t0, s.t1"));
    assert_eq!(analyze(&text), *analysis);
    assert!(fingerprint(&text).0.len() <= 2048);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // A too-large text may hold anything: it counts as creating temporary
    // objects when it mentions them.
    let temp = format!(
        "CREATE TEMP TABLE x (a int); {}",
        many_tables(MAX_ANALYZED_TEXT)
    );
    assert!(analyze(&temp).creates_temp());
    assert!(!analyze(&text).creates_temp());
}

#[test]
fn a_text_under_the_limit_is_analysed_in_linear_time() {
    // Not a wall-clock bound (the machine may be busy): four times the text
    // must cost about four times as much, not sixteen. The best of three
    // runs of each size takes out most of the noise.
    let best = |text: &str| {
        (0..3)
            .map(|_| {
                let started = Instant::now();
                let analysis = analyze(text);
                let took = started.elapsed();
                assert!(analysis.single_cacheable_read().is_some());
                took
            })
            .min()
            .unwrap()
    };
    let large = many_tables(MAX_ANALYZED_TEXT - 4096);
    let small = many_tables((MAX_ANALYZED_TEXT - 4096) / 4);
    let read = analyze(&large);
    let relations = read
        .single_cacheable_read()
        .expect("a plain read")
        .relations
        .len();
    assert!(relations > 6000, "{relations}");
    let (small, large) = (best(&small), best(&large));
    assert!(
        large < small * 10,
        "4x the text took {:.1}x the time ({small:?} -> {large:?}): not linear",
        large.as_secs_f64() / small.as_secs_f64().max(1e-9)
    );
}

#[test]
fn the_analysis_cache_is_bounded_in_bytes() {
    let analyzer = Analyzer::new(10_000);
    for i in 0..400 {
        let text = format!("SELECT 1 AS \"{i}{}\"", "q".repeat(60_000));
        assert_eq!(analyzer.analyze(&text).statements.len(), 1);
    }
    assert!(analyzer.bytes() <= MAX_CACHE_BYTES, "{}", analyzer.bytes());
    assert!(analyzer.len() < 400, "older analyses were evicted");
    assert!(analyzer.len() > 100, "the budget holds many of them");
}
