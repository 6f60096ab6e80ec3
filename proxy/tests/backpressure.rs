//! A client that sends and does not read cannot make the proxy hold its
//! answers without bound, not even answers the proxy serves from its own
//! cache without the server.

mod common;

use std::time::Duration;

use common::binary::Binary;
use common::raw::{message, Raw};
use testkit::Cluster;

fn query(sql: &str) -> Vec<u8> {
    let mut body = sql.as_bytes().to_vec();
    body.push(0);
    message(b'Q', &body)
}

#[tokio::test]
async fn cache_hits_for_a_client_that_does_not_read_are_bounded() {
    let cluster = Cluster::shared();
    let proxy = Binary::start(cluster, false, &[]).await;
    let addr = proxy.addr;
    let user = cluster.superuser();
    let big = query("SELECT repeat('x', 500000)");

    let mut raw = Raw::login(addr, user).await;
    for _ in 0..2 {
        raw.send(&big).await;
        raw.read_until(b'Z').await;
    }
    let before = proxy.rss_kib() * 1024;

    // 4000 answers of 500 kB each would be 2 GB.
    let flood: Vec<u8> = big.repeat(4000);
    let _ = tokio::time::timeout(Duration::from_secs(3), raw.send(&flood)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = proxy.rss_kib() * 1024;
    assert!(
        during < before + (64 << 20),
        "RSS grew from {before} to {during} bytes for a client that does not read"
    );

    // Others are still served.
    let mut other = Raw::login(addr, user).await;
    other.send(&query("SELECT 1")).await;
    let answers = tokio::time::timeout(Duration::from_secs(5), other.read_until(b'Z'))
        .await
        .expect("another session is answered");
    assert!(answers.iter().any(|(tag, _)| *tag == b'D'));
    drop(raw);
}

#[tokio::test]
async fn requests_in_flight_for_a_client_that_does_not_read_are_bounded() {
    let cluster = Cluster::shared();
    let proxy = Binary::start(cluster, false, &[]).await;
    let addr = proxy.addr;
    let user = cluster.superuser();
    let mut raw = Raw::login(addr, user).await;
    let before = proxy.rss_kib() * 1024;
    // Syncs answered by the server, never read: the proxy stops reading
    // the client instead of queueing a cycle per Sync.
    let syncs = message(b'S', &[]).repeat(2_000_000);
    let _ = tokio::time::timeout(Duration::from_secs(3), raw.send(&syncs)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = proxy.rss_kib() * 1024;
    assert!(
        during < before + (64 << 20),
        "RSS grew from {before} to {during} bytes for pipelined Syncs"
    );
    drop(raw);
}
