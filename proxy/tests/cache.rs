//! The query cache, observed from outside: a row written straight to the server
//! (behind the proxy's back) and read through the proxy shows whether the read
//! was served from the cache (old value) or went upstream (new value).

mod common;

use std::time::Duration;

use common::raw::{message, startup_packet, Raw};
use common::{connect, proxy, proxy_with, setup_db, value};
use testkit::Cluster;
use tokio_postgres::{Client, SimpleQueryMessage};

#[tokio::test]
async fn repeated_reads_hit_and_writes_through_the_proxy_invalidate() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "cache_basic",
        "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');",
    );
    let proxy = proxy(cluster).await;
    let a = connect(cluster, proxy.addr, &db).await;
    let b = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    let q = "SELECT v FROM kv WHERE k = 1";

    assert_eq!(value(&a, q).await, "one"); // miss, fills
    direct
        .batch_execute("UPDATE kv SET v = 'behind' WHERE k = 1")
        .await
        .unwrap();
    assert_eq!(value(&a, q).await, "one", "served from the cache");
    assert_eq!(value(&b, q).await, "one", "shared with another session");
    assert!(proxy.shared.stats.queries("hit") >= 2);

    // Autocommit write through the proxy: every later read is fresh.
    a.batch_execute("UPDATE kv SET v = 'two' WHERE k = 1")
        .await
        .unwrap();
    assert_eq!(value(&b, q).await, "two");
    assert_eq!(value(&b, q).await, "two");

    // In a transaction: other sessions see the old value until COMMIT, then the new.
    a.batch_execute("BEGIN; UPDATE kv SET v = 'three' WHERE k = 1")
        .await
        .unwrap();
    assert_eq!(value(&b, q).await, "two");
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(value(&b, q).await, "three");

    // ROLLBACK: the old value stays right.
    a.batch_execute("BEGIN; UPDATE kv SET v = 'never' WHERE k = 1; ROLLBACK")
        .await
        .unwrap();
    assert_eq!(value(&b, q).await, "three");
    proxy.shutdown().await.unwrap();
}

