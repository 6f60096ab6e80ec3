//! The example policy files shipped in examples/policies/ must stay valid.

use std::path::PathBuf;
use std::time::Duration;

use policies::{Policy, QualifiedName, RuleSource};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/policies")
        .join(name)
}

#[test]
fn every_example_parses() {
    let dir = example("");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/policies exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = Policy::load(&path) {
                panic!("{} does not parse:\n{e}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 2, "expected at least full.toml and minimal.toml");
}

#[test]
fn minimal_example() {
    let p = Policy::load(&example("minimal.toml")).unwrap();
    assert!(p.enabled());
    assert_eq!(p.max_memory(), 256 << 20);
    assert_eq!(p.default_ttl(), Duration::from_secs(60));
    assert!(!p.table("public", "audit_log").cache);
    assert!(p.table("public", "orders").cache);
}

#[test]
fn full_example_says_what_its_comments_say() {
    let p = Policy::load(&example("full.toml")).unwrap();
    let orders = p.table("public", "orders");
    assert_eq!(orders.ttl, Duration::from_secs(5));
    assert_eq!(orders.max_entry_size, 4 << 20);
    assert_eq!(
        orders.trigger_writes.as_deref(),
        Some(
            &[
                QualifiedName::new("public", "order_totals"),
                QualifiedName::new("public", "audit_log")
            ][..]
        )
    );
    assert!(!p.table("public", "audit_log").cache);
    assert_eq!(p.table("Sales", "Orders").ttl, Duration::from_secs(30));
    let live = p.table("analytics", "live_events");
    assert_eq!(
        (live.ttl, live.max_entry_size, live.source),
        (Duration::from_secs(2), 16 << 20, RuleSource::Exact)
    );
    let daily = p.table("analytics", "daily");
    assert_eq!(
        (daily.ttl, daily.source),
        (Duration::from_secs(600), RuleSource::Schema)
    );
    assert_eq!(
        p.query("SELECT * FROM users WHERE id = $1")
            .and_then(|q| q.ttl),
        Some(Duration::from_secs(1))
    );
    let dashboard = p.resolve(
        Some("select count(*) from public.audit_log"),
        [("public", "audit_log")],
    );
    assert!(dashboard.cache);
    assert_eq!(
        p.function("public", "bump_counter").unwrap().writes,
        vec![QualifiedName::new("public", "counters")]
    );
    assert!(p.function("public", "slugify").unwrap().cacheable);
}
