//! Results of hundreds of megabytes stream through with bounded proxy memory.
//! Alone in its file: it reads the process's peak memory, which other tests
//! running in parallel would disturb.

mod common;

use common::{connect, proxy};
use futures_util::StreamExt;
use testkit::Cluster;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn hundreds_of_megabytes_stream_with_bounded_memory() {
    let cluster = Cluster::shared();
    let proxy = proxy(cluster).await;
    let client = connect(cluster, proxy.addr, "postgres").await;
    let before = peak_rss_kib();

    // 256 MiB of rows, consumed as a stream: neither the client nor the proxy
    // may hold it.
    let stream = client
        .copy_out("COPY (SELECT repeat('x', 1023) FROM generate_series(1, 262144)) TO STDOUT")
        .await
        .unwrap();
    futures_util::pin_mut!(stream);
    let mut bytes = 0usize;
    while let Some(chunk) = stream.next().await {
        bytes += chunk.unwrap().len();
    }
    assert_eq!(bytes, 256 << 20);
    let growth_mib = (peak_rss_kib() - before) / 1024;
    assert!(
        growth_mib < 64,
        "peak memory grew by {growth_mib} MiB while 256 MiB streamed through"
    );

    // One 64 MiB value: a single DataRow far above the proxy's inspection limit,
    // relayed in parts.
    let row = client
        .query_one("SELECT repeat('y', 64 * 1024 * 1024)", &[])
        .await
        .unwrap();
    let value: &str = row.get(0);
    assert_eq!(value.len(), 64 << 20);
    assert!(value.bytes().all(|b| b == b'y'));
    proxy.shutdown().await.unwrap();
}