/// Without the change feed, a table created straight on the server is
/// unknown to the proxy's catalog: the first read naming it asks for a
/// reload (at most one a second), so it is cached soon after, not at the
/// periodic refresh a minute later.
#[tokio::test]
async fn a_table_created_around_the_proxy_is_cached_within_a_second() {
    let cluster = Cluster::shared();
    let db = setup_db(cluster, "cache_unknown_table", "SELECT 1");
    let proxy = proxy(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    assert_eq!(value(&client, "SELECT 1::text").await, "1"); // the catalog loads
    direct
        .batch_execute(
            "CREATE TABLE late (k int PRIMARY KEY, v text); INSERT INTO late VALUES (1, 'x')",
        )
        .await
        .unwrap();
    let q = "SELECT v FROM late WHERE k = 1";
    let unresolved = proxy.shared.stats.bypasses("unresolved_relation");
    assert_eq!(value(&client, q).await, "x");
    assert_eq!(
        proxy.shared.stats.bypasses("unresolved_relation"),
        unresolved + 1,
        "unknown at first"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let hits = proxy.shared.stats.queries("hit");
        assert_eq!(value(&client, q).await, "x");
        if proxy.shared.stats.queries("hit") > hits {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never cached: the catalog was not reloaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn read_your_own_writes_inside_a_transaction() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "cache_ryow",
        "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'old');",
    );
    let proxy = proxy(cluster).await;
    let a = connect(cluster, proxy.addr, &db).await;
    let q = "SELECT v FROM kv WHERE k = 1";
    assert_eq!(value(&a, q).await, "old");
    assert_eq!(value(&a, q).await, "old");
    a.batch_execute("BEGIN").await.unwrap();
    a.batch_execute("UPDATE kv SET v = 'mine' WHERE k = 1")
        .await
        .unwrap();
    assert_eq!(
        value(&a, q).await,
        "mine",
        "the transaction sees its own write"
    );
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(value(&a, q).await, "old");
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn cascades_views_triggers_and_partitions_invalidate_what_they_reach() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "cache_closure",
        "CREATE TABLE parent (id int PRIMARY KEY);
         CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent(id) ON DELETE CASCADE);
         INSERT INTO parent VALUES (1), (2); INSERT INTO child VALUES (10, 1), (20, 2);
         CREATE TABLE base (id int PRIMARY KEY, v int); INSERT INTO base VALUES (1, 1);
         CREATE VIEW doubled AS SELECT id, v * 2 AS v2 FROM base;
         CREATE TABLE audited (id int); CREATE TABLE audit_log (n int);
         CREATE FUNCTION log_it() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO audit_log VALUES (NEW.id); RETURN NEW; END $$;
         CREATE TRIGGER audit AFTER INSERT ON audited FOR EACH ROW EXECUTE FUNCTION log_it();
         CREATE TABLE measurements (day int, v int) PARTITION BY RANGE (day);
         CREATE TABLE m_low PARTITION OF measurements FOR VALUES FROM (0) TO (100);
         CREATE TABLE m_high PARTITION OF measurements FOR VALUES FROM (100) TO (200);
         INSERT INTO measurements VALUES (1, 1), (150, 1);",
    );
    let proxy = proxy(cluster).await;
    let c = connect(cluster, proxy.addr, &db).await;
    let w = connect(cluster, proxy.addr, &db).await;
    let children = "SELECT count(*) FROM child";
    let view = "SELECT v2 FROM doubled WHERE id = 1";
    let log = "SELECT count(*) FROM audit_log";
    let parent_total = "SELECT count(*) FROM measurements";
    let high = "SELECT count(*) FROM m_high";
    let low = "SELECT count(*) FROM m_low";
    for q in [children, view, log, parent_total, high, low] {
        value(&c, q).await;
        value(&c, q).await;
    }
    let hits = proxy.shared.stats.queries("hit");
    assert!(hits >= 6, "all six are cached: {hits}");

    w.batch_execute("DELETE FROM parent WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(value(&c, children).await, "1", "ON DELETE CASCADE child");
    w.batch_execute("UPDATE base SET v = 5").await.unwrap();
    assert_eq!(value(&c, view).await, "10", "view over a written table");
    w.batch_execute("INSERT INTO audited VALUES (7)")
        .await
        .unwrap();
    assert_eq!(value(&c, log).await, "1", "table written by a trigger");
    w.batch_execute("INSERT INTO m_low VALUES (2, 1)")
        .await
        .unwrap();
    assert_eq!(
        value(&c, parent_total).await,
        "3",
        "write to a partition, read the parent"
    );
    w.batch_execute("INSERT INTO measurements VALUES (160, 1)")
        .await
        .unwrap();
    assert_eq!(
        value(&c, high).await,
        "2",
        "write to the parent, read the partition"
    );
    assert_eq!(value(&c, low).await, "2");
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn search_path_and_users_never_cross() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "cache_isolation",
        "CREATE SCHEMA a; CREATE SCHEMA b;
         CREATE TABLE a.t (v text); CREATE TABLE b.t (v text);
         INSERT INTO a.t VALUES ('from a'); INSERT INTO b.t VALUES ('from b');
         CREATE TABLE secret (v text); INSERT INTO secret VALUES ('classified');
         DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'reader') THEN CREATE ROLE reader LOGIN PASSWORD 'reader-pw'; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'outsider') THEN CREATE ROLE outsider LOGIN PASSWORD 'outsider-pw'; END IF;
         END $$;
         GRANT SELECT ON secret TO reader;",
    );
    let proxy = proxy(cluster).await;
    let sa = connect(cluster, proxy.addr, &db).await;
    let sb = connect(cluster, proxy.addr, &db).await;
    sa.batch_execute("SET search_path = a").await.unwrap();
    sb.batch_execute("SET search_path = b").await.unwrap();
    for _ in 0..3 {
        assert_eq!(value(&sa, "SELECT v FROM t").await, "from a");
        assert_eq!(value(&sb, "SELECT v FROM t").await, "from b");
    }

    let reader = common::connect_as(proxy.addr, "reader", "reader-pw", &db).await;
    let outsider = common::connect_as(proxy.addr, "outsider", "outsider-pw", &db).await;
    let q = "SELECT v FROM secret";
    assert_eq!(value(&reader, q).await, "classified");
    assert_eq!(value(&reader, q).await, "classified");
    let err = outsider.simple_query(q).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );

    // REVOKE through the proxy: the reader stops getting the cached result.
    sa.batch_execute("REVOKE SELECT ON public.secret FROM reader")
        .await
        .unwrap();
    let err = reader.simple_query(q).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn volatile_and_time_functions_are_never_cached() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "cache_volatile",
        "CREATE TABLE t (v int); INSERT INTO t VALUES (1);",
    );
    let proxy = proxy(cluster).await;
    let c = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    let queries = [
        "SELECT v FROM t WHERE random() < 2",
        "SELECT v FROM t WHERE now() > '2000-01-01'",
        "SELECT v FROM t WHERE current_timestamp > '2000-01-01'",
        "SELECT v FROM t WHERE 'now'::timestamptz > '2000-01-01'",
        "SELECT v FROM t WHERE clock_timestamp() > '2000-01-01'",
        "SELECT v FROM t FOR UPDATE",
    ];
    for (i, q) in queries.iter().enumerate() {
        value(&c, q).await;
        direct
            .batch_execute(&format!("UPDATE t SET v = {}", i + 10))
            .await
            .unwrap();
        assert_eq!(
            value(&c, q).await,
            (i + 10).to_string(),
            "{q} was served from the cache"
        );
    }
    let a = value(&c, "SELECT clock_timestamp()::text").await;
    let b = value(&c, "SELECT clock_timestamp()::text").await;
    assert_ne!(a, b);
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn truncate_copy_ddl_writable_cte_and_writing_functions_invalidate() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "cache_writes",
        "CREATE TABLE t (id int, v int); INSERT INTO t VALUES (1, 1);
         CREATE TABLE counter (n int); INSERT INTO counter VALUES (0);
         CREATE FUNCTION bump() RETURNS int LANGUAGE sql AS 'UPDATE counter SET n = n + 1 RETURNING n';",
    );
    let proxy = proxy(cluster).await;
    let c = connect(cluster, proxy.addr, &db).await;
    let count = "SELECT count(*) FROM t";
    let all = "SELECT * FROM t ORDER BY id";
    let n = "SELECT n FROM counter";
    for q in [count, n] {
        value(&c, q).await;
    }

    c.batch_execute("TRUNCATE t").await.unwrap();
    assert_eq!(value(&c, count).await, "0", "TRUNCATE");

    let sink = c.copy_in("COPY t FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    futures_util::SinkExt::send(&mut sink, bytes::Bytes::from_static(b"1\t1\n2\t2\n"))
        .await
        .unwrap();
    sink.finish().await.unwrap();
    assert_eq!(value(&c, count).await, "2", "COPY FROM");

    c.simple_query(all).await.unwrap();
    c.batch_execute("ALTER TABLE t ADD COLUMN extra int DEFAULT 7")
        .await
        .unwrap();
    let rows = c.simple_query(all).await.unwrap();
    let SimpleQueryMessage::Row(first) = rows
        .iter()
        .find(|m| matches!(m, SimpleQueryMessage::Row(_)))
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(first.get("extra"), Some("7"), "DDL: the new column appears");

    c.simple_query("WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT count(*) FROM d")
        .await
        .unwrap();
    assert_eq!(value(&c, count).await, "1", "writable CTE");

    assert_eq!(value(&c, n).await, "0");
    assert_eq!(value(&c, "SELECT bump()").await, "1");
    assert_eq!(value(&c, n).await, "1", "SELECT of a function that writes");
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn policy_rules_ttls_sizes_and_hot_reload() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "cache_policy",
        "CREATE TABLE normal (v int); INSERT INTO normal VALUES (1);
         CREATE TABLE nocache (v int); INSERT INTO nocache VALUES (1);
         CREATE TABLE short (v int); INSERT INTO short VALUES (1);
         CREATE TABLE wide (v text); INSERT INTO wide SELECT repeat('x', 100) FROM generate_series(1, 100);",
    );
    let dir = std::env::temp_dir().join(format!("pgcache-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "[defaults]\nttl = \"60s\"\nmax_entry_size = \"4KiB\"\n\n[tables.\"public.nocache\"]\ncache = false\n\n[tables.short]\nttl = \"3s\"\n",
    )
    .unwrap();
    let path = policy.clone();
    let proxy = proxy_with(cluster, move |c| c.policy = Some(path)).await;
    let c = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    for q in [
        "SELECT v FROM normal",
        "SELECT v FROM nocache",
        "SELECT v FROM short",
        "SELECT string_agg(v, '') FROM wide",
    ] {
        value(&c, q).await;
    }
    direct
        .batch_execute("UPDATE normal SET v = 2; UPDATE nocache SET v = 2; UPDATE short SET v = 2; UPDATE wide SET v = 'y'")
        .await
        .unwrap();
    assert_eq!(value(&c, "SELECT v FROM normal").await, "1", "cached");
    assert_eq!(
        value(&c, "SELECT v FROM nocache").await,
        "2",
        "cache = false"
    );
    assert_eq!(
        value(&c, "SELECT v FROM short").await,
        "1",
        "cached for now"
    );
    assert!(
        value(&c, "SELECT string_agg(v, '') FROM wide")
            .await
            .starts_with('y'),
        "larger than max_entry_size"
    );
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(
        value(&c, "SELECT v FROM short").await,
        "2",
        "ttl = 3s expired"
    );

    // A broken edit is refused; the old policy keeps serving.
    std::fs::write(&policy, "[defaults]\nttl = \"soon\"\n").unwrap();
    wait_for(|| proxy.shared.stats.policy_reloads("error") >= 1).await;
    assert_eq!(value(&c, "SELECT v FROM normal").await, "1", "still cached");

    // A valid edit applies to the next query: normal is no longer cacheable.
    std::fs::write(&policy, "[tables.normal]\ncache = false\n").unwrap();
    wait_for(|| proxy.shared.stats.policy_reloads("ok") >= 1).await;
    assert_eq!(
        value(&c, "SELECT v FROM normal").await,
        "2",
        "entries no longer allowed are not served"
    );
    let _ = std::fs::remove_dir_all(&dir);
    proxy.shutdown().await.unwrap();
}

