//! The proxy's own connections never get in a user's way: DROP DATABASE,
//! ALTER DATABASE ... RENAME and CREATE DATABASE ... TEMPLATE of a database
//! the proxy follows (its catalog's control connection, the change feed's
//! stream and checks) succeed through the proxy as they do against the
//! server, with the simple and the extended protocol.

mod common;

use std::time::{Duration, Instant};

use common::{connect, fresh_db, proxy_with, setup_db, value};
use pgcache::feed::ChangeFeedMode;
use pgcache::ProxyHandle;
use testkit::Cluster;

/// Makes the proxy follow `db`: a session reads a table there, so the
/// catalog (and, with the feed on, the stream) connects, then leaves.
async fn follow(cluster: &Cluster, proxy: &ProxyHandle, db: &str, feed: bool) {
    let client = connect(cluster, proxy.addr, db).await;
    assert_eq!(value(&client, "SELECT v FROM kv WHERE k = 1").await, "one");
    if feed {
        let up = proxy.shared.stats.feed.up.with_label_values(&[db]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while up.get() != 1 {
            assert!(Instant::now() < deadline, "the feed of {db} never streamed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(client);
}

/// pgcache's backends on `db` (its catalog, its feed), as the server lists them.
async fn proxy_backends(cluster: &Cluster, db: &str) -> i64 {
    let direct = connect(cluster, cluster.addr(), "postgres").await;
    value(
        &direct,
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' \
             AND application_name LIKE 'pgcache%'"
        ),
    )
    .await
    .parse()
    .unwrap()
}

async fn exists(cluster: &Cluster, db: &str) -> bool {
    let direct = connect(cluster, cluster.addr(), "postgres").await;
    value(
        &direct,
        &format!("SELECT count(*)::text FROM pg_database WHERE datname = '{db}'"),
    )
    .await
        == "1"
}

const SCHEMA: &str =
    "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');";

async fn drop_rename_and_copy(feed: bool, prefix: &str) {
    let cluster = Cluster::shared();
    let mode = if feed {
        ChangeFeedMode::Auto
    } else {
        ChangeFeedMode::Off
    };
    let proxy = proxy_with(cluster, |c| c.change_feed = mode).await;
    let admin = connect(cluster, proxy.addr, "postgres").await;

    // DROP DATABASE, simple protocol.
    let dropped = setup_db(cluster, &format!("{prefix}_drop"), SCHEMA);
    follow(cluster, &proxy, &dropped, feed).await;
    assert!(proxy_backends(cluster, &dropped).await >= 1, "followed");
    admin
        .batch_execute(&format!("DROP DATABASE {dropped}"))
        .await
        .unwrap_or_else(|e| panic!("DROP DATABASE through the proxy: {e:?}"));
    assert!(!exists(cluster, &dropped).await);

    // DROP DATABASE, extended protocol (Parse, Bind, Execute, Sync).
    let dropped = setup_db(cluster, &format!("{prefix}_drop_ext"), SCHEMA);
    follow(cluster, &proxy, &dropped, feed).await;
    admin
        .execute(&format!("DROP DATABASE {dropped}"), &[])
        .await
        .unwrap_or_else(|e| panic!("DROP DATABASE (extended) through the proxy: {e:?}"));
    assert!(!exists(cluster, &dropped).await);

    // ALTER DATABASE ... RENAME, then the old name is free and the new one
    // is followed like any other.
    let renamed = setup_db(cluster, &format!("{prefix}_rename"), SCHEMA);
    let new_name = format!("{renamed}_new");
    fresh_db(cluster, &new_name);
    cluster
        .psql("postgres", &format!("DROP DATABASE {new_name}"))
        .unwrap();
    follow(cluster, &proxy, &renamed, feed).await;
    admin
        .batch_execute(&format!("ALTER DATABASE {renamed} RENAME TO {new_name}"))
        .await
        .unwrap_or_else(|e| panic!("ALTER DATABASE RENAME through the proxy: {e:?}"));
    assert!(exists(cluster, &new_name).await);
    follow(cluster, &proxy, &new_name, feed).await;

    // CREATE DATABASE ... TEMPLATE of a followed database; the template is
    // followed again afterwards.
    let copy = format!("{prefix}_copy");
    cluster
        .psql("postgres", &format!("DROP DATABASE IF EXISTS {copy}"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {copy} TEMPLATE {new_name}"))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE TEMPLATE through the proxy: {e:?}"));
    let client = connect(cluster, proxy.addr, &copy).await;
    assert_eq!(value(&client, "SELECT v FROM kv WHERE k = 1").await, "one");
    drop(client);
    if feed {
        let up = proxy.shared.stats.feed.up.with_label_values(&[&new_name]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while up.get() != 1 {
            assert!(
                Instant::now() < deadline,
                "the feed of the template never came back"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // A failed DROP (the database is in use by a client) fails as it would
    // against the server, and the proxy follows the database again.
    let busy = setup_db(cluster, &format!("{prefix}_busy"), SCHEMA);
    follow(cluster, &proxy, &busy, feed).await;
    let user = connect(cluster, cluster.addr(), &busy).await;
    let err = admin
        .batch_execute(&format!("DROP DATABASE {busy}"))
        .await
        .expect_err("in use by a client");
    assert_eq!(err.code().map(|c| c.code()), Some("55006"), "{err:?}");
    drop(user);
    follow(cluster, &proxy, &busy, feed).await;

    proxy.shutdown().await.unwrap();
    for db in [new_name, copy, busy] {
        cluster
            .psql(
                "postgres",
                &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            )
            .ok();
    }
}

#[tokio::test]
async fn database_commands_succeed_through_the_proxy_without_the_feed() {
    drop_rename_and_copy(false, "dbcmd_plain").await;
}

#[tokio::test]
async fn database_commands_succeed_through_the_proxy_with_the_feed() {
    drop_rename_and_copy(true, "dbcmd_feed").await;
}

/// Straight on the server, DROP DATABASE ... WITH (FORCE) ends other
/// sessions but not an active replication slot: with the feed on, an
/// operator releases the database first (console RELEASE, or the admin
/// API), and the proxy stays away from it until the hold ends or RESUME.
#[tokio::test]
async fn an_operator_releases_a_database_for_a_drop_made_on_the_server() {
    let cluster = Cluster::shared();
    let proxy = proxy_with(cluster, |c| {
        c.change_feed = ChangeFeedMode::Auto;
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let console = connect(cluster, proxy.addr, "pgcache").await;
    let direct = connect(cluster, cluster.addr(), "postgres").await;

    let db = setup_db(cluster, "dbcmd_release", SCHEMA);
    follow(cluster, &proxy, &db, true).await;
    let err = direct
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .expect_err("the feed's slot is active");
    assert!(
        err.as_db_error()
            .is_some_and(|e| e.message().contains("replication slot")),
        "{err:?}"
    );
    console
        .batch_execute(&format!("RELEASE {db} 30"))
        .await
        .unwrap();
    assert_eq!(proxy_backends(cluster, &db).await, 0, "all closed");
    direct
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .unwrap();
    console
        .batch_execute(&format!("RESUME {db}"))
        .await
        .unwrap();
    let err = console
        .batch_execute(&format!("RESUME {db}"))
        .await
        .expect_err("not released any more");
    assert!(
        err.as_db_error()
            .is_some_and(|e| e.message().contains("not released")),
        "{err:?}"
    );

    // The admin API does the same; the hold ends by itself.
    let db = setup_db(cluster, "dbcmd_release_api", SCHEMA);
    follow(cluster, &proxy, &db, true).await;
    let admin = proxy.admin_addr.expect("admin listens");
    let body = format!("{{\"database\": \"{db}\", \"seconds\": 1}}");
    let reply = common::http::request(admin, "POST", "/api/release", None, Some(&body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(proxy_backends(cluster, &db).await, 0, "all closed");
    // After the hold, the proxy follows the database again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    follow(cluster, &proxy, &db, true).await;
    let reply = common::http::request(
        admin,
        "POST",
        "/api/release",
        None,
        Some("{\"database\": \"never_seen\"}"),
    )
    .await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    proxy.shutdown().await.unwrap();
    cluster
        .psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        )
        .ok();
}
