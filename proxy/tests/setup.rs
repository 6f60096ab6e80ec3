//! `pgcache setup`: what it installs, that it is idempotent and undoes
//! itself, that it says exactly what is missing, that it changes nothing a
//! user's statement does, and that DDL made around the proxy then reaches it
//! at its place in the change feed.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::feed::{cached, fresh_within_bound, proxy_with_feed, wait_for_feed};
use common::{connect, setup_db, stderr, stdout, value};
use pgcache::ProxyHandle;
use testkit::{Cluster, ClusterOptions, PasswordKind};
use tokio_postgres::Client;

/// Runs `pgcache setup` with `args`.
async fn setup(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pgcache"))
            .arg("setup")
            .args(&args)
            .env_remove("PGCACHE_UPSTREAM")
            .env_remove("PGCACHE_ADMIN_URL")
            .output()
            .expect("run pgcache setup")
    })
    .await
    .unwrap()
}

fn superuser_url(cluster: &Cluster, db: &str) -> String {
    cluster.url(cluster.superuser(), Some(cluster.superuser_password()), db)
}

/// `pgcache setup --upstream <superuser url of db> extra...`, which must succeed.
async fn setup_ok(cluster: &Cluster, db: &str, extra: &[&str]) -> String {
    let mut args = vec!["--upstream".to_string(), superuser_url(cluster, db)];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = setup(args).await;
    assert!(
        out.status.success(),
        "setup {extra:?} failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// How many of pgcache's event triggers `db` has, and whether its schema exists.
async fn installed(cluster: &Cluster, db: &str) -> (String, String) {
    let direct = connect(cluster, cluster.addr(), db).await;
    let triggers = value(
        &direct,
        "SELECT count(*)::text FROM pg_event_trigger WHERE evtname LIKE 'pgcache%'",
    )
    .await;
    let schema = value(
        &direct,
        "SELECT count(*)::text FROM pg_namespace WHERE nspname = 'pgcache'",
    )
    .await;
    (triggers, schema)
}

/// Returns once the feed has handled everything committed on the server so
/// far: a write to `marker` made now is seen through the proxy (the stream
/// is in commit order, and waits for each DDL's catalog reload).
async fn feed_caught_up(proxy: &ProxyHandle, client: &Client, direct: &Client, step: u32) {
    cached(
        proxy,
        client,
        "SELECT max(n)::text FROM marker",
        &(step - 1).to_string(),
    )
    .await;
    direct
        .batch_execute(&format!("INSERT INTO marker VALUES ({step})"))
        .await
        .unwrap();
    fresh_within_bound(client, "SELECT max(n)::text FROM marker", &step.to_string()).await;
}

#[tokio::test]
async fn setup_is_idempotent_has_a_dry_run_and_removes_itself() {
    let cluster = Cluster::shared();
    let db = setup_db(cluster, "setup_cycle", "CREATE TABLE t (v int)");

    let dry = setup_ok(cluster, &db, &["--dry-run"]).await;
    assert!(dry.contains("dry run"), "{dry}");
    assert!(
        dry.contains("CREATE EVENT TRIGGER pgcache_ddl_command_end ON ddl_command_end"),
        "{dry}"
    );
    assert!(
        dry.contains("CREATE EVENT TRIGGER pgcache_sql_drop ON sql_drop"),
        "{dry}"
    );
    assert!(dry.contains("SET search_path = pg_catalog"), "{dry}");
    assert_eq!(installed(cluster, &db).await, ("0".into(), "0".into()));

    let first = setup_ok(cluster, &db, &[]).await;
    assert!(first.contains("CREATE SCHEMA pgcache;"), "{first}");
    assert!(first.contains("set up (7 statements)"), "{first}");
    assert_eq!(installed(cluster, &db).await, ("2".into(), "1".into()));
    let direct = connect(cluster, cluster.addr(), &db).await;
    assert_eq!(
        value(
            &direct,
            "SELECT string_agg(p.proname || ':' || p.prosecdef || ':' || array_to_string(p.proconfig, ','), ' ' ORDER BY p.proname) \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'pgcache'"
        )
        .await,
        "announce_ddl:true:search_path=pg_catalog announce_drop:true:search_path=pg_catalog"
    );
    // The schema is the superuser's, and nobody else may use it.
    assert_eq!(
        value(
            &direct,
            "SELECT pg_get_userbyid(nspowner) = current_user \
                    AND NOT EXISTS (SELECT 1 FROM aclexplode(nspacl) WHERE grantee = 0) \
             FROM pg_namespace WHERE nspname = 'pgcache'"
        )
        .await,
        "t"
    );

    let second = setup_ok(cluster, &db, &[]).await;
    assert!(second.contains("already set up; nothing to do"), "{second}");
    assert!(!second.contains("CREATE"), "{second}");

    // A disabled trigger is enabled again, and only that.
    direct
        .batch_execute("ALTER EVENT TRIGGER pgcache_sql_drop DISABLE")
        .await
        .unwrap();
    let repair = setup_ok(cluster, &db, &[]).await;
    assert!(
        repair.contains("ALTER EVENT TRIGGER pgcache_sql_drop ENABLE;"),
        "{repair}"
    );
    assert!(repair.contains("(1 statements)"), "{repair}");

    // A dry-run removal removes nothing.
    let dry_remove = setup_ok(cluster, &db, &["--remove", "--dry-run"]).await;
    assert!(dry_remove.contains("DROP SCHEMA pgcache;"), "{dry_remove}");
    assert_eq!(installed(cluster, &db).await, ("2".into(), "1".into()));

    let removed = setup_ok(cluster, &db, &["--remove"]).await;
    assert!(
        removed.contains("DROP EVENT TRIGGER pgcache_ddl_command_end;"),
        "{removed}"
    );
    assert!(removed.contains("removed (5 statements)"), "{removed}");
    assert_eq!(installed(cluster, &db).await, ("0".into(), "0".into()));
    let again = setup_ok(cluster, &db, &["--remove"]).await;
    assert!(again.contains("nothing to do"), "{again}");
    assert!(!again.contains("DROP"), "{again}");

    // Someone else's schema named pgcache is left alone, and said so.
    direct.batch_execute("CREATE SCHEMA pgcache").await.unwrap();
    let out = setup(vec!["--upstream".into(), superuser_url(cluster, &db)]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not made by pgcache setup"),
        "{}",
        stderr(&out)
    );
    assert_eq!(installed(cluster, &db).await, ("0".into(), "1".into()));
}

#[tokio::test]
async fn setup_says_exactly_what_is_missing() {
    let cluster = Cluster::shared();
    let db = setup_db(cluster, "setup_privileges", "CREATE TABLE t (v int)");
    cluster
        .create_user("setup_plain", "plain-pw", PasswordKind::Scram)
        .unwrap();
    cluster
        .psql(
            "postgres",
            "ALTER ROLE setup_plain NOSUPERUSER NOREPLICATION",
        )
        .unwrap();

    // Not a superuser, and (as the service account) no REPLICATION.
    let out = setup(vec![
        "--upstream".into(),
        cluster.url("setup_plain", Some("plain-pw"), &db),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("role \"setup_plain\" is not a superuser: creating or dropping event triggers needs one"),
        "{err}"
    );
    assert!(
        err.contains("ALTER ROLE \"setup_plain\" REPLICATION"),
        "{err}"
    );
    assert!(err.contains("nothing installed"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A dry run shows the statements all the same, and fails the same way.
    let out = setup(vec![
        "--upstream".into(),
        cluster.url("setup_plain", Some("plain-pw"), &db),
        "--dry-run".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("CREATE EVENT TRIGGER pgcache_ddl_command_end"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("is not a superuser"),
        "{}",
        stderr(&out)
    );

    // Run as a superuser for a service account without REPLICATION.
    let out = setup(vec![
        "--upstream".into(),
        cluster.url("setup_plain", Some("plain-pw"), &db),
        "--admin-url".into(),
        superuser_url(cluster, &db),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(!err.contains("superuser:"), "{err}");
    assert!(
        err.contains("the service account \"setup_plain\" (the --upstream user) lacks REPLICATION"),
        "{err}"
    );
    assert_eq!(installed(cluster, &db).await, ("0".into(), "0".into()));

    // Granted: it goes through, as the superuser.
    cluster
        .psql("postgres", "ALTER ROLE setup_plain REPLICATION")
        .unwrap();
    let out = setup(vec![
        "--upstream".into(),
        cluster.url("setup_plain", Some("plain-pw"), &db),
        "--admin-url".into(),
        superuser_url(cluster, &db),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(installed(cluster, &db).await, ("2".into(), "1".into()));

    // DDL by a role that is no superuser still works with the triggers in.
    cluster
        .psql(&db, "GRANT CREATE ON SCHEMA public TO setup_plain")
        .unwrap();
    let plain = common::connect_as(cluster.addr(), "setup_plain", "plain-pw", &db).await;
    plain
        .batch_execute(
            "CREATE TABLE mine (v int); ALTER TABLE mine ADD COLUMN w int; DROP TABLE mine",
        )
        .await
        .expect("a non-superuser's DDL works with setup done");

    // A server that is unreachable: a message, no panic.
    let out = setup(vec![
        "--upstream".into(),
        format!("postgres://nobody@127.0.0.1:{}/x", testkit::free_port()),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
}

/// With setup done and `wal_level` lowered afterwards, users' DDL still
/// works; setup then refuses, naming the setting and its fix, while
/// `--remove` (which does not need it) works.
#[tokio::test]
async fn setup_needs_wal_level_logical_and_user_ddl_survives_it_lowered() {
    let cluster = Cluster::start(ClusterOptions::scram()).expect("a cluster of our own");
    setup_ok(&cluster, "postgres", &[]).await;
    cluster
        .psql("postgres", "ALTER SYSTEM SET wal_level = replica")
        .unwrap();
    cluster.restart().expect("restart with wal_level = replica");
    let direct = connect(&cluster, cluster.addr(), "postgres").await;
    assert_eq!(value(&direct, "SHOW wal_level").await, "replica");
    direct
        .batch_execute("CREATE TABLE after_lowering (v int); DROP TABLE after_lowering")
        .await
        .expect("DDL works with the triggers in and wal_level lowered");

    let out = setup(vec![
        "--upstream".into(),
        superuser_url(&cluster, "postgres"),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("wal_level is \"replica\"")
            && err.contains("ALTER SYSTEM SET wal_level = logical, then restart the server"),
        "{err}"
    );
    assert!(
        !err.contains("superuser:") && !err.contains("REPLICATION"),
        "{err}"
    );
    setup_ok(&cluster, "postgres", &["--remove"]).await;
    assert_eq!(
        installed(&cluster, "postgres").await,
        ("0".into(), "0".into())
    );
}

#[tokio::test]
async fn setup_all_databases_skips_templates_and_what_refuses_connections() {
    let cluster = Cluster::start(ClusterOptions::scram()).expect("a cluster of our own");
    cluster.create_database("one").unwrap();
    cluster.create_database("two").unwrap();
    cluster.create_database("closed").unwrap();
    cluster
        .psql("postgres", "ALTER DATABASE closed ALLOW_CONNECTIONS false")
        .unwrap();
    let out = setup_ok(&cluster, "postgres", &["--all-databases"]).await;
    for db in ["one", "two", "postgres"] {
        assert!(out.contains(&format!("database \"{db}\": set up")), "{out}");
        assert_eq!(installed(&cluster, db).await, ("2".into(), "1".into()));
    }
    assert!(!out.contains("template"), "{out}");
    assert!(!out.contains("closed"), "{out}");
    let again = setup_ok(&cluster, "postgres", &["--all-databases"]).await;
    assert_eq!(
        again.matches("already set up; nothing to do").count(),
        3,
        "{again}"
    );
    setup_ok(&cluster, "postgres", &["--all-databases", "--remove"]).await;
    for db in ["one", "two", "postgres"] {
        assert_eq!(installed(&cluster, db).await, ("0".into(), "0".into()));
    }
}

#[tokio::test]
async fn keyless_tables_take_updates_and_deletes_with_setup_done_and_invalidate() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "setup_keyless",
        "CREATE TABLE before (v text); INSERT INTO before VALUES ('a');",
    );
    setup_ok(cluster, &db, &[]).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    direct
        .batch_execute("CREATE TABLE after (v text); INSERT INTO after VALUES ('x')")
        .await
        .unwrap();
    let proxy = proxy_with_feed(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;

    for table in ["before", "after"] {
        let q = format!("SELECT coalesce(string_agg(v, ','), '-') FROM {table}");
        let start = value(&direct, &q).await;
        cached(&proxy, &client, &q, &start).await;
        direct
            .batch_execute(&format!("UPDATE {table} SET v = 'u'"))
            .await
            .unwrap_or_else(|e| panic!("UPDATE of keyless {table} with setup done: {e}"));
        fresh_within_bound(&client, &q, "u").await;
        cached(&proxy, &client, &q, "u").await;
        direct
            .batch_execute(&format!("DELETE FROM {table}"))
            .await
            .unwrap_or_else(|e| panic!("DELETE of keyless {table} with setup done: {e}"));
        fresh_within_bound(&client, &q, "-").await;
    }
    // Setup made no publication.
    assert_eq!(
        value(&direct, "SELECT count(*)::text FROM pg_publication").await,
        "0"
    );
    proxy.shutdown().await.unwrap();
}

/// A table created straight on the server is cached right after (not
/// bypassed as an unknown name until the 60 s catalog refresh): the feed
/// reloads the catalog at the DDL's message. No row is written to it, so
/// only the message can tell the proxy.
#[tokio::test]
async fn a_table_created_on_the_server_is_cached_right_after() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "setup_new_table",
        "CREATE TABLE marker (n int); INSERT INTO marker VALUES (0);",
    );
    setup_ok(cluster, &db, &[]).await;
    let proxy = proxy_with_feed(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;
    feed_caught_up(&proxy, &client, &direct, 1).await;

    direct
        .batch_execute("CREATE TABLE newcomer (v int)")
        .await
        .unwrap();
    feed_caught_up(&proxy, &client, &direct, 2).await;
    let unresolved = proxy.shared.stats.bypasses("unresolved_relation");
    cached(&proxy, &client, "SELECT count(*)::text FROM newcomer", "0").await;
    assert_eq!(
        proxy.shared.stats.bypasses("unresolved_relation"),
        unresolved,
        "the new table was not known to the proxy"
    );
    proxy.shutdown().await.unwrap();
}

/// A trigger created straight on the server is in the closure of the next
/// write the proxy relays. Its target is UNLOGGED: the feed never sees its
/// rows, so only the session's own invalidation, from a catalog that knows
/// the trigger, can make the read after the write fresh.
#[tokio::test]
async fn a_trigger_created_on_the_server_is_known_at_the_next_relayed_write() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "setup_new_trigger",
        "CREATE TABLE marker (n int); INSERT INTO marker VALUES (0);
         CREATE TABLE source (v int);
         CREATE UNLOGGED TABLE audit (v int);",
    );
    setup_ok(cluster, &db, &[]).await;
    let proxy = proxy_with_feed(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;
    feed_caught_up(&proxy, &client, &direct, 1).await;

    direct
        .batch_execute(
            "CREATE FUNCTION audit_it() RETURNS trigger LANGUAGE plpgsql AS \
               $$ BEGIN INSERT INTO audit VALUES (NEW.v); RETURN NEW; END $$;
             CREATE TRIGGER audit_source AFTER INSERT ON source FOR EACH ROW EXECUTE FUNCTION audit_it();",
        )
        .await
        .unwrap();
    feed_caught_up(&proxy, &client, &direct, 2).await;
    let audit = "SELECT count(*)::text FROM audit";
    cached(&proxy, &client, audit, "0").await;
    client
        .batch_execute("INSERT INTO source VALUES (7)")
        .await
        .unwrap();
    assert_eq!(
        value(&client, audit).await,
        "1",
        "the write's closure missed the trigger made on the server"
    );
    proxy.shutdown().await.unwrap();
}

/// The case test_decoding's names alone get wrong: a table renamed on the
/// server and another created under its old name. The DDL message reloads
/// the catalog at its place in the stream, so the old name now means the
/// newcomer, the new name the renamed table, and a later write to the
/// renamed table invalidates its entries and not the newcomer's.
#[tokio::test]
async fn a_table_renamed_on_the_server_and_its_name_reused_invalidate_the_right_entries() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "setup_rename",
        "CREATE TABLE marker (n int); INSERT INTO marker VALUES (0);
         CREATE TABLE t (v text); INSERT INTO t VALUES ('old');",
    );
    setup_ok(cluster, &db, &[]).await;
    let proxy = proxy_with_feed(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;
    let t = "SELECT string_agg(v, ',') FROM t";
    let t_old = "SELECT string_agg(v, ',') FROM t_old";
    cached(&proxy, &client, t, "old").await;

    direct
        .batch_execute(
            "ALTER TABLE t RENAME TO t_old; CREATE TABLE t (v text); INSERT INTO t VALUES ('new')",
        )
        .await
        .unwrap();
    fresh_within_bound(&client, t, "new").await;
    feed_caught_up(&proxy, &client, &direct, 1).await;
    let unresolved = proxy.shared.stats.bypasses("unresolved_relation");
    cached(&proxy, &client, t_old, "old").await;
    assert_eq!(
        proxy.shared.stats.bypasses("unresolved_relation"),
        unresolved,
        "the renamed table is unknown to the proxy"
    );
    cached(&proxy, &client, t, "new").await;

    direct
        .batch_execute("UPDATE t_old SET v = 'old, updated'")
        .await
        .unwrap();
    fresh_within_bound(&client, t_old, "old, updated").await;
    // The newcomer's entry was not touched by the write to the renamed table.
    let hits = proxy.shared.stats.queries("hit");
    assert_eq!(value(&client, t).await, "new");
    assert_eq!(
        proxy.shared.stats.queries("hit"),
        hits + 1,
        "the write to t_old invalidated the newcomer t"
    );
    proxy.shutdown().await.unwrap();
}

/// The DDL's commit is decoded a moment before snapshots see it (here held
/// in the proc array by a synchronous-standby wait that never ends until it
/// is cancelled). A catalog reload in that moment would miss the new table
/// and count as current for the next 60 s; the feed waits until the DDL is
/// visible, and only then reloads and goes on with later commits.
#[tokio::test]
async fn ddl_decoded_before_it_is_visible_is_in_the_reloaded_catalog() {
    let cluster =
        Cluster::start(ClusterOptions::scram().setting("synchronous_standby_names", "phantom"))
            .expect("a cluster of our own");
    let db = setup_db(
        &cluster,
        "setup_ddl_race",
        "CREATE TABLE marker (n int); INSERT INTO marker VALUES (0);",
    );
    setup_ok(&cluster, &db, &[]).await;
    let proxy = proxy_with_feed(&cluster).await;
    let client = connect(&cluster, proxy.addr, &db).await;
    let direct = connect(&cluster, cluster.addr(), &db).await;
    let ddl = connect(&cluster, cluster.addr(), &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;
    feed_caught_up(&proxy, &client, &direct, 1).await;

    let transactions = proxy
        .shared
        .stats
        .feed
        .transactions
        .with_label_values(&[&db]);
    let before = transactions.get();
    let ddl_pid = value(&ddl, "SELECT pg_backend_pid()::text").await;
    // The testkit's clusters default to synchronous_commit = off, which never
    // waits for a standby; this session waits until cancelled.
    ddl.batch_execute("SET synchronous_commit = on")
        .await
        .unwrap();
    let commit =
        tokio::spawn(async move { ddl.batch_execute("CREATE TABLE newcomer (v int)").await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while transactions.get() == before {
        assert!(Instant::now() < deadline, "the feed never decoded the DDL");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        value(
            &direct,
            "SELECT count(*)::text FROM pg_class WHERE relname = 'newcomer'"
        )
        .await,
        "0",
        "the DDL is not visible yet"
    );
    // A later commit, and sessions asking for the catalog, while the DDL is
    // decoded but not visible.
    direct
        .batch_execute("INSERT INTO marker VALUES (2)")
        .await
        .unwrap();
    for _ in 0..10 {
        value(&client, "SELECT max(n)::text FROM marker").await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    direct
        .batch_execute(&format!("SELECT pg_cancel_backend({ddl_pid})"))
        .await
        .unwrap();
    commit.await.unwrap().expect("the DDL went through");
    // Reads of the marker may not have been stored while the DDL was
    // pending; a write made now and seen through the proxy proves the
    // stream is past the DDL.
    fresh_within_bound(&client, "SELECT max(n)::text FROM marker", "2").await;
    feed_caught_up(&proxy, &client, &direct, 3).await;
    let unresolved = proxy.shared.stats.bypasses("unresolved_relation");
    cached(&proxy, &client, "SELECT count(*)::text FROM newcomer", "0").await;
    assert_eq!(
        proxy.shared.stats.bypasses("unresolved_relation"),
        unresolved,
        "the catalog was reloaded before the new table was visible"
    );
    proxy.shutdown().await.unwrap();
}

/// What the triggers write into the WAL: one transactional message per DDL
/// statement that names what it changed, none for temporary objects or for
/// DDL rolled back, and at most 50 objects however many a statement drops.
#[tokio::test]
async fn the_messages_name_what_changed_and_stay_small() {
    let cluster = Cluster::shared();
    let db = setup_db(cluster, "setup_messages", "CREATE SCHEMA crowd");
    setup_ok(cluster, &db, &[]).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    // Temporary: the server drops it when this session ends.
    direct
        .batch_execute(
            "SELECT pg_create_logical_replication_slot('setup_messages_slot', 'test_decoding', true)",
        )
        .await
        .unwrap();
    for statement in [
        "CREATE TABLE announced (v int)",
        "CREATE TEMP TABLE scratch (v int)",
        "DROP TABLE scratch",
        "BEGIN; CREATE TABLE rolled_back (v int); ROLLBACK",
        "DROP TABLE announced",
        "DO $$ BEGIN FOR i IN 1..60 LOOP EXECUTE format('CREATE TABLE crowd.t%s (v int)', i); END LOOP; END $$",
        "DROP SCHEMA crowd CASCADE",
    ] {
        direct
            .batch_execute(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let rows = direct
        .query(
            "SELECT data FROM pg_logical_slot_get_changes('setup_messages_slot', NULL, NULL) \
             WHERE data LIKE 'message:%'",
            &[],
        )
        .await
        .unwrap();
    direct
        .batch_execute("SELECT pg_drop_replication_slot('setup_messages_slot')")
        .await
        .unwrap();
    let messages: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let line: String = row.get(0);
            assert!(
                line.starts_with("message: transactional: 1 prefix: pgcache, sz: "),
                "{line}"
            );
            assert!(line.len() < 16 * 1024, "a message of {} bytes", line.len());
            let (_, content) = line.split_once("content:").expect("content");
            serde_json::from_str(content).unwrap_or_else(|e| panic!("{content}: {e}"))
        })
        .collect();
    let all = serde_json::to_string(&messages).unwrap();
    assert!(
        !all.contains("scratch"),
        "temporary objects announced: {all}"
    );
    assert!(
        !all.contains("rolled_back"),
        "rolled-back DDL announced: {all}"
    );
    let named = |event: &str, tag: &str, identity: &str| {
        messages.iter().any(|m| {
            m["event"] == event
                && m["tag"] == tag
                && m["objects"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|o| o["identity"] == identity))
        })
    };
    assert!(named("ddl", "CREATE TABLE", "public.announced"), "{all}");
    assert!(named("drop", "DROP TABLE", "public.announced"), "{all}");
    assert!(named("ddl", "CREATE TABLE", "crowd.t60"), "{all}");
    let cascade = messages
        .iter()
        .find(|m| m["event"] == "drop" && m["tag"] == "DROP SCHEMA")
        .unwrap_or_else(|| panic!("no message for DROP SCHEMA: {all}"));
    assert_eq!(
        cascade["objects"].as_array().unwrap().len(),
        50,
        "{cascade}"
    );
    assert!(cascade["more"].as_i64().unwrap() > 60, "{cascade}");
    // One per statement: 1 + 1 + 60 + 1 (DROP TABLE's ddl_command_end names
    // nothing; sql_drop does).
    assert_eq!(messages.len(), 63, "{all}");
}

/// A view redefined on the server to read another table: a read of the view
/// cached after the DDL depends on the new table, so a relayed write to it
/// makes the next read fresh. The new table is UNLOGGED, so the stream never
/// shows its rows: only the read's closure, computed from a catalog reloaded
/// at the DDL's message, ties the entry to the write. (A stale catalog still
/// says the view reads `old_source`, and the entry would outlive the write.)
#[tokio::test]
async fn a_view_redefined_on_the_server_is_invalidated_by_writes_to_what_it_now_reads() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "setup_view",
        "CREATE TABLE marker (n int); INSERT INTO marker VALUES (0);
         CREATE TABLE old_source (v int); INSERT INTO old_source VALUES (1);
         CREATE UNLOGGED TABLE new_source (v int);
         CREATE VIEW v AS SELECT v FROM old_source;",
    );
    setup_ok(cluster, &db, &[]).await;
    let proxy = proxy_with_feed(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;
    let read = "SELECT count(*)::text FROM v";
    cached(&proxy, &client, read, "1").await;
    feed_caught_up(&proxy, &client, &direct, 1).await;

    direct
        .batch_execute("CREATE OR REPLACE VIEW v AS SELECT v FROM new_source")
        .await
        .unwrap();
    feed_caught_up(&proxy, &client, &direct, 2).await;
    cached(&proxy, &client, read, "0").await;
    client
        .batch_execute("INSERT INTO new_source VALUES (7)")
        .await
        .unwrap();
    // No pause: the proxy's own invalidation happens before the
    // acknowledgement, and nothing else would ever bump `new_source`.
    assert_eq!(
        value(&client, read).await,
        "1",
        "the read of the view still depended on what it read before the DDL"
    );
    proxy.shutdown().await.unwrap();
}

/// A foreign key with ON DELETE CASCADE added on the server: a DELETE of a
/// parent row relayed by the proxy invalidates the child's cached reads.
/// The child is UNLOGGED (it may reference a logged table), so the stream
/// never shows the cascaded deletes: only the write's closure, from a
/// catalog that knows the new constraint, reaches the child.
#[tokio::test]
async fn a_cascading_foreign_key_added_on_the_server_is_in_the_next_relayed_write() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "setup_new_fk",
        "CREATE TABLE marker (n int); INSERT INTO marker VALUES (0);
         CREATE TABLE parent (id int PRIMARY KEY); INSERT INTO parent VALUES (1), (2);
         CREATE UNLOGGED TABLE child (parent_id int); INSERT INTO child VALUES (1), (1), (2);",
    );
    setup_ok(cluster, &db, &[]).await;
    let proxy = proxy_with_feed(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;
    feed_caught_up(&proxy, &client, &direct, 1).await;

    direct
        .batch_execute(
            "ALTER TABLE child ADD FOREIGN KEY (parent_id) REFERENCES parent ON DELETE CASCADE",
        )
        .await
        .unwrap();
    feed_caught_up(&proxy, &client, &direct, 2).await;
    let children = "SELECT count(*)::text FROM child";
    cached(&proxy, &client, children, "3").await;
    client
        .batch_execute("DELETE FROM parent WHERE id = 1")
        .await
        .unwrap();
    // No pause: see the view test; the cascade's deletes are never decoded.
    assert_eq!(
        value(&client, children).await,
        "1",
        "the write's closure missed the cascade added on the server"
    );
    proxy.shutdown().await.unwrap();
}

/// A table attached on the server as a partition: a relayed write to it by
/// name invalidates the parent's cached reads (a partition's rows are its
/// parent's). The attached table is UNLOGGED, so the stream never shows its
/// rows: a stale catalog still takes it for a lone table, and the parent's
/// entry would outlive the write.
#[tokio::test]
async fn a_partition_attached_on_the_server_invalidates_its_parent_at_the_next_relayed_write() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "setup_attach",
        "CREATE TABLE marker (n int); INSERT INTO marker VALUES (0);
         CREATE TABLE measure (day int, v int) PARTITION BY RANGE (day);
         CREATE TABLE measure_1 PARTITION OF measure FOR VALUES FROM (0) TO (10);
         INSERT INTO measure VALUES (1, 1);
         CREATE UNLOGGED TABLE measure_2 (day int, v int);",
    );
    setup_ok(cluster, &db, &[]).await;
    let proxy = proxy_with_feed(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;
    feed_caught_up(&proxy, &client, &direct, 1).await;

    direct
        .batch_execute(
            "ALTER TABLE measure ATTACH PARTITION measure_2 FOR VALUES FROM (10) TO (20)",
        )
        .await
        .unwrap();
    feed_caught_up(&proxy, &client, &direct, 2).await;
    let all = "SELECT count(*)::text FROM measure";
    cached(&proxy, &client, all, "1").await;
    client
        .batch_execute("INSERT INTO measure_2 VALUES (11, 2)")
        .await
        .unwrap();
    // No pause: see the view test.
    assert_eq!(
        value(&client, all).await,
        "2",
        "the write to the attached partition left its parent's entry"
    );
    proxy.shutdown().await.unwrap();
}

/// A partition created on the server: the parent's cached reads are
/// invalidated by a relayed write to it by name, and it is cached itself
/// right after. The write is safe even with a stale catalog (an unknown
/// name makes it invalidate everything), so what only the DDL message
/// gives here is the partition's own caching: no `unresolved_relation`
/// bypass, no wait for a reload.
#[tokio::test]
async fn a_partition_created_on_the_server_is_cached_and_its_writes_invalidate_its_parent() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "setup_new_partition",
        "CREATE TABLE marker (n int); INSERT INTO marker VALUES (0);
         CREATE TABLE measure (day int, v int) PARTITION BY RANGE (day);
         CREATE TABLE measure_1 PARTITION OF measure FOR VALUES FROM (0) TO (10);
         INSERT INTO measure VALUES (1, 1);",
    );
    setup_ok(cluster, &db, &[]).await;
    let proxy = proxy_with_feed(cluster).await;
    let client = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    value(&client, "SELECT 1").await;
    wait_for_feed(&proxy, &db).await;
    feed_caught_up(&proxy, &client, &direct, 1).await;

    direct
        .batch_execute(
            "CREATE UNLOGGED TABLE measure_2 PARTITION OF measure FOR VALUES FROM (10) TO (20)",
        )
        .await
        .unwrap();
    feed_caught_up(&proxy, &client, &direct, 2).await;
    let all = "SELECT count(*)::text FROM measure";
    cached(&proxy, &client, all, "1").await;
    client
        .batch_execute("INSERT INTO measure_2 VALUES (11, 2)")
        .await
        .unwrap();
    assert_eq!(
        value(&client, all).await,
        "2",
        "the write to the new partition left its parent's entry"
    );
    let unresolved = proxy.shared.stats.bypasses("unresolved_relation");
    cached(&proxy, &client, "SELECT count(*)::text FROM measure_2", "1").await;
    assert_eq!(
        proxy.shared.stats.bypasses("unresolved_relation"),
        unresolved,
        "the new partition was not known to the proxy"
    );
    proxy.shutdown().await.unwrap();
}