async fn wait_for(condition: impl Fn() -> bool) {
    for _ in 0..100 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("condition not reached within 10 s");
}

#[tokio::test]
async fn extended_protocol_hits_with_parameters_and_binary_results() {
    let cluster = Cluster::shared();
    let db = setup_db(cluster, "cache_extended", "CREATE TABLE kv (k int PRIMARY KEY, v text, n float8); INSERT INTO kv SELECT i, 'v' || i, i / 2.0 FROM generate_series(1, 10) i;");
    let proxy = proxy(cluster).await;
    let c = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    let stmt = c.prepare("SELECT v, n FROM kv WHERE k = $1").await.unwrap();
    for k in 1..=3 {
        let row = c.query_one(&stmt, &[&k]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), format!("v{k}"));
    }
    direct
        .batch_execute("UPDATE kv SET v = 'changed', n = -1")
        .await
        .unwrap();
    let hits_before = proxy.shared.stats.queries("hit");
    for k in 1..=3 {
        let row = c.query_one(&stmt, &[&k]).await.unwrap();
        assert_eq!(
            row.get::<_, String>(0),
            format!("v{k}"),
            "served from the cache"
        );
        assert_eq!(row.get::<_, f64>(1), f64::from(k) / 2.0);
    }
    assert_eq!(proxy.shared.stats.queries("hit"), hits_before + 3);
    // A parameter value not seen before is a miss.
    let row = c.query_one(&stmt, &[&4]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "changed");
    // Writes through the proxy by the extended protocol invalidate too.
    c.execute("UPDATE kv SET v = $1 WHERE k = $2", &[&"fresh", &1])
        .await
        .unwrap();
    // The first read may travel with the Close of the UPDATE's statement, which
    // makes it a bypass; the second is a lookup.
    for _ in 0..2 {
        let row = c.query_one(&stmt, &[&1]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "fresh");
    }
    proxy.shutdown().await.unwrap();
}

