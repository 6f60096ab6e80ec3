//! pgbench through the proxy in its three query modes: every transaction is
//! processed, none fails, and the TPC-B invariants hold, as in a direct run.

mod common;

use common::{fresh_db, proxy, run_client, stderr, stdout};
use testkit::Cluster;

fn processed(report: &str) -> Option<&str> {
    report
        .lines()
        .find(|l| l.starts_with("number of transactions actually processed"))
}

/// sum(abalance) = sum(bbalance) = sum(tbalance), and the history length.
fn invariants(cluster: &Cluster, db: &str) -> (bool, i64) {
    let out = cluster
        .psql(
            db,
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches)
                AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(tbalance) FROM pgbench_tellers),
                    (SELECT count(*) FROM pgbench_history)",
        )
        .unwrap();
    let (ok, n) = out.split_once('|').unwrap();
    (ok == "t", n.parse().unwrap())
}

#[tokio::test]
async fn pgbench_simple_extended_and_prepared() {
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, "bench");
    let proxy = proxy(cluster).await;
    let addr = proxy.addr;
    let db2 = db.clone();
    tokio::task::spawn_blocking(move || {
        let init = run_client(cluster, "pgbench", addr, &["-i", "-s", "1", "-q", &db2]);
        assert!(init.status.success(), "pgbench -i: {}", stderr(&init));
        let mut history = 0;
        for (target, mode) in [
            (addr, "simple"),
            (addr, "extended"),
            (addr, "prepared"),
            (cluster.addr(), "prepared"),
        ] {
            let out = run_client(
                cluster,
                "pgbench",
                target,
                &["-n", "-c", "4", "-j", "2", "-t", "100", "-M", mode, &db2],
            );
            let report = stdout(&out);
            assert!(out.status.success(), "{mode}: {}{}", report, stderr(&out));
            assert_eq!(
                processed(&report),
                Some("number of transactions actually processed: 400/400"),
                "{mode}: {report}"
            );
            assert!(
                report.contains("number of failed transactions: 0"),
                "{report}"
            );
            history += 400;
            assert_eq!(invariants(cluster, &db2), (true, history), "after {mode}");
        }
        // Read-only mode too.
        let out = run_client(
            cluster,
            "pgbench",
            addr,
            &["-n", "-S", "-c", "2", "-t", "200", "-M", "prepared", &db2],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            processed(&stdout(&out)),
            Some("number of transactions actually processed: 400/400")
        );
    })
    .await
    .unwrap();
    proxy.shutdown().await.unwrap();
}
