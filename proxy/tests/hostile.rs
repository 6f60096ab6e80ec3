//! Hostile clients (issue 11): what an ordinary login, or a connection that
//! never logs in, can make the proxy hold, and what it can take from the
//! other sessions. Real proxy processes in front of a real server; memory
//! bounds are read from the proxy's resident set (VmRSS), not its counters.

mod common;

use common::binary::Binary;
use common::connect;
use common::http::request;
use testkit::Cluster;

/// A query whose fingerprint is as long as its text: a quoted identifier is
/// kept verbatim in a fingerprint (the server cuts it to 63 bytes).
fn long_shape(i: usize, bytes: usize) -> String {
    format!("SELECT 1 AS \"{i}{}\"", "q".repeat(bytes))
}

#[tokio::test]
async fn query_statistics_are_bounded_in_bytes() {
    let cluster = Cluster::shared();
    let proxy = Binary::start(cluster, true, &[]).await;
    let admin = proxy.admin.unwrap();
    let c = connect(cluster, proxy.addr, "postgres").await;
    for i in 0..8 {
        c.simple_query(&long_shape(i, 512 << 10)).await.unwrap();
    }
    let before = proxy.rss_kib();
    // 100 distinct 512 KiB shapes (below the size messages are streamed
    // at): 50 MiB if the statistics kept them.
    for i in 100..200 {
        c.simple_query(&long_shape(i, 512 << 10)).await.unwrap();
    }
    let growth_mib = proxy.rss_kib().saturating_sub(before) / 1024;
    assert!(
        growth_mib < 24,
        "100 distinct 512 KiB query shapes grew the proxy by {growth_mib} MiB"
    );
    let reply = request(admin, "GET", "/api/queries", None, None).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.len() < 512 << 10,
        "GET /api/queries answered {} bytes",
        reply.body.len()
    );
    let listed = reply.json();
    let shapes = listed["queries"].as_array().unwrap();
    assert!(shapes
        .iter()
        .filter_map(|q| q["fingerprint"].as_str())
        .any(|f| f.starts_with("select $1 as \"100qqq") && f.ends_with("bytes)")));
}