/// A statement answered from the cache is prepared upstream before the client
/// first uses it in a forwarded batch.
#[tokio::test]
async fn named_statement_answered_locally_is_prepared_upstream_when_needed() {
    let cluster = Cluster::shared();
    let db = setup_db(cluster, "cache_named", "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one'), (2, 'two');");
    let proxy = proxy(cluster).await;
    let batch = |k: &[u8], with_parse: bool| {
        let mut bytes = Vec::new();
        if with_parse {
            bytes.extend(message(
                b'P',
                b"s1\0SELECT v FROM kv WHERE k = $1::int\0\0\0",
            ));
        }
        let mut bind = b"\0s1\0\0\0\0\x01".to_vec();
        bind.extend_from_slice(&(k.len() as u32).to_be_bytes());
        bind.extend_from_slice(k);
        bind.extend_from_slice(b"\0\0");
        bytes.extend(message(b'B', &bind));
        bytes.extend(message(b'E', b"\0\0\0\0\0"));
        bytes.extend(message(b'S', b""));
        bytes
    };
    let rows = |msgs: &[(u8, Vec<u8>)]| -> Vec<String> {
        msgs.iter()
            .filter(|m| m.0 == b'D')
            .map(|m| String::from_utf8_lossy(&m.1[6..]).into_owned())
            .collect()
    };
    let login = |addr| {
        let db = db.clone();
        async move {
            let mut raw = Raw::connect(addr).await;
            raw.send(&startup_packet(
                3,
                0,
                &[("user", "postgres"), ("database", &db)],
            ))
            .await;
            raw.read_until(b'Z').await;
            raw
        }
    };
    // Session one fills the cache.
    let mut one = login(proxy.addr).await;
    one.send(&batch(b"1", true)).await;
    assert_eq!(rows(&one.read_until(b'Z').await), vec!["one"]);
    // Session two gets the same batch from the cache: the server never sees its Parse.
    let hits = proxy.shared.stats.queries("hit");
    let mut two = login(proxy.addr).await;
    two.send(&batch(b"1", true)).await;
    let answer = two.read_until(b'Z').await;
    assert_eq!(
        answer.iter().map(|m| m.0 as char).collect::<String>(),
        "12DCZ"
    );
    assert_eq!(rows(&answer), vec!["one"]);
    assert_eq!(proxy.shared.stats.queries("hit"), hits + 1);
    // Now session two uses s1 with a new value: forwarded, with s1 prepared first.
    two.send(&batch(b"2", false)).await;
    let answer = two.read_until(b'Z').await;
    assert_eq!(
        answer.iter().map(|m| m.0 as char).collect::<String>(),
        "2DCZ",
        "the injected ParseComplete is not relayed"
    );
    assert_eq!(rows(&answer), vec!["two"]);
    proxy.shutdown().await.unwrap();
}

