//! The cache's byte budget holds under a flood of distinct large results,
//! measured from the process's resident memory, not from the proxy's own
//! counter. Alone in its file: it reads the process's memory.

mod common;

use common::{connect, fresh_db, proxy_with};
use testkit::Cluster;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_flood_of_distinct_results_stays_within_the_budget() {
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, "cache_flood");
    let dir = std::env::temp_dir().join(format!("pgcache-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "[cache]\nmax_memory = \"8MiB\"\n[defaults]\nmax_entry_size = \"256KiB\"\n",
    )
    .unwrap();
    let path = policy.clone();
    let proxy = proxy_with(cluster, move |c| c.policy = Some(path)).await;
    let c = connect(cluster, proxy.addr, &db).await;
    c.batch_execute("CREATE TABLE blobs AS SELECT 1 AS id")
        .await
        .unwrap();
    // Warm up allocator and connections before the baseline.
    for i in 0..50 {
        c.simple_query(&format!("SELECT repeat('w', 100000) || {i} FROM blobs"))
            .await
            .unwrap();
    }
    let before = rss_kib();
    // 2000 distinct results of ~100 KB: 200 MB offered to an 8 MiB cache.
    for i in 0..2000 {
        c.simple_query(&format!("SELECT repeat('x', 100000) || {i} FROM blobs"))
            .await
            .unwrap();
    }
    let engine = &proxy.shared.engine;
    assert!(engine.store.bytes() <= 8 << 20);
    assert!(
        engine.stats.snapshot().evictions > 1000,
        "the flood evicted"
    );
    let growth_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(
        growth_mib < 48,
        "resident memory grew by {growth_mib} MiB for an 8 MiB budget"
    );
    let _ = std::fs::remove_dir_all(&dir);
    proxy.shutdown().await.unwrap();
}
