//! Hostile and broken clients: each gets a PostgreSQL error where the protocol
//! allows one, loses its connection, and the proxy goes on serving everyone else.

mod common;

use std::time::Duration;

use common::raw::{error_fields, message, startup_packet, Raw};
use common::{connect, proxy, proxy_with};
use testkit::Cluster;

/// The proxy still serves a normal client.
async fn still_serves(cluster: &Cluster, addr: std::net::SocketAddr) {
    let client = connect(cluster, addr, "postgres").await;
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn invalid_startup_lengths_get_protocol_violation() {
    let cluster = Cluster::shared();
    let proxy = proxy(cluster).await;
    for len in [0u32, 3, 7, 10_001, u32::MAX] {
        let mut raw = Raw::connect(proxy.addr).await;
        raw.send(&len.to_be_bytes()).await;
        raw.send(&[0; 16]).await;
        let (tag, body) = raw.read_message().await.expect("an error message");
        assert_eq!(tag, b'E');
        let (code, message) = error_fields(&body);
        assert_eq!(code, "08P01", "length {len}: {message}");
        assert!(message.contains("invalid length of startup packet"));
        assert!(raw.closed_within(Duration::from_secs(5)).await);
    }
    still_serves(cluster, proxy.addr).await;
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_protocol_version_is_refused() {
    let cluster = Cluster::shared();
    let proxy = proxy(cluster).await;
    for (major, minor) in [(2, 0), (4, 0), (1234, 1)] {
        let mut raw = Raw::connect(proxy.addr).await;
        raw.send(&startup_packet(major, minor, &[("user", "postgres")]))
            .await;
        let (tag, body) = raw.read_message().await.expect("an error message");
        assert_eq!(tag, b'E');
        let (code, message) = error_fields(&body);
        assert_eq!(code, "0A000");
        assert!(message.contains(&format!("unsupported frontend protocol {major}.{minor}")));
        assert!(raw.closed_within(Duration::from_secs(5)).await);
    }
    still_serves(cluster, proxy.addr).await;
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn newer_minor_version_is_negotiated_by_the_server() {
    let cluster = Cluster::shared();
    let proxy = proxy(cluster).await;
    let mut raw = Raw::connect(proxy.addr).await;
    raw.send(&startup_packet(
        3,
        9,
        &[("user", "postgres"), ("_pq_.made_up_option", "1")],
    ))
    .await;
    let messages = raw.read_until(b'Z').await;
    // The server's NegotiateProtocolVersion ('v') passes through untouched.
    let (_, body) = messages.iter().find(|m| m.0 == b'v').expect("'v' relayed");
    assert_eq!(&body[..4], &[0, 3, 0, 0], "server supports minor 0");
    assert!(String::from_utf8_lossy(body).contains("_pq_.made_up_option"));
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn silent_and_half_sent_startups_time_out() {
    let cluster = Cluster::shared();
    let proxy = proxy_with(cluster, |c| c.startup_timeout = Duration::from_millis(300)).await;
    let mut silent = Raw::connect(proxy.addr).await;
    let mut half = Raw::connect(proxy.addr).await;
    half.send(&startup_packet(3, 0, &[("user", "postgres")])[..10])
        .await;
    assert!(silent.closed_within(Duration::from_secs(5)).await);
    assert!(half.closed_within(Duration::from_secs(5)).await);
    assert_eq!(proxy.shared.stats.limit_hits("startup_timeout"), 2);
    still_serves(cluster, proxy.addr).await;
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn ssl_and_gssenc_requests_are_declined() {
    let cluster = Cluster::shared();
    let proxy = proxy(cluster).await;
    let mut raw = Raw::connect(proxy.addr).await;
    let gss = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];
    let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    for request in [gss, ssl] {
        raw.send(&request).await;
        let mut answer = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(&mut raw.stream, &mut answer)
            .await
            .unwrap();
        assert_eq!(&answer, b"N");
    }
    // After both were declined, a plain startup proceeds.
    raw.send(&startup_packet(3, 0, &[("user", "postgres")]))
        .await;
    raw.read_until(b'Z').await;

    // Asking twice is a protocol violation.
    let mut twice = Raw::connect(proxy.addr).await;
    twice.send(&ssl).await;
    let mut answer = [0u8; 1];
    tokio::io::AsyncReadExt::read_exact(&mut twice.stream, &mut answer)
        .await
        .unwrap();
    twice.send(&ssl).await;
    let (tag, body) = twice.read_message().await.unwrap();
    assert_eq!((tag, error_fields(&body).0.as_str()), (b'E', "08P01"));
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_messages_after_login_close_only_that_connection() {
    let cluster = Cluster::shared();
    let proxy = proxy(cluster).await;
    let bystander = connect(cluster, proxy.addr, "postgres").await;
    // A length word smaller than itself.
    let mut raw = Raw::login(proxy.addr, "postgres").await;
    raw.send(&[b'Q', 0, 0, 0, 2]).await;
    let (tag, body) = raw.read_message().await.expect("an error");
    assert_eq!(tag, b'E');
    let (code, text) = error_fields(&body);
    assert_eq!(code, "08P01");
    assert!(text.contains("invalid message length"), "{text}");
    assert!(raw.closed_within(Duration::from_secs(5)).await);

    // A message larger than the limit.
    let small = proxy_with(cluster, |c| c.max_message_size = 1000).await;
    let mut raw = Raw::login(small.addr, "postgres").await;
    raw.send(&message(b'Q', &vec![b'x'; 5000])).await;
    let (tag, body) = raw.read_message().await.expect("an error");
    assert_eq!(tag, b'E');
    assert_eq!(error_fields(&body).0, "08P01");
    assert!(raw.closed_within(Duration::from_secs(5)).await);
    for _ in 0..50 {
        if small.shared.stats.limit_hits("max_message_size") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(small.shared.stats.limit_hits("max_message_size"), 1);

    // Garbage the server itself rejects: an unknown message type is forwarded
    // and the server's own error comes back.
    let mut raw = Raw::login(proxy.addr, "postgres").await;
    raw.send(&message(b'?', b"hello")).await;
    let (tag, body) = raw.read_message().await.expect("the server's error");
    assert_eq!(tag, b'E');
    assert_eq!(error_fields(&body).0, "08P01");

    // A client vanishing in the middle of a message.
    let mut raw = Raw::login(proxy.addr, "postgres").await;
    raw.send(&message(b'Q', b"SELECT 1\0")[..7]).await;
    drop(raw);

    let one: i32 = bystander.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    still_serves(cluster, proxy.addr).await;
    small.shutdown().await.unwrap();
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn unreachable_upstream_gives_a_class_08_error_naming_it() {
    let cluster = Cluster::shared();
    let dead_port = testkit::free_port();
    let proxy = proxy_with(cluster, |c| {
        c.upstream.port = dead_port;
        c.connect_timeout = Duration::from_secs(2);
    })
    .await;
    let err = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(proxy.addr.port())
        .user("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .err()
        .expect("connection fails");
    let db = err.as_db_error().expect("a server-style error");
    assert!(db.code().code().starts_with("08"), "{db:?}");
    assert!(
        db.message().contains(&format!("127.0.0.1:{dead_port}")),
        "{}",
        db.message()
    );
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn too_many_clients_are_refused_with_53300() {
    let cluster = Cluster::shared();
    let proxy = proxy_with(cluster, |c| c.max_client_connections = 2).await;
    let a = connect(cluster, proxy.addr, "postgres").await;
    let b = connect(cluster, proxy.addr, "postgres").await;
    let err = common::config_for(cluster, proxy.addr, "postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .err()
        .expect("third connection refused");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS)
    );
    assert_eq!(proxy.shared.stats.limit_hits("max_client_connections"), 1);
    drop(a);
    // The slot frees once the first client's session has ended.
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok((c, conn)) = common::config_for(cluster, proxy.addr, "postgres")
            .connect(tokio_postgres::NoTls)
            .await
        {
            tokio::spawn(conn);
            ok = c.query_one("SELECT 1", &[]).await.is_ok();
            break;
        }
    }
    assert!(ok, "a slot was freed");
    drop(b);
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn clients_beyond_the_upstream_limit_wait_then_get_53300() {
    let cluster = Cluster::shared();
    let proxy = proxy_with(cluster, |c| {
        c.max_upstream_connections = Some(1);
        c.connect_timeout = Duration::from_secs(2);
    })
    .await;
    let login = || {
        let mut config = common::config_for(cluster, proxy.addr, "postgres");
        config.application_name("upstream-limit");
        async move { config.connect(tokio_postgres::NoTls).await }
    };
    let (a, conn) = login().await.expect("first client");
    tokio::spawn(conn);
    a.query_one("SELECT 1", &[]).await.unwrap();

    // A second client waits for the slot and gets it when the first leaves.
    let waiting = tokio::spawn(login());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the second client waits in line");
    drop(a);
    let (b, conn) = waiting.await.unwrap().expect("second client gets the slot");
    tokio::spawn(conn);

    // A third one waits in vain; the upstream never sees more than one.
    let third = tokio::spawn(login());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let upstream: i64 = b
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'upstream-limit'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(upstream, 1);
    let err = third.await.unwrap().err().expect("third client refused");
    let db = err.as_db_error().expect("a server-style error");
    assert_eq!(db.code().code(), "53300");
    assert!(
        db.message().contains("upstream connections"),
        "{}",
        db.message()
    );
    assert_eq!(proxy.shared.stats.limit_hits("max_upstream_connections"), 1);
    b.query_one("SELECT 1", &[]).await.unwrap();
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn addresses_outside_the_allow_list_are_refused() {
    let cluster = Cluster::shared();
    let proxy = proxy_with(cluster, |c| c.allow = vec!["10.0.0.0/8".parse().unwrap()]).await;
    let err = common::config_for(cluster, proxy.addr, "postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .err()
        .expect("refused");
    let db = err.as_db_error().expect("a server-style error");
    assert_eq!(db.code().code(), "28000");
    assert!(db.message().contains("127.0.0.1"), "{}", db.message());
    assert_eq!(proxy.shared.stats.limit_hits("allow_list"), 1);
    let open = proxy_with(cluster, |c| {
        c.allow = vec![
            "10.0.0.0/8".parse().unwrap(),
            "127.0.0.0/8".parse().unwrap(),
        ]
    })
    .await;
    still_serves(cluster, open.addr).await;
    open.shutdown().await.unwrap();
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn idle_clients_are_closed_but_open_transactions_are_not() {
    let cluster = Cluster::shared();
    let proxy = proxy_with(cluster, |c| {
        c.idle_timeout = Some(Duration::from_millis(400))
    })
    .await;
    let idle = connect(cluster, proxy.addr, "postgres").await;
    let in_tx = connect(cluster, proxy.addr, "postgres").await;
    in_tx.batch_execute("BEGIN").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let err = idle.simple_query("SELECT 1").await.unwrap_err();
    assert!(
        err.code() == Some(&tokio_postgres::error::SqlState::IDLE_SESSION_TIMEOUT)
            || err.is_closed(),
        "{err}"
    );
    in_tx.batch_execute("SELECT 1; COMMIT").await.unwrap();
    assert!(proxy.shared.stats.limit_hits("idle_timeout") >= 1);
    proxy.shutdown().await.unwrap();
}