/// Writers and readers at full speed: no read returns a value older than the
/// last write acknowledged before that read began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_read_is_older_than_an_acknowledged_write() {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;
    let cluster = Cluster::shared();
    let db = setup_db(cluster, "cache_stress", "CREATE TABLE counters (id int PRIMARY KEY, v bigint NOT NULL); INSERT INTO counters SELECT i, 0 FROM generate_series(0, 3) i;");
    let proxy = proxy(cluster).await;
    let acked: Arc<Vec<AtomicI64>> = Arc::new((0..4).map(|_| AtomicI64::new(0)).collect());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut tasks = Vec::new();
    for w in 0..2 {
        let c = connect(cluster, proxy.addr, &db).await;
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while std::time::Instant::now() < deadline {
                let id: i32 = i % 4;
                let v: i64 = if (i + w) % 3 == 0 {
                    c.batch_execute("BEGIN").await.unwrap();
                    let v = c
                        .query_one(
                            "UPDATE counters SET v = v + 1 WHERE id = $1 RETURNING v",
                            &[&id],
                        )
                        .await
                        .unwrap()
                        .get(0);
                    c.batch_execute("COMMIT").await.unwrap();
                    v
                } else {
                    value(
                        &c,
                        &format!("UPDATE counters SET v = v + 1 WHERE id = {id} RETURNING v"),
                    )
                    .await
                    .parse()
                    .unwrap()
                };
                acked[id as usize].fetch_max(v, Ordering::SeqCst);
                i += 1;
            }
            0u64
        }));
    }
    for r in 0..4 {
        let c = connect(cluster, proxy.addr, &db).await;
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let stmt = c
                .prepare("SELECT v FROM counters WHERE id = $1")
                .await
                .unwrap();
            let mut reads = 0u64;
            let mut i = r;
            while std::time::Instant::now() < deadline {
                let id: i32 = i % 4;
                let floor = acked[id as usize].load(Ordering::SeqCst);
                let v: i64 = if i % 2 == 0 {
                    c.query_one(&stmt, &[&id]).await.unwrap().get(0)
                } else {
                    value(&c, &format!("SELECT v FROM counters WHERE id = {id}"))
                        .await
                        .parse()
                        .unwrap()
                };
                assert!(
                    v >= floor,
                    "read {v} for counter {id} after write {floor} was acknowledged"
                );
                reads += 1;
                i += 1;
            }
            reads
        }));
    }
    let mut reads = 0;
    for t in tasks {
        reads += t.await.unwrap();
    }
    assert!(reads > 100, "the readers ran: {reads}");
    assert!(
        proxy.shared.stats.queries("hit") > 0,
        "some reads were hits"
    );
    proxy.shutdown().await.unwrap();
}

