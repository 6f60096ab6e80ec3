//! The change feed: writes made straight on the server (not through the
//! proxy) invalidate what the proxy cached, within a bound; the feed leaves
//! no replication slot behind.

mod common;

use std::time::{Duration, Instant};

use common::binary::Binary;
use common::feed::{
    cached, fresh_within_bound, proxy_with_feed, terminate_walsender, wait_for_feed,
};
use common::{connect, proxy_with, setup_db, value};
use pgcache::feed::ChangeFeedMode;
use pgcache::{Proxy, ProxyConfig, ProxyHandle};
use testkit::{Cluster, HbaMethod, PasswordKind};

/// A proxy whose service account (the `--upstream` user) is `user`.
async fn proxy_as(
    cluster: &Cluster,
    user: &str,
    password: &str,
    mode: ChangeFeedMode,
) -> ProxyHandle {
    let upstream = cluster
        .url(user, Some(password), "postgres")
        .parse()
        .expect("valid upstream url");
    let mut config = ProxyConfig::new("127.0.0.1:0".parse().unwrap(), upstream);
    config.change_feed = mode;
    config.policy = Some(common::relaxed_lag_policy());
    Proxy::bind(config).await.expect("proxy binds").spawn()
}

#[tokio::test]
async fn direct_writes_invalidate_through_the_feed() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "feed_direct",
        "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');
         CREATE TABLE \"Odd Name\" (v int); INSERT INTO \"Odd Name\" VALUES (1);",
    );
    let proxy = proxy_with_feed(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;

    let one = "SELECT v FROM kv WHERE k = 1";
    cached(&proxy, &client, one, "one").await;
    direct
        .batch_execute("UPDATE kv SET v = 'updated' WHERE k = 1")
        .await
        .unwrap();
    fresh_within_bound(&client, one, "updated").await;

    let count = "SELECT count(*)::text FROM kv";
    cached(&proxy, &client, count, "1").await;
    direct
        .batch_execute("INSERT INTO kv VALUES (2, 'two')")
        .await
        .unwrap();
    fresh_within_bound(&client, count, "2").await;

    cached(&proxy, &client, count, "2").await;
    direct
        .batch_execute("DELETE FROM kv WHERE k = 2")
        .await
        .unwrap();
    fresh_within_bound(&client, count, "1").await;

    cached(&proxy, &client, count, "1").await;
    direct.batch_execute("TRUNCATE kv").await.unwrap();
    fresh_within_bound(&client, count, "0").await;

    // A quoted name in the stream resolves like any other.
    let odd = "SELECT sum(v)::text FROM \"Odd Name\"";
    cached(&proxy, &client, odd, "1").await;
    direct
        .batch_execute("BEGIN; UPDATE \"Odd Name\" SET v = 5; COMMIT")
        .await
        .unwrap();
    fresh_within_bound(&client, odd, "5").await;

    // The admin console shows the feed.
    let console = connect(cluster, proxy.addr, "pgcache").await;
    let rows: Vec<_> = console
        .simple_query("SHOW FEED")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .collect();
    let ours = rows
        .iter()
        .find(|row| row.get("database") == Some(db.as_str()))
        .expect("SHOW FEED lists the database");
    assert_eq!(ours.get("up"), Some("true"));
    assert!(ours.get("slot").unwrap_or("").starts_with("pgcache_"));
    assert!(ours.get("transactions").unwrap().parse::<u64>().unwrap() >= 5);
    assert!(
        proxy
            .shared
            .stats
            .feed
            .transactions
            .with_label_values(&[&db])
            .get()
            >= 5
    );
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn keyless_tables_still_take_updates_and_deletes_and_invalidate() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "feed_keyless",
        "CREATE TABLE notes (v text); INSERT INTO notes VALUES ('a');",
    );
    let proxy = proxy_with_feed(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;

    let q = "SELECT string_agg(v, ',' ORDER BY v) FROM notes";
    cached(&proxy, &client, q, "a").await;
    // With a publication of UPDATE/DELETE these would fail on a table
    // without a replica identity; the feed must not change that.
    direct
        .batch_execute("UPDATE notes SET v = 'b'")
        .await
        .expect("UPDATE of a keyless table works with the feed on");
    fresh_within_bound(&client, q, "b").await;

    direct
        .batch_execute("CREATE TABLE later (v text); INSERT INTO later VALUES ('x')")
        .await
        .unwrap();
    direct
        .batch_execute(
            "DELETE FROM later; DELETE FROM notes WHERE v = 'b'; INSERT INTO notes VALUES ('c')",
        )
        .await
        .expect("DELETE of a keyless table made after the feed started works");
    fresh_within_bound(&client, q, "c").await;
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stopped_proxy_leaves_no_slot() {
    let cluster = Cluster::shared();
    let db = setup_db(cluster, "feed_slots", "CREATE TABLE t (v int)");
    let mut proxy = Binary::start(cluster, false, &["--change-feed", "auto"]).await;
    let addr = proxy.addr;
    let child = &mut proxy.child;
    let ours = format!("slot_name LIKE 'pgcache\\_{}\\_%'", child.id());
    let slots = format!("SELECT count(*)::text FROM pg_replication_slots WHERE {ours}");
    let direct = connect(cluster, cluster.addr(), "postgres").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let client = loop {
        let mut config = common::config_for(cluster, addr, &db);
        config.connect_timeout(Duration::from_secs(1));
        if let Ok((client, connection)) = config.connect(tokio_postgres::NoTls).await {
            tokio::spawn(connection);
            break client;
        }
        assert!(Instant::now() < deadline, "the proxy never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    value(&client, "SELECT count(*)::text FROM t").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while value(&direct, &slots).await != "1" {
        assert!(Instant::now() < deadline, "the feed never made its slot");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        value(
            &direct,
            &format!("SELECT temporary::text FROM pg_replication_slots WHERE {ours}")
        )
        .await,
        "true"
    );

    // Killed under load: clients reading and writing through it, and a
    // writer on the server keeping the stream busy.
    let mut load = Vec::new();
    for n in 0..4 {
        let mut config = common::config_for(cluster, addr, &db);
        config.connect_timeout(Duration::from_secs(1));
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        load.push(tokio::spawn(async move {
            for i in 0.. {
                let sql = if (i + n) % 3 == 0 {
                    "INSERT INTO t VALUES (1)"
                } else {
                    "SELECT count(*) FROM t"
                };
                if client.simple_query(sql).await.is_err() {
                    return i;
                }
            }
            0
        }));
    }
    let writer = connect(cluster, cluster.addr(), &db).await;
    load.push(tokio::spawn(async move {
        for i in 0.. {
            if writer
                .simple_query("INSERT INTO t VALUES (2)")
                .await
                .is_err()
                || i > 100_000
            {
                return i;
            }
        }
        0
    }));
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().expect("kill pgcache");
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while value(&direct, &slots).await != "0" {
        assert!(
            Instant::now() < deadline,
            "a pgcache slot is left after the proxy died"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // None of its connections stays either (catalog, visibility checks).
    let ours = format!(
        "SELECT count(*)::text FROM pg_stat_activity WHERE datname = '{db}' \
         AND application_name LIKE 'pgcache%'"
    );
    while value(&direct, &ours).await != "0" {
        assert!(
            Instant::now() < deadline,
            "a pgcache connection is left after the proxy died"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for task in load.drain(..4) {
        assert!(task.await.unwrap() > 0, "the load ran through the proxy");
    }
}

/// The visibility race, made wide on purpose: with a synchronous standby
/// that never comes, a committing backend has flushed its commit record (the
/// feed decodes it) but stays in the proc array (no snapshot sees it) until
/// its wait is cancelled. A read through the proxy in that window stores the
/// old row under generations taken after the feed's first bump. Only the
/// second bump, once the commit is visible, can kill that entry.
#[tokio::test]
async fn a_commit_decoded_before_it_is_visible_does_not_leave_a_stale_entry() {
    let cluster = Cluster::start(
        testkit::ClusterOptions::scram().setting("synchronous_standby_names", "phantom"),
    )
    .expect("a cluster of our own");
    let db = setup_db(
        &cluster,
        "feed_race",
        "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'old');",
    );
    let proxy = proxy_with_feed(&cluster).await;
    let client = connect(&cluster, proxy.addr, &db).await;
    let direct = connect(&cluster, cluster.addr(), &db).await;
    let writer = connect(&cluster, cluster.addr(), &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;
    let q = "SELECT v FROM kv WHERE k = 1";
    cached(&proxy, &client, q, "old").await;

    let transactions = proxy
        .shared
        .stats
        .feed
        .transactions
        .with_label_values(&[&db]);
    let before = transactions.get();
    let writer_pid = value(&writer, "SELECT pg_backend_pid()::text").await;
    // The testkit's clusters default to synchronous_commit = off, which never
    // waits for a standby; this session waits for ever.
    writer
        .batch_execute("SET synchronous_commit = on")
        .await
        .unwrap();
    let commit = tokio::spawn(async move {
        writer
            .batch_execute("UPDATE kv SET v = 'new' WHERE k = 1")
            .await
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while transactions.get() == before {
        assert!(
            Instant::now() < deadline,
            "the feed never decoded the commit"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Decoded, not visible: the proxy stores the old row again.
    assert_eq!(
        value(&direct, q).await,
        "old",
        "the commit is not visible yet"
    );
    cached(&proxy, &client, q, "old").await;

    // The standby wait ends; the commit becomes visible.
    direct
        .batch_execute(&format!("SELECT pg_cancel_backend({writer_pid})"))
        .await
        .unwrap();
    commit.await.unwrap().expect("the commit went through");
    assert_eq!(value(&direct, q).await, "new");
    fresh_within_bound(&client, q, "new").await;
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_feed_logs_in_with_scram_md5_and_cleartext_passwords() {
    let cluster = Cluster::shared();
    let db = setup_db(cluster, "feed_logins", "CREATE TABLE t (v int)");
    for (user, kind, method) in [
        ("feed_scram", PasswordKind::Scram, HbaMethod::Scram),
        ("feed_md5", PasswordKind::Md5, HbaMethod::Md5),
        ("feed_cleartext", PasswordKind::Scram, HbaMethod::Password),
    ] {
        cluster
            .create_user_with_method(user, "feed-secret", kind, method)
            .unwrap();
        cluster
            .psql("postgres", &format!("ALTER ROLE {user} REPLICATION"))
            .unwrap();
        let proxy = proxy_as(cluster, user, "feed-secret", ChangeFeedMode::Auto).await;
        let client = connect(cluster, proxy.addr, &db).await;
        value(&client, "SELECT 1").await;
        wait_for_feed(&proxy, &db).await;
        proxy.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn required_mode_serves_hits_only_while_the_feed_streams() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "feed_required",
        "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');",
    );
    let q = "SELECT v FROM kv WHERE k = 1";

    // Without REPLICATION the stream never starts: everything passes through.
    cluster
        .create_user("feed_norepl", "feed-secret", PasswordKind::Scram)
        .unwrap();
    cluster
        .psql("postgres", "ALTER ROLE feed_norepl NOREPLICATION")
        .unwrap();
    let proxy = proxy_as(
        cluster,
        "feed_norepl",
        "feed-secret",
        ChangeFeedMode::Required,
    )
    .await;
    let client = connect(cluster, proxy.addr, &db).await;
    let restarts = proxy
        .shared
        .stats
        .feed
        .restarts
        .with_label_values(&[&db, "privilege"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while restarts.get() == 0 {
        assert_eq!(value(&client, q).await, "one");
        assert!(
            Instant::now() < deadline,
            "the feed never reported its failure"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..3 {
        assert_eq!(value(&client, q).await, "one");
    }
    assert_eq!(proxy.shared.stats.queries("hit"), 0);
    assert!(proxy.shared.stats.bypasses("feed_down") >= 3);
    proxy.shutdown().await.unwrap();

    // With it, hits come once the stream is up.
    let proxy = proxy_with(cluster, |c| c.change_feed = ChangeFeedMode::Required).await;
    let client = connect(cluster, proxy.addr, &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;
    cached(&proxy, &client, q, "one").await;
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_terminated_walsender_restarts_the_feed_and_nothing_is_missed() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "feed_terminated",
        "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');",
    );
    let proxy = proxy_with_feed(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;
    let q = "SELECT v FROM kv WHERE k = 1";
    cached(&proxy, &client, q, "one").await;

    let terminated = terminate_walsender(&direct, &db).await;
    assert_eq!(terminated, "1");
    // Made while no stream may be listening: the restart must cover it.
    direct
        .batch_execute("UPDATE kv SET v = 'two' WHERE k = 1")
        .await
        .unwrap();
    fresh_within_bound(&client, q, "two").await;

    let restarts = proxy
        .shared
        .stats
        .feed
        .restarts
        .with_label_values(&[&db, "server"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while restarts.get() == 0 {
        assert!(Instant::now() < deadline, "the loss was not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for_feed(&proxy, &db).await;
    cached(&proxy, &client, q, "two").await;
    direct
        .batch_execute("UPDATE kv SET v = 'three' WHERE k = 1")
        .await
        .unwrap();
    fresh_within_bound(&client, q, "three").await;
    proxy.shutdown().await.unwrap();
}

/// A feed lost in one database drops that database's entries only.
#[tokio::test]
async fn a_feed_loss_drops_only_its_own_databases_entries() {
    let cluster = Cluster::shared();
    let schema = "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');";
    let lost = setup_db(cluster, "feed_loss_here", schema);
    let kept = setup_db(cluster, "feed_loss_elsewhere", schema);
    let proxy = proxy_with_feed(cluster).await;
    let lost_client = connect(cluster, proxy.addr, &lost).await;
    let kept_client = connect(cluster, proxy.addr, &kept).await;
    let direct = connect(cluster, cluster.addr(), &lost).await;
    value(&lost_client, "SELECT 1").await;
    value(&kept_client, "SELECT 1").await;
    wait_for_feed(&proxy, &lost).await;
    wait_for_feed(&proxy, &kept).await;
    let q = "SELECT v FROM kv WHERE k = 1";
    cached(&proxy, &lost_client, q, "one").await;
    cached(&proxy, &kept_client, q, "one").await;
    let entries = proxy.shared.engine.store.len();

    let restarts = proxy
        .shared
        .stats
        .feed
        .restarts
        .with_label_values(&[&lost, "server"]);
    terminate_walsender(&direct, &lost).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while restarts.get() == 0 {
        assert!(Instant::now() < deadline, "the loss was not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for_feed(&proxy, &lost).await;
    // The other database's entry is still served, without going upstream.
    let hits = proxy.shared.stats.queries("hit");
    assert_eq!(value(&kept_client, q).await, "one");
    assert_eq!(
        proxy.shared.stats.queries("hit"),
        hits + 1,
        "kept entry served"
    );
    // The lost database's entry was dropped: its next read is a miss.
    let misses = proxy.shared.stats.queries("miss");
    assert_eq!(value(&lost_client, q).await, "one");
    assert_eq!(
        proxy.shared.stats.queries("miss"),
        misses + 1,
        "lost entry dropped"
    );
    let feed_restart = proxy
        .shared
        .stats
        .invalidations
        .with_label_values(&["(database)", "feed_restart"])
        .get();
    assert!(feed_restart >= 2, "{feed_restart}");
    assert!(entries >= 2);
    proxy.shutdown().await.unwrap();
}

/// Values a writer saw acknowledged, with when.
type Acknowledged = Vec<(i64, Instant)>;

/// Many writers straight on the server and many readers through the proxy,
/// for a few seconds: no read ever misses a commit acknowledged more than
/// `max_lag` before it began. (The race test above forces the one window
/// with a synchronous standby; this one looks for any window, the
/// visibility race and the lag gate together, without a trick.) Midway the
/// walsender is terminated: the reads go on through the loss, the gap and
/// the new stream's start, and the invariant holds at each of them. A
/// second table, `quiet`, is written once only, in the gap, where no stream
/// can see it: `kv` is written every few ms, so any later decoded write
/// would hide a missed one, but nothing after the gap bumps `quiet`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_load_no_read_misses_a_commit_older_than_max_lag() {
    use std::sync::Arc;

    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "feed_stress",
        "CREATE TABLE kv (k int PRIMARY KEY, v bigint); \
         INSERT INTO kv SELECT k, 0 FROM generate_series(1, 4) AS k; \
         CREATE TABLE quiet (v bigint); INSERT INTO quiet VALUES (0);",
    );
    let proxy = proxy_with_feed(cluster).await;
    let warm = connect(cluster, proxy.addr, &db).await;
    value(&warm, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;
    let max_lag = proxy.shared.engine.policy.load().max_lag();
    // Scheduling noise between the writer's acknowledgement and its record.
    let margin = Duration::from_millis(20);
    let run_for = Duration::from_secs(5);
    let keys = 4;
    // Per key, and last `quiet`: the values acknowledged, with when.
    let history: Arc<Vec<parking_lot::Mutex<Acknowledged>>> = Arc::new(
        (0..=keys)
            .map(|_| parking_lot::Mutex::new(vec![(0, Instant::now())]))
            .collect(),
    );
    let began = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..2 {
        let (history, db) = (history.clone(), db.clone());
        tasks.push(tokio::spawn(async move {
            let direct = connect(cluster, cluster.addr(), &db).await;
            let mut n = 0u64;
            while began.elapsed() < run_for {
                let k = (writer + 2 * (n % 2)) as usize % keys;
                let row = direct
                    .query_one(
                        "UPDATE kv SET v = v + 1 WHERE k = $1 RETURNING v",
                        &[&(k as i32 + 1)],
                    )
                    .await
                    .unwrap();
                history[k].lock().push((row.get(0), Instant::now()));
                n += 1;
                tokio::time::sleep(Duration::from_millis(3 + n % 17)).await;
            }
            0u64
        }));
    }
    for reader in 0..4 {
        let (history, db, addr) = (history.clone(), db.clone(), proxy.addr);
        tasks.push(tokio::spawn(async move {
            let client = connect(cluster, addr, &db).await;
            let mut reads = 0u64;
            while began.elapsed() < run_for {
                let k = (reader + reads as usize) % (keys + 1);
                let sql = if k == keys {
                    "SELECT v FROM quiet".to_string()
                } else {
                    format!("SELECT v FROM kv WHERE k = {}", k + 1)
                };
                let started = Instant::now();
                let got: i64 = value(&client, &sql).await.parse().unwrap();
                let floor = history[k]
                    .lock()
                    .iter()
                    .rev()
                    .find(|(_, at)| *at + max_lag + margin < started)
                    .map_or(0, |(v, _)| *v);
                assert!(
                    got >= floor,
                    "{sql}: read {got} at {:?}, but {floor} was acknowledged more than max_lag before",
                    started - began
                );
                reads += 1;
            }
            reads
        }));
    }
    let restarts = proxy
        .shared
        .stats
        .feed
        .restarts
        .with_label_values(&[&db, "server"]);
    let terminator = {
        let (history, db, shared) = (history.clone(), db.clone(), proxy.shared.clone());
        let (restarts, up) = (
            restarts.clone(),
            shared.stats.feed.up.with_label_values(&[&db]),
        );
        tokio::spawn(async move {
            // Early: a missed write shows only once it is max_lag old.
            tokio::time::sleep(run_for / 4).await;
            let direct = connect(cluster, cluster.addr(), &db).await;
            let terminated = terminate_walsender(&direct, &db).await;
            assert_eq!(terminated, "1", "no walsender to terminate");
            let row = direct
                .query_one("UPDATE quiet SET v = v + 1 RETURNING v", &[])
                .await
                .unwrap();
            history[keys].lock().push((row.get(0), Instant::now()));
            // The hits from here on are served by the new stream.
            while restarts.get() == 0 || up.get() != 1 {
                assert!(
                    began.elapsed() < run_for,
                    "the feed was not back within the run"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            shared.stats.queries("hit")
        })
    };
    let mut reads = 0;
    for task in tasks {
        reads += task.await.unwrap();
    }
    let hits_when_back = terminator.await.unwrap();
    assert!(reads > 200, "only {reads} reads");
    assert!(restarts.get() >= 1, "the run saw no feed restart");
    let hits = proxy.shared.stats.queries("hit");
    assert!(
        hits > hits_when_back + 20,
        "only {} hits after the feed came back",
        hits - hits_when_back
    );
    assert!(hits > 50, "the cache served only {hits} of {reads} reads");
    proxy.shutdown().await.unwrap();
}

/// Sends `signal` to a server process (the tests run as root or as the
/// server's owner).
fn signal(pid: &str, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Resumes a stopped walsender however the test ends.
struct Resume(String);

impl Drop for Resume {
    fn drop(&mut self) {
        signal(&self.0, "CONT");
    }
}

/// A stalled stream (its walsender stopped: no error and no message, as
/// with a half-open network path) stops serving hits once it is `max_lag`
/// behind: a write made meanwhile is never read stale past that bound.
#[tokio::test]
async fn a_stalled_feed_serves_no_hit_past_max_lag() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "feed_stalled",
        "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');",
    );
    let policy = common::default_lag_policy();
    let proxy = proxy_with(cluster, move |c| {
        c.change_feed = ChangeFeedMode::Auto;
        c.policy = Some(policy);
    })
    .await;
    let client = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;
    let q = "SELECT v FROM kv WHERE k = 1";
    cached(&proxy, &client, q, "one").await;
    let max_lag = proxy.shared.engine.policy.load().max_lag();
    assert_eq!(max_lag, Duration::from_millis(250), "the default");

    let walsender = value(
        &direct,
        &format!(
            "SELECT active_pid::text FROM pg_replication_slots \
             WHERE slot_name LIKE 'pgcache\\_{}\\_%' AND database = '{db}'",
            std::process::id()
        ),
    )
    .await;
    signal(&walsender, "STOP");
    let resume = Resume(walsender);
    direct
        .batch_execute("UPDATE kv SET v = 'two' WHERE k = 1")
        .await
        .unwrap();
    let written = Instant::now();
    // Within max_lag the old value may still be served; past it, never.
    tokio::time::sleep(max_lag + Duration::from_millis(50)).await;
    let lagging = proxy.shared.stats.bypasses("feed_lagging");
    let hits = proxy.shared.stats.queries("hit");
    while written.elapsed() < Duration::from_secs(2) {
        assert_eq!(
            value(&client, q).await,
            "two",
            "a stale read while the feed stalls"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(proxy.shared.stats.bypasses("feed_lagging") > lagging);
    assert_eq!(
        proxy.shared.stats.queries("hit"),
        hits,
        "no hit while stalled"
    );
    let seconds = proxy
        .shared
        .stats
        .feed
        .lag_seconds
        .with_label_values(&[&db])
        .get();
    assert!(seconds > max_lag.as_secs_f64(), "lag gauge {seconds}");

    // Resumed, it catches up and the cache serves again.
    drop(resume);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hits = proxy.shared.stats.queries("hit");
        assert_eq!(value(&client, q).await, "two");
        if proxy.shared.stats.queries("hit") > hits {
            break;
        }
        assert!(Instant::now() < deadline, "no hit after the feed caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn partitions_cascades_copy_merge_and_open_transactions_made_on_the_server() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "feed_shapes",
        "CREATE TABLE events (at int, v text) PARTITION BY RANGE (at);
         CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (0) TO (100);
         CREATE TABLE events_high PARTITION OF events FOR VALUES FROM (100) TO (200);
         INSERT INTO events VALUES (1, 'a');
         CREATE TABLE parent (id int PRIMARY KEY);
         CREATE TABLE child (id int REFERENCES parent ON DELETE CASCADE);
         INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1);
         CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');
         CREATE TABLE other (v int); INSERT INTO other VALUES (1);",
    );
    let proxy = proxy_with_feed(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;

    // A write to a partition (the stream names the partition) is seen
    // through its parent.
    let parent_read = "SELECT string_agg(v, ',' ORDER BY at) FROM events";
    cached(&proxy, &client, parent_read, "a").await;
    direct
        .batch_execute("INSERT INTO events_high VALUES (150, 'b')")
        .await
        .unwrap();
    fresh_within_bound(&client, parent_read, "a,b").await;

    // An FK cascade's deletes are in the stream too.
    let children = "SELECT count(*)::text FROM child";
    cached(&proxy, &client, children, "1").await;
    direct
        .batch_execute("DELETE FROM parent WHERE id = 1")
        .await
        .unwrap();
    fresh_within_bound(&client, children, "0").await;

    // COPY FROM.
    let count = "SELECT count(*)::text FROM kv";
    cached(&proxy, &client, count, "1").await;
    let sink = direct.copy_in("COPY kv FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    futures_util::SinkExt::send(&mut sink, bytes::Bytes::from_static(b"2\ttwo\n3\tthree\n"))
        .await
        .unwrap();
    sink.finish().await.unwrap();
    fresh_within_bound(&client, count, "3").await;

    // MERGE.
    let one = "SELECT v FROM kv WHERE k = 1";
    cached(&proxy, &client, one, "one").await;
    direct
        .batch_execute(
            "MERGE INTO kv USING (VALUES (1, 'merged')) AS s(k, v) ON kv.k = s.k \
             WHEN MATCHED THEN UPDATE SET v = s.v",
        )
        .await
        .unwrap();
    fresh_within_bound(&client, one, "merged").await;

    // A transaction left open changes nothing seen; its COMMIT, both tables.
    let others = "SELECT sum(v)::text FROM other";
    cached(&proxy, &client, others, "1").await;
    cached(&proxy, &client, one, "merged").await;
    direct
        .batch_execute("BEGIN; UPDATE kv SET v = 'open' WHERE k = 1; UPDATE other SET v = 2")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(value(&client, one).await, "merged");
    direct.batch_execute("COMMIT").await.unwrap();
    fresh_within_bound(&client, one, "open").await;
    fresh_within_bound(&client, others, "2").await;
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_write_through_one_proxy_is_fresh_through_another() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "feed_two_proxies",
        "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');",
    );
    let a = proxy_with_feed(cluster).await;
    let b = proxy_with_feed(cluster).await;
    let through_a = connect(cluster, a.addr, &db).await;
    let through_b = connect(cluster, b.addr, &db).await;
    value(&through_b, "SELECT 1").await;
    wait_for_feed(&b, &db).await;
    let q = "SELECT v FROM kv WHERE k = 1";
    cached(&b, &through_b, q, "one").await;
    through_a
        .batch_execute("UPDATE kv SET v = 'two' WHERE k = 1")
        .await
        .unwrap();
    fresh_within_bound(&through_b, q, "two").await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

// Several threads: the restart blocks one, and the server's shutdown waits
// for the feed to confirm the WAL it was sent (a walsender's last step).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_the_feed_streams_again() {
    let cluster = Cluster::start(testkit::ClusterOptions::scram()).expect("a cluster of our own");
    let db = setup_db(
        &cluster,
        "feed_restart",
        "CREATE TABLE kv (k int PRIMARY KEY, v text); INSERT INTO kv VALUES (1, 'one');",
    );
    let proxy = proxy_with_feed(&cluster).await;
    let client = connect(&cluster, proxy.addr, &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;

    let began = Instant::now();
    tokio::task::block_in_place(|| cluster.restart()).expect("restart");
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "the shutdown waited {:?} for the feed",
        began.elapsed()
    );
    let restarts = || {
        pgcache::feed::FeedError::REASONS
            .iter()
            .map(|reason| {
                proxy
                    .shared
                    .stats
                    .feed
                    .restarts
                    .with_label_values(&[db.as_str(), reason])
                    .get()
            })
            .sum::<u64>()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while restarts() == 0 {
        assert!(Instant::now() < deadline, "the loss was not noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for_feed(&proxy, &db).await;

    let client = connect(&cluster, proxy.addr, &db).await;
    let direct = connect(&cluster, cluster.addr(), &db).await;
    let q = "SELECT v FROM kv WHERE k = 1";
    cached(&proxy, &client, q, "one").await;
    direct
        .batch_execute("UPDATE kv SET v = 'two' WHERE k = 1")
        .await
        .unwrap();
    fresh_within_bound(&client, q, "two").await;
    proxy.shutdown().await.unwrap();
}
