//! Faults while clients run traffic: the server restarts, the proxy is asked to
//! stop, the policy file disappears. This file starts its own cluster, since it
//! restarts it.

mod common;

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{connect, proxy_with};
use testkit::{Cluster, ClusterOptions};
use tokio_postgres::SimpleQueryMessage;

/// These tests restart the cluster or stop proxies: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start(ClusterOptions::default()).expect("a cluster of our own"))
}

async fn value(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<String, tokio_postgres::Error> {
    let messages = client.simple_query(sql).await?;
    Ok(messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
            _ => None,
        })
        .unwrap_or_default())
}

#[tokio::test]
async fn server_restart_fails_in_flight_queries_and_forgets_the_cache() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster();
    cluster.psql("postgres", "DROP TABLE IF EXISTS kv; CREATE TABLE kv (k int, v text); INSERT INTO kv VALUES (1, 'before');").unwrap();
    let proxy = proxy_with(cluster, |_| {}).await;
    let c = connect(cluster, proxy.addr, "postgres").await;
    let q = "SELECT v FROM kv WHERE k = 1";
    assert_eq!(value(&c, q).await.unwrap(), "before");
    assert_eq!(value(&c, q).await.unwrap(), "before");
    assert!(proxy.shared.stats.queries("hit") >= 1);

    // A query in flight when the server goes down fails with a server-style error.
    let slow = connect(cluster, proxy.addr, "postgres").await;
    let in_flight = tokio::spawn(async move { slow.simple_query("SELECT pg_sleep(30)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::spawn_blocking(move || cluster.restart().unwrap())
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("no hang")
        .unwrap()
        .unwrap_err();
    let code = err.code().map(|c| c.code().to_string()).unwrap_or_default();
    assert!(
        code == "57P01" || code.starts_with("08") || err.is_closed(),
        "in-flight query: {err}"
    );

    // After the restart a write straight to the server is not hidden by an
    // entry cached before it: upstream loss invalidated everything.
    cluster
        .psql("postgres", "UPDATE kv SET v = 'after' WHERE k = 1")
        .unwrap();
    let fresh = connect(cluster, proxy.addr, "postgres").await;
    assert_eq!(value(&fresh, q).await.unwrap(), "after");
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn deleted_or_truncated_policy_keeps_the_old_one() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster();
    let dir = std::env::temp_dir().join(format!("pgcache-faults-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "[defaults]\nttl = \"42s\"\n").unwrap();
    let path = policy.clone();
    let proxy = proxy_with(cluster, move |c| c.policy = Some(path)).await;
    let engine = &proxy.shared.engine;
    std::fs::write(&policy, "[defaults]\nttl = \"4").unwrap();
    assert!(pgcache::maintenance::reload_policy(&proxy.shared, "test").is_err());
    std::fs::remove_file(&policy).unwrap();
    assert!(pgcache::maintenance::reload_policy(&proxy.shared, "test").is_err());
    assert_eq!(engine.policy.load().default_ttl(), Duration::from_secs(42));
    assert!(proxy.shared.stats.policy_reloads("error") >= 2);
    let _ = std::fs::remove_dir_all(&dir);
    proxy.shutdown().await.unwrap();
}

/// The pgcache binary in front of `cluster`, with `extra` flags.
fn start_binary(cluster: &Cluster, extra: &[&str]) -> (std::process::Child, std::net::SocketAddr) {
    let port = testkit::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_pgcache"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--upstream",
            &cluster.url(
                cluster.superuser(),
                Some(cluster.superuser_password()),
                "postgres",
            ),
        ])
        .args(["--shutdown-timeout", "10s"])
        .args(["--change-feed", "off"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, format!("127.0.0.1:{port}").parse().unwrap())
}

async fn connect_retrying(cluster: &Cluster, addr: std::net::SocketAddr) -> tokio_postgres::Client {
    for _ in 0..100 {
        if let Ok((client, conn)) = common::config_for(cluster, addr, "postgres")
            .connect(tokio_postgres::NoTls)
            .await
        {
            tokio::spawn(conn);
            return client;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("pgcache at {addr} did not come up");
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test]
async fn sigterm_lets_open_transactions_finish_and_closes_idle_sessions() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster();
    cluster
        .psql(
            "postgres",
            "CREATE TABLE IF NOT EXISTS shutdown_log (n int)",
        )
        .unwrap();
    let (mut child, addr) = start_binary(cluster, &[]);
    let idle = connect_retrying(cluster, addr).await;
    let busy = connect_retrying(cluster, addr).await;
    busy.batch_execute("BEGIN; INSERT INTO shutdown_log VALUES (1)")
        .await
        .unwrap();
    signal(&child, "-TERM");
    // The idle session is told and closed (polling: the machine may be busy).
    let mut closed = None;
    for _ in 0..100 {
        match idle.simple_query("SELECT 1").await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(err) => {
                closed = Some(err);
                break;
            }
        }
    }
    let err = closed.expect("the idle session was closed");
    assert!(
        err.code() == Some(&tokio_postgres::error::SqlState::ADMIN_SHUTDOWN) || err.is_closed(),
        "{err}"
    );
    // No new clients.
    assert!(common::config_for(cluster, addr, "postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .is_err());
    // The open transaction finishes.
    busy.batch_execute("INSERT INTO shutdown_log VALUES (2); COMMIT")
        .await
        .unwrap();
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "exited once the last session was idle"
    );
    assert_eq!(
        cluster
            .psql("postgres", "SELECT count(*) FROM shutdown_log")
            .unwrap(),
        "2"
    );
}

#[tokio::test]
async fn sigint_stops_at_once() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster();
    let (mut child, addr) = start_binary(cluster, &[]);
    let busy = connect_retrying(cluster, addr).await;
    busy.batch_execute("BEGIN").await.unwrap();
    let started = Instant::now();
    signal(&child, "-INT");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// An operator who sends SIGTERM (or SIGINT) again during the drain wants it
/// over: the open transaction is not waited for.
#[tokio::test]
async fn a_second_stop_signal_during_the_drain_stops_at_once() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster();
    for (first, second) in [("-TERM", "-TERM"), ("-TERM", "-INT")] {
        let (mut child, addr) = start_binary(cluster, &[]);
        let busy = connect_retrying(cluster, addr).await;
        busy.batch_execute("BEGIN").await.unwrap();
        signal(&child, first);
        // The drain has begun once new clients are refused.
        let mut draining = false;
        for _ in 0..100 {
            if common::config_for(cluster, addr, "postgres")
                .connect(tokio_postgres::NoTls)
                .await
                .is_err()
            {
                draining = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(draining, "{first}: still accepting clients");
        assert!(
            child.try_wait().unwrap().is_none(),
            "{first}: the open transaction is given --shutdown-timeout (10s)"
        );
        let started = Instant::now();
        signal(&child, second);
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        assert!(status.success(), "{first} {second}: {status:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{first} {second}: took {:?}",
            started.elapsed()
        );
        assert!(busy.simple_query("SELECT 1").await.is_err());
    }
}

/// SIGHUP reloads the policy even when the file watch cannot see the edit
/// (same length, modification time put back).
#[tokio::test]
async fn sighup_reloads_the_policy() {
    let _serial = SERIAL.lock().await;
    let cluster = cluster();
    let dir = std::env::temp_dir().join(format!("pgcache-sighup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    let before = "[cache]\nenabled = true \n";
    let after = "[cache]\nenabled = false\n";
    assert_eq!(before.len(), after.len());
    std::fs::write(&policy, before).unwrap();
    let admin = testkit::free_port();
    let (mut child, addr) = start_binary(
        cluster,
        &[
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
            "--policy",
            policy.to_str().unwrap(),
        ],
    );
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    let client = connect_retrying(cluster, addr).await;
    let metric = |series: &'static str| async move {
        let page = common::http::request(admin, "GET", "/metrics", None, None).await;
        common::http::sample(&page.body, series).unwrap_or(0.0)
    };
    let reloads = r#"pgcache_policy_reloads_total{outcome="ok"}"#;
    let disabled = r#"pgcache_bypass_total{reason="disabled"}"#;
    value(&client, "SELECT 1").await.unwrap();
    assert_eq!(metric(disabled).await, 0.0);

    // Rewrite the file so that neither its length nor its time changes.
    let mtime = std::fs::metadata(&policy).unwrap().modified().unwrap();
    std::fs::write(&policy, after).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&policy)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(metric(reloads).await, 0.0, "the file watch did not notice");

    signal(&child, "-HUP");
    let mut reloaded = false;
    for _ in 0..100 {
        if metric(reloads).await >= 1.0 {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "SIGHUP reloaded the policy");
    value(&client, "SELECT 1").await.unwrap();
    assert!(metric(disabled).await >= 1.0, "the new policy is in force");

    signal(&child, "-INT");
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    let _ = std::fs::remove_dir_all(&dir);
}