/// A client that vanishes mid-COPY, mid-transaction or mid-result leaves no
/// lock or busy backend behind, and what it wrote without committing is
/// rolled back.
#[tokio::test]
async fn vanished_clients_release_their_locks_promptly() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "cache_vanish",
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0);",
    );
    let proxy = proxy(cluster).await;
    let probe = connect(cluster, cluster.addr(), &db).await;
    let locks = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 't' AND l.pid <> pg_backend_pid()";

    // Mid-COPY: the client sends some rows and disappears.
    let mut raw = Raw::login_to(proxy.addr, "postgres", &db).await;
    raw.send(&message(b'Q', b"COPY t FROM STDIN\0")).await;
    raw.read_until(b'G').await;
    raw.send(&message(b'd', b"2\t2\n")).await;
    drop(raw);
    wait_until_zero(&probe, locks).await;

    // Mid-transaction, after a write.
    let mut raw = Raw::login_to(proxy.addr, "postgres", &db).await;
    raw.send(&message(b'Q', b"BEGIN; UPDATE t SET v = 99 WHERE id = 1\0"))
        .await;
    raw.read_until(b'Z').await;
    drop(raw);
    wait_until_zero(&probe, locks).await;
    assert_eq!(
        value(&probe, "SELECT v FROM t WHERE id = 1").await,
        "0",
        "rolled back"
    );

    // Mid-result: a transaction holding a row lock starts a huge result, the
    // client reads one row and disappears. The backend must stop and let go.
    let mut raw = Raw::login_to(proxy.addr, "postgres", &db).await;
    raw.send(&message(
        b'Q',
        b"BEGIN; SELECT v FROM t WHERE id = 1 FOR UPDATE\0",
    ))
    .await;
    raw.read_until(b'Z').await;
    raw.send(&message(
        b'Q',
        b"SELECT repeat('x', 1000) AS vanish_result FROM generate_series(1, 10000000)\0",
    ))
    .await;
    raw.read_until(b'D').await;
    drop(raw);
    wait_until_zero(&probe, locks).await;
    wait_until_zero(
        &probe,
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%AS vanish_result%' AND pid <> pg_backend_pid()",
    )
    .await;
    assert_eq!(
        value(&probe, "SELECT count(*) FROM t").await,
        "1",
        "the COPY was aborted"
    );
    proxy.shutdown().await.unwrap();
}

