//! The proxy is transparent to tokio-postgres: extended protocol with binary
//! results, pipelining, transactions, COPY, notifications, cancel, termination.

mod common;

use std::time::Duration;

use common::{connect, fresh_db, proxy};
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use testkit::Cluster;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, NoTls, SimpleQueryMessage};

#[tokio::test]
async fn extended_protocol_with_binary_results_matches_the_server() {
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, "proto_ext");
    let proxy = proxy(cluster).await;
    let via = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    via.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, name text, data bytea, score float8, ok bool, at timestamptz);
         INSERT INTO t SELECT i, 'n' || i, decode(md5(i::text), 'hex'), i / 3.0, i % 2 = 0,
                              '2024-01-01'::timestamptz + i * interval '1 hour'
         FROM generate_series(1, 100) i;
         INSERT INTO t VALUES (101, NULL, NULL, NULL, NULL, NULL);",
    )
    .await
    .unwrap();

    let sql =
        "SELECT id, name, data, score, ok, at::text FROM t WHERE id > $1 AND id <= $2 ORDER BY id";
    let stmt = via.prepare(sql).await.unwrap();
    assert_eq!(stmt.columns().len(), 6);
    assert_eq!(stmt.params().len(), 2);
    for (lo, hi) in [(0, 10), (50, 101), (200, 300)] {
        let a = via.query(&stmt, &[&lo, &hi]).await.unwrap();
        let b = direct.query(sql, &[&lo, &hi]).await.unwrap();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.get::<_, i32>(0), y.get::<_, i32>(0));
            assert_eq!(x.get::<_, Option<&str>>(1), y.get::<_, Option<&str>>(1));
            assert_eq!(x.get::<_, Option<&[u8]>>(2), y.get::<_, Option<&[u8]>>(2));
            assert_eq!(x.get::<_, Option<f64>>(3), y.get::<_, Option<f64>>(3));
            assert_eq!(x.get::<_, Option<bool>>(4), y.get::<_, Option<bool>>(4));
            assert_eq!(x.get::<_, Option<&str>>(5), y.get::<_, Option<&str>>(5));
        }
    }
    // A portal read in batches (Execute with a row limit) inside a transaction.
    let mut via = via;
    let tx = via.transaction().await.unwrap();
    let portal = tx.bind(&stmt, &[&0, &101]).await.unwrap();
    let mut seen = 0;
    loop {
        let rows = tx.query_portal(&portal, 7).await.unwrap();
        if rows.is_empty() {
            break;
        }
        seen += rows.len();
    }
    assert_eq!(seen, 101);
    tx.commit().await.unwrap();
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn pipelined_queries_and_simple_protocol() {
    let cluster = Cluster::shared();
    let proxy = proxy(cluster).await;
    let client = connect(cluster, proxy.addr, "postgres").await;
    // tokio-postgres pipelines concurrent queries on one connection: several
    // Parse/Bind/Execute/Sync cycles in flight before the first answer.
    let queries = (0..50).map(|i| {
        let client = &client;
        async move {
            let row = client
                .query_one("SELECT $1::int * 2, repeat('x', $1::int)", &[&i])
                .await
                .unwrap();
            assert_eq!(row.get::<_, i32>(0), i * 2);
            assert_eq!(row.get::<_, String>(1).len(), i as usize);
        }
    });
    futures_util::future::join_all(queries).await;

    // Simple protocol: several statements in one Query message, text results.
    let messages = client
        .simple_query("SELECT 1 AS a; SELECT 'two' AS b, NULL AS c; SET application_name = 'p'")
        .await
        .unwrap();
    let rows: Vec<_> = messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get("a"), Some("1"));
    assert_eq!(rows[1].get("b"), Some("two"));
    assert_eq!(rows[1].get("c"), None);
    // An empty query string gets EmptyQueryResponse, not an error.
    client.simple_query("").await.unwrap();
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn transactions_savepoints_and_errors() {
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, "proto_tx");
    let proxy = proxy(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    client
        .batch_execute(
            "CREATE TABLE acct (id int PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0));
             INSERT INTO acct VALUES (1, 100), (2, 0);",
        )
        .await
        .unwrap();

    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute("UPDATE acct SET balance = balance - 10 WHERE id = 1", &[])
        .await
        .unwrap();
    client.batch_execute("SAVEPOINT s1").await.unwrap();
    let err = client
        .execute("UPDATE acct SET balance = balance - 1 WHERE id = 2", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::CHECK_VIOLATION));
    // The transaction is now failed (status 'E'): everything is refused...
    let err = client.query("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    // ...until the savepoint is rolled back to.
    client
        .batch_execute("ROLLBACK TO SAVEPOINT s1")
        .await
        .unwrap();
    client
        .execute("UPDATE acct SET balance = balance + 10 WHERE id = 2", &[])
        .await
        .unwrap();
    client.batch_execute("COMMIT").await.unwrap();
    let rows = client
        .query("SELECT balance FROM acct ORDER BY id", &[])
        .await
        .unwrap();
    let balances: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(balances, vec![90, 10]);

    // ROLLBACK discards.
    client
        .batch_execute("BEGIN; DELETE FROM acct; ROLLBACK")
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM acct", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn error_at_commit_from_a_deferred_constraint() {
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, "proto_deferred");
    let proxy = proxy(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    client
        .batch_execute(
            "CREATE TABLE parent (id int PRIMARY KEY);
             CREATE TABLE child (id int PRIMARY KEY,
                 parent_id int REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .await
        .unwrap();
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute("INSERT INTO child VALUES (1, 42)", &[])
        .await
        .unwrap();
    let err = client.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::FOREIGN_KEY_VIOLATION));
    // The session goes on, outside any transaction, and nothing was committed.
    let n: i64 = client
        .query_one("SELECT count(*) FROM child", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn copy_in_and_out_including_an_error_mid_copy() {
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, "proto_copy");
    let proxy = proxy(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    client
        .batch_execute("CREATE TABLE items (id int, label text)")
        .await
        .unwrap();

    let sink = client
        .copy_in("COPY items FROM STDIN WITH (FORMAT csv)")
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    for chunk in 0..10 {
        let mut data = String::new();
        for i in 0..1000 {
            let id = chunk * 1000 + i;
            data.push_str(&format!("{id},\"label {id}\"\n"));
        }
        sink.send(bytes::Bytes::from(data)).await.unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), 10_000);

    let stream = client
        .copy_out("COPY (SELECT * FROM items ORDER BY id) TO STDOUT")
        .await
        .unwrap();
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    let text: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert_eq!(text.lines().count(), 10_000);
    assert_eq!(text.lines().nth(9_999), Some("9999\tlabel 9999"));

    // Bad data in the middle of a COPY: the server's error reaches the client and
    // the session is usable afterwards.
    let sink = client.copy_in("COPY items FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"1\tok\nnot-a-number\tbad\n"))
        .await
        .unwrap();
    let err = sink.finish().await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INVALID_TEXT_REPRESENTATION));
    let n: i64 = client
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 10_000);
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn notifications_reach_an_idle_client() {
    let cluster = Cluster::shared();
    let proxy = proxy(cluster).await;
    let (listener, mut connection) = common::config_for(cluster, proxy.addr, "postgres")
        .connect(NoTls)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            let _ = tx.send(message);
        }
    });
    listener.batch_execute("LISTEN jobs").await.unwrap();

    // Another client, straight to the server, notifies; the listener does nothing.
    let notifier = connect(cluster, cluster.addr(), "postgres").await;
    for i in 0..3 {
        notifier
            .batch_execute(&format!("NOTIFY jobs, 'job {i}'"))
            .await
            .unwrap();
        let message = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("notification arrives while the client is idle")
            .unwrap();
        match message {
            AsyncMessage::Notification(n) => {
                assert_eq!(n.channel(), "jobs");
                assert_eq!(n.payload(), format!("job {i}"));
            }
            other => panic!("unexpected message {other:?}"),
        }
    }

    // A NOTICE raised by the server is relayed too.
    listener
        .batch_execute("DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$")
        .await
        .unwrap();
    let message = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    match message {
        AsyncMessage::Notice(n) => assert_eq!(n.message(), "hello from plpgsql"),
        other => panic!("unexpected message {other:?}"),
    }
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancel_request_cancels_the_running_query() {
    let cluster = Cluster::shared();
    let proxy = proxy(cluster).await;
    let client = connect(cluster, proxy.addr, "postgres").await;
    let token = client.cancel_token();
    let watcher = connect(cluster, cluster.addr(), "postgres").await;
    let canceller = tokio::spawn(async move {
        // Cancel only once the query runs: a cancel that arrives before it is
        // a no-op, as against the server.
        for _ in 0..200 {
            let running: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if running > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Sent to the proxy's address, like the client's own connection.
        token.cancel_query(NoTls).await.unwrap();
    });
    let started = std::time::Instant::now();
    let err = client.query("SELECT pg_sleep(30)", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED));
    assert!(started.elapsed() < Duration::from_secs(20));
    canceller.await.unwrap();
    // The connection is fine afterwards.
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn terminated_backend_reaches_only_its_client() {
    let cluster = Cluster::shared();
    let proxy = proxy(cluster).await;
    let victim = connect(cluster, proxy.addr, "postgres").await;
    let bystander = connect(cluster, proxy.addr, "postgres").await;
    let pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let admin = connect(cluster, cluster.addr(), "postgres").await;
    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    // The victim sees the server's own FATAL (57P01) or a closed connection.
    let err = tokio::time::timeout(Duration::from_secs(10), victim.query("SELECT 1", &[]))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(
        err.code() == Some(&SqlState::ADMIN_SHUTDOWN) || err.is_closed(),
        "unexpected error: {err}"
    );
    let one: i32 = bystander.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    proxy.shutdown().await.unwrap();
}
