//! A real Prometheus scrapes a proxy under traffic, and every PromQL expression
//! of every dashboard panel and alert rule returns at least one series.
//! The proxy runs with `--change-feed required`, so that the change feed's
//! series exist too: its first reads are bypassed (`feed_down`) until the
//! feed streams, writes made straight on the server come through the feed,
//! and one terminated walsender makes a restart.

mod common;

use std::time::{Duration, Instant};

use common::feed::terminate_walsender;
use common::promql::{alerts_path, live_check_expressions, start_prometheus};
use common::{connect, fresh_db, proxy_with};
use pgcache::feed::ChangeFeedMode;
use testkit::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_alert_expression_returns_series() {
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, "prom_live");
    cluster
        .psql(&db, "CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT i, repeat('x', 500) FROM generate_series(1, 200) i;")
        .unwrap();
    let dir = std::env::temp_dir().join(format!("pgcache-prom-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "[cache]\nmax_memory = \"64KiB\"\n").unwrap();
    let path = policy.clone();
    let proxy = proxy_with(cluster, move |c| {
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        c.policy = Some(path);
        c.change_feed = ChangeFeedMode::Required;
    })
    .await;
    let admin = proxy.admin_addr.unwrap();

    // Traffic for as long as Prometheus needs: hits, misses, bypasses,
    // invalidations, evictions, a policy reload, one refused and one failed
    // upstream... the expressions only need series to exist.
    let client = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    let traffic = tokio::spawn(async move {
        let mut i = 0u32;
        loop {
            let id = i % 200 + 1;
            let _ = client
                .simple_query(&format!("SELECT v FROM items WHERE id = {id}"))
                .await;
            let _ = client
                .simple_query(&format!("SELECT v FROM items WHERE id = {}", id % 5 + 1))
                .await;
            if i.is_multiple_of(10) {
                let _ = client
                    .simple_query(&format!("UPDATE items SET v = v WHERE id = {id}"))
                    .await;
            }
            if i.is_multiple_of(25) {
                let _ = direct
                    .simple_query(&format!("UPDATE items SET v = v WHERE id = {}", id % 5 + 1))
                    .await;
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    std::fs::write(
        &policy,
        "[cache]\nmax_memory = \"64KiB\"\n[defaults]\nttl = \"30s\"\n",
    )
    .unwrap();

    // One restart of the feed, so that its restart series exist.
    let up = proxy.shared.stats.feed.up.with_label_values(&[&db]);
    let restarts = || {
        proxy
            .shared
            .stats
            .feed
            .restarts
            .with_label_values(&[&db, "server"])
            .get()
    };
    let admin_client = connect(cluster, cluster.addr(), "postgres").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while up.get() != 1 {
        assert!(Instant::now() < deadline, "the feed of {db} never streamed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let terminated = terminate_walsender(&admin_client, &db).await;
    assert_eq!(terminated, "1", "one walsender to terminate");
    while restarts() == 0 {
        assert!(
            Instant::now() < deadline,
            "the feed's restart was not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let prometheus =
        tokio::task::spawn_blocking(move || start_prometheus(&admin.to_string(), &alerts_path()))
            .await
            .unwrap();
    let expressions = live_check_expressions();
    assert!(
        expressions.len() >= 20,
        "found {} expressions",
        expressions.len()
    );
    let failures = tokio::task::spawn_blocking(move || {
        let mut failures = Vec::new();
        for (place, expr) in &expressions {
            match prometheus.query_until(expr, 1, Duration::from_secs(30)) {
                Ok(n) if n >= 1 => {}
                Ok(n) => failures.push(format!("{place}: {n} series for {expr}")),
                Err(e) => failures.push(format!("{place}: {e} for {expr}")),
            }
        }
        failures
    })
    .await
    .unwrap();
    traffic.abort();
    assert!(
        failures.is_empty(),
        "expressions without series:\n{}",
        failures.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
    proxy.shutdown().await.unwrap();
}