async fn wait_until_zero(client: &Client, sql: &str) {
    for _ in 0..50 {
        if value(client, sql).await == "0" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{sql} still not 0 after 5 s");
}

/// Row-level security: each user sees only their rows, and such tables are
/// never cached, so no result crosses users or settings.
#[tokio::test]
async fn row_level_security_tables_are_not_shared() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "cache_rls",
        "CREATE TABLE docs (owner text, body text);
         INSERT INTO docs VALUES ('rls_alice', 'a1'), ('rls_alice', 'a2'), ('rls_bob', 'b1');
         ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own ON docs USING (owner = current_user);
         DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rls_alice') THEN CREATE ROLE rls_alice LOGIN PASSWORD 'pw'; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rls_bob') THEN CREATE ROLE rls_bob LOGIN PASSWORD 'pw'; END IF;
         END $$;
         GRANT SELECT ON docs TO rls_alice, rls_bob;",
    );
    let proxy = proxy(cluster).await;
    let alice = common::connect_as(proxy.addr, "rls_alice", "pw", &db).await;
    let bob = common::connect_as(proxy.addr, "rls_bob", "pw", &db).await;
    let q = "SELECT string_agg(body, ',' ORDER BY body) FROM docs";
    for _ in 0..3 {
        assert_eq!(value(&alice, q).await, "a1,a2");
        assert_eq!(value(&bob, q).await, "b1");
    }
    assert!(proxy.shared.stats.bypasses("row_security") >= 6);
    proxy.shutdown().await.unwrap();
}

/// Runs `[Parse s1] Bind s1 Execute Sync` with the argument 1 and returns the
/// first column of the first row, or the SQLSTATE of an error.
async fn run_s1(raw: &mut Raw, parse: Option<&str>) -> String {
    // One write, as drivers send a batch: a batch that arrives in pieces
    // is forwarded as it comes.
    let mut batch = Vec::new();
    if let Some(sql) = parse {
        let mut body = b"s1\0".to_vec();
        body.extend_from_slice(sql.as_bytes());
        body.extend_from_slice(&[0, 0, 0]);
        batch.extend(message(b'P', &body));
    }
    batch.extend(message(b'B', b"\0s1\0\0\0\0\x01\0\0\0\x011\0\0"));
    batch.extend(message(b'E', b"\0\0\0\0\0"));
    batch.extend(message(b'S', b""));
    raw.send(&batch).await;
    let mut answer = String::from("(no row)");
    for (tag, body) in raw.read_until(b'Z').await {
        match tag {
            b'D' if answer == "(no row)" => {
                let len = i32::from_be_bytes([body[2], body[3], body[4], body[5]]) as usize;
                answer = String::from_utf8_lossy(&body[6..6 + len]).into_owned();
            }
            b'E' => answer = common::raw::error_fields(&body).0,
            _ => {}
        }
    }
    answer
}

/// DISCARD ALL and DEALLOCATE free statement names; one prepared again with
/// other SQL must run that SQL, never be keyed (or served) as the old one.
#[tokio::test]
async fn statement_names_reused_after_discard_or_deallocate_run_their_new_sql() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "cache_discard",
        "CREATE TABLE t (id int PRIMARY KEY, v text, w text); INSERT INTO t VALUES (1, 'old', 'new');",
    );
    let proxy = proxy(cluster).await;
    let mut raw = Raw::login_to(proxy.addr, "postgres", &db).await;

    assert_eq!(
        run_s1(&mut raw, Some("SELECT v FROM t WHERE id = $1")).await,
        "old"
    );
    assert_eq!(run_s1(&mut raw, None).await, "old");
    assert!(
        proxy.shared.stats.queries("hit") >= 1,
        "the second run was a hit"
    );

    raw.send(&message(b'Q', b"DISCARD ALL\0")).await;
    raw.read_until(b'Z').await;
    assert_eq!(run_s1(&mut raw, None).await, "26000", "s1 is gone");
    assert_eq!(
        run_s1(&mut raw, Some("SELECT w FROM t WHERE id = $1")).await,
        "new"
    );
    assert_eq!(run_s1(&mut raw, None).await, "new");

    raw.send(&message(b'Q', b"DEALLOCATE s1\0")).await;
    raw.read_until(b'Z').await;
    assert_eq!(run_s1(&mut raw, None).await, "26000", "s1 is gone");
    assert_eq!(
        run_s1(&mut raw, Some("SELECT v || '2' FROM t WHERE id = $1")).await,
        "old2"
    );
    assert_eq!(run_s1(&mut raw, None).await, "old2");
    proxy.shutdown().await.unwrap();
}

/// `DEALLOCATE name` of a statement the proxy answered from the cache (so
/// the server never prepared it) succeeds as it would against the server,
/// and the client sees nothing of how.
#[tokio::test]
async fn deallocating_a_statement_answered_from_the_cache_succeeds() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "cache_dealloc_local",
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one');",
    );
    let proxy = proxy(cluster).await;
    let mut raw = Raw::login_to(proxy.addr, "postgres", &db).await;
    let sql = "SELECT v FROM t WHERE id = $1";
    assert_eq!(run_s1(&mut raw, Some(sql)).await, "one");
    raw.send(&message(b'Q', b"DEALLOCATE s1\0")).await;
    raw.read_until(b'Z').await;
    let hits = proxy.shared.stats.queries("hit");
    // Prepared again under the same name: answered from the cache, so the
    // server does not have s1 now.
    assert_eq!(run_s1(&mut raw, Some(sql)).await, "one");
    assert_eq!(proxy.shared.stats.queries("hit"), hits + 1);

    raw.send(&message(b'Q', b"DEALLOCATE s1\0")).await;
    let answer = raw.read_until(b'Z').await;
    let tags: String = answer.iter().map(|(t, _)| *t as char).collect();
    assert_eq!(
        tags, "CZ",
        "only CommandComplete and ReadyForQuery: {answer:?}"
    );
    assert_eq!(&answer[0].1[..], b"DEALLOCATE\0");
    assert_eq!(answer[1].1, b"I", "idle again");
    assert_eq!(run_s1(&mut raw, None).await, "26000", "s1 is gone");
    // The session goes on normally.
    raw.send(&message(b'Q', b"SELECT 41 + 1\0")).await;
    let answer = raw.read_until(b'Z').await;
    assert!(answer.iter().any(|(t, b)| *t == b'D' && b.ends_with(b"42")));
    proxy.shutdown().await.unwrap();
}
