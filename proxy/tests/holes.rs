//! Ways a cache can give a different answer than the server, one test per
//! class (issue 10's holes). Each reproduces the wrong answer the class gave
//! before it was closed: a row left stale after an acknowledged write, or one
//! session's rows served to another. Writes and DDL all go through the proxy.

mod common;

use common::raw::{error_fields, Raw};
use common::wire::{self, flush, parse, query, sync};
use common::{connect, connect_as, proxy, setup_db, value};
use testkit::Cluster;
use tokio_postgres::{Client, SimpleQueryMessage};

/// The value, or the SQLSTATE of the error.
async fn outcome(client: &Client, sql: &str) -> String {
    match client.simple_query(sql).await {
        Ok(messages) => messages
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
                _ => None,
            })
            .unwrap_or_default(),
        Err(e) => e.code().map(|c| c.code().to_string()).unwrap_or_default(),
    }
}

fn bind(statement: &str) -> Vec<u8> {
    wire::bind("", statement, &[])
}

fn execute() -> Vec<u8> {
    wire::execute("", 0)
}

/// The text of every DataRow's first column, and the SQLSTATE of any error.
fn rows_and_errors(messages: &[(u8, Vec<u8>)]) -> (Vec<String>, Vec<String>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (tag, body) in messages {
        match tag {
            b'D' => {
                let len = i32::from_be_bytes([body[2], body[3], body[4], body[5]]);
                rows.push(String::from_utf8_lossy(&body[6..6 + len as usize]).into_owned());
            }
            b'E' => errors.push(error_fields(body).0),
            _ => {}
        }
    }
    (rows, errors)
}

/// Hole 1: psycopg's pipelines end with Sync then Flush. A Flush opens no
/// cycle; the proxy must still match every later answer to its request, so
/// a later UPDATE is invalidated before it is acknowledged.
#[tokio::test]
async fn a_flush_after_sync_does_not_shift_answers() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "holes_flush",
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1);",
    );
    let proxy = proxy(cluster).await;
    let reader = connect(cluster, proxy.addr, &db).await;
    let mut writer = Raw::login_to(proxy.addr, cluster.superuser(), &db).await;
    let mut pipeline = parse("", "INSERT INTO t VALUES (2, 2)");
    pipeline.extend(bind(""));
    pipeline.extend(execute());
    pipeline.extend(sync());
    pipeline.extend(flush());
    writer.send(&pipeline).await;
    writer.read_until(b'Z').await;
    // Cached after the pipeline's INSERT invalidated t.
    let q = "SELECT v FROM t WHERE id = 1";
    assert_eq!(value(&reader, q).await, "1");
    let hits = proxy.shared.stats.queries("hit");
    assert_eq!(value(&reader, q).await, "1");
    assert_eq!(
        proxy.shared.stats.queries("hit"),
        hits + 1,
        "served from the cache"
    );
    writer
        .send(&query("UPDATE t SET v = 42 WHERE id = 1"))
        .await;
    writer.read_until(b'Z').await;

    assert_eq!(
        value(&reader, "SELECT v FROM t WHERE id = 1").await,
        "42",
        "the UPDATE was acknowledged: no session may read the old value"
    );
    proxy.shutdown().await.unwrap();
}

/// Hole 2: DDL inside a transaction block is visible to the catalog only
/// after its COMMIT: the catalog reloads after the commit, not before.
#[tokio::test]
async fn ddl_in_a_transaction_block_reaches_the_catalog_after_commit() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "holes_ddl_tx",
        "CREATE TABLE items (id int); CREATE TABLE totals (n int); INSERT INTO totals VALUES (0);
         CREATE FUNCTION bump_total() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN UPDATE totals SET n = n + 1; RETURN NEW; END $$;
         CREATE TABLE t1 (v text); INSERT INTO t1 VALUES ('t1');
         CREATE TABLE t2 (v text); INSERT INTO t2 VALUES ('t2');
         CREATE VIEW v AS SELECT v FROM t1;",
    );
    let proxy = proxy(cluster).await;
    let a = connect(cluster, proxy.addr, &db).await;
    let b = connect(cluster, proxy.addr, &db).await;

    // A trigger created in a block, as migration tools do.
    assert_eq!(value(&b, "SELECT n FROM totals").await, "0");
    a.batch_execute("BEGIN").await.unwrap();
    a.batch_execute(
        "CREATE TRIGGER count_items AFTER INSERT ON items
           FOR EACH ROW EXECUTE FUNCTION bump_total()",
    )
    .await
    .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(value(&b, "SELECT n FROM totals").await, "0");
    a.batch_execute("INSERT INTO items VALUES (1)")
        .await
        .unwrap();
    assert_eq!(value(&b, "SELECT n FROM totals").await, "1");

    // A view redefined in a block.
    assert_eq!(value(&b, "SELECT v FROM v").await, "t1");
    a.batch_execute("BEGIN").await.unwrap();
    a.batch_execute("CREATE OR REPLACE VIEW v AS SELECT v FROM t2")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(value(&b, "SELECT v FROM v").await, "t2");
    a.batch_execute("UPDATE t2 SET v = 't2 again'")
        .await
        .unwrap();
    assert_eq!(value(&b, "SELECT v FROM v").await, "t2 again");
    proxy.shutdown().await.unwrap();
}

/// Hole 3: session state changed by server-side code (set_config in a
/// function, SET in a procedure or DO block, EXECUTE of a prepared
/// set_config, the function-call message, a temporary table made in a
/// function) is learned from the server: one tenant's rows never reach
/// another session.
#[tokio::test]
async fn state_changed_by_server_side_code_is_asked_for() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "holes_tenant",
        "CREATE SCHEMA a; CREATE SCHEMA b;
         CREATE TABLE public.data (secret text); INSERT INTO public.data VALUES ('public-secret');
         CREATE TABLE a.data (secret text); INSERT INTO a.data VALUES ('a-secret');
         CREATE TABLE b.data (secret text); INSERT INTO b.data VALUES ('b-secret');
         CREATE FUNCTION set_tenant(t text) RETURNS text LANGUAGE sql
           AS $$ SELECT set_config('search_path', t, false) $$;
         CREATE PROCEDURE go_b() LANGUAGE plpgsql AS $$ BEGIN SET search_path = b; END $$;
         CREATE FUNCTION make_temp() RETURNS void LANGUAGE plpgsql
           AS $$ BEGIN CREATE TEMP TABLE data (secret text); INSERT INTO data VALUES ('temp-secret'); END $$;",
    );
    let proxy = proxy(cluster).await;
    let q = "SELECT secret FROM data";
    let plain = connect(cluster, proxy.addr, &db).await;
    assert_eq!(value(&plain, q).await, "public-secret");

    let tenant = connect(cluster, proxy.addr, &db).await;
    assert_eq!(value(&tenant, q).await, "public-secret");
    tenant.simple_query("SELECT set_tenant('a')").await.unwrap();
    assert_eq!(value(&tenant, q).await, "a-secret");
    assert_eq!(value(&plain, q).await, "public-secret");

    for (switch, expect) in [
        ("CALL public.go_b()", "b-secret"),
        ("DO $$ BEGIN SET search_path = a; END $$", "a-secret"),
        ("SET search_path = public", "public-secret"),
        (
            "PREPARE st AS SELECT set_config('search_path', 'b', false)",
            "public-secret",
        ),
        ("EXECUTE st", "b-secret"),
    ] {
        tenant.batch_execute(switch).await.unwrap();
        assert_eq!(value(&tenant, q).await, expect, "after {switch}");
        assert_eq!(value(&plain, q).await, "public-secret", "after {switch}");
    }

    // The function-call message ('F') of set_config (OID 2078), as a driver's
    // fast-path interface sends it.
    let mut raw = Raw::login_to(proxy.addr, cluster.superuser(), &db).await;
    raw.send(&query(q)).await;
    let (rows, _) = rows_and_errors(&raw.read_until(b'Z').await);
    assert_eq!(rows, ["public-secret"]);
    let args = ["search_path", "a", "false"].map(|a| Some(a.to_string()));
    raw.send(&wire::function_call(2078, &args)).await;
    raw.read_until(b'Z').await;
    raw.send(&query(q)).await;
    let (rows, errors) = rows_and_errors(&raw.read_until(b'Z').await);
    assert_eq!((rows, errors), (vec!["a-secret".to_string()], vec![]));

    // A temporary table created inside a function shadows public.data.
    let temp = connect(cluster, proxy.addr, &db).await;
    assert_eq!(value(&temp, q).await, "public-secret");
    temp.simple_query("SELECT make_temp()").await.unwrap();
    assert_eq!(value(&temp, q).await, "temp-secret");
    assert_eq!(value(&plain, q).await, "public-secret");
    proxy.shutdown().await.unwrap();
}

/// Holes 4 and 7: the role is what the server says. `RESET ALL` keeps a role
/// set with SET ROLE; a role's own defaults apply at login, not at SET ROLE;
/// and a role's defaults changed while a session is open do not apply to it.
#[tokio::test]
async fn roles_are_what_the_server_says() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "holes_roles",
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'h_alice') THEN CREATE ROLE h_alice; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'h_bob') THEN CREATE ROLE h_bob; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'h_app') THEN CREATE ROLE h_app LOGIN PASSWORD 'pw' NOINHERIT; END IF;
         END $$;
         GRANT h_alice, h_bob TO h_app;
         ALTER ROLE h_bob SET search_path = bobschema;
         CREATE SCHEMA bobschema; GRANT USAGE ON SCHEMA bobschema TO PUBLIC;
         CREATE TABLE alice_only (secret text); INSERT INTO alice_only VALUES ('alice-secret');
         GRANT SELECT ON alice_only TO h_alice;
         CREATE TABLE t (v text); INSERT INTO t VALUES ('public');
         CREATE TABLE bobschema.t (v text); INSERT INTO bobschema.t VALUES ('bobschema');
         GRANT SELECT, UPDATE ON t, bobschema.t TO PUBLIC;",
    );
    let proxy = proxy(cluster).await;

    // Hole 4.
    let app = connect_as(proxy.addr, "h_app", "pw", &db).await;
    app.batch_execute("SET ROLE h_alice; RESET ALL")
        .await
        .unwrap();
    assert_eq!(
        value(&app, "SELECT secret FROM alice_only").await,
        "alice-secret"
    );
    let plain = connect_as(proxy.addr, "h_app", "pw", &db).await;
    assert_eq!(
        outcome(&plain, "SELECT secret FROM alice_only").await,
        "42501",
        "a plain h_app session may not read h_alice's table"
    );

    // Hole 7: after SET ROLE h_bob the login's search_path still applies.
    let bob = connect_as(proxy.addr, "h_app", "pw", &db).await;
    bob.batch_execute("SET ROLE h_bob").await.unwrap();
    assert_eq!(value(&bob, "SELECT v FROM t").await, "public");
    let writer = connect(cluster, proxy.addr, &db).await;
    writer
        .batch_execute("UPDATE public.t SET v = 'public 2'")
        .await
        .unwrap();
    assert_eq!(value(&bob, "SELECT v FROM t").await, "public 2");

    // A role's defaults changed while its session is open: the open session
    // keeps its own path, a new one gets the new path; they share nothing.
    cluster
        .psql(&db, "ALTER ROLE h_app SET search_path = bobschema")
        .unwrap();
    let newer = connect_as(proxy.addr, "h_app", "pw", &db).await;
    assert_eq!(value(&newer, "SELECT v FROM t").await, "bobschema");
    assert_eq!(value(&plain, "SELECT v FROM t").await, "public 2");
    cluster
        .psql(&db, "ALTER ROLE h_app RESET search_path")
        .unwrap();
    proxy.shutdown().await.unwrap();
}

/// Hole 5: a statement name the server refused to prepare is not kept, at
/// the protocol level and in SQL.
#[tokio::test]
async fn a_refused_prepare_keeps_no_name() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "holes_parse",
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0);",
    );
    let proxy = proxy(cluster).await;
    let mut raw = Raw::login_to(proxy.addr, cluster.superuser(), &db).await;
    raw.send(&[parse("s1", "SELECT no_such_column FROM t"), sync()].concat())
        .await;
    let (_, errors) = rows_and_errors(&raw.read_until(b'Z').await);
    assert_eq!(errors, ["42703"]);
    raw.send(
        &[
            parse("s1", "UPDATE t SET v = v + 1 WHERE id = 1 RETURNING v"),
            sync(),
        ]
        .concat(),
    )
    .await;
    raw.read_until(b'Z').await;
    for expect in ["1", "2", "3"] {
        raw.send(&[bind("s1"), execute(), sync()].concat()).await;
        let (rows, errors) = rows_and_errors(&raw.read_until(b'Z').await);
        assert_eq!((rows, errors), (vec![expect.to_string()], vec![]));
    }
    // Another session's statement with the refused text gets the error.
    let mut other = Raw::login_to(proxy.addr, cluster.superuser(), &db).await;
    other
        .send(
            &[
                parse("", "SELECT no_such_column FROM t"),
                bind(""),
                execute(),
                sync(),
            ]
            .concat(),
        )
        .await;
    let (_, errors) = rows_and_errors(&other.read_until(b'Z').await);
    assert_eq!(errors, ["42703"]);

    // SQL level.
    let sql = connect(cluster, proxy.addr, &db).await;
    assert_eq!(value(&sql, "SELECT v FROM t WHERE id = 1").await, "3");
    assert_eq!(
        outcome(&sql, "PREPARE x AS SELECT no_such_column FROM t").await,
        "42703"
    );
    sql.batch_execute("PREPARE x AS UPDATE t SET v = 10 WHERE id = 1")
        .await
        .unwrap();
    sql.batch_execute("EXECUTE x").await.unwrap();
    assert_eq!(value(&sql, "SELECT v FROM t WHERE id = 1").await, "10");
    proxy.shutdown().await.unwrap();
}

/// Hole 8: the isolation of a transaction block is what the server says: a
/// REPEATABLE READ snapshot read after a write was acknowledged is never
/// stored for other sessions.
#[tokio::test]
async fn a_repeatable_read_snapshot_is_never_shared() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "holes_isolation",
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'h_rr') THEN CREATE ROLE h_rr LOGIN PASSWORD 'pw'; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'h_rc') THEN CREATE ROLE h_rc; END IF;
         END $$;
         GRANT h_rc TO h_rr;
         ALTER ROLE h_rr SET default_transaction_isolation = 'repeatable read';
         CREATE TABLE t (v int); INSERT INTO t VALUES (0); GRANT SELECT, UPDATE ON t TO PUBLIC;",
    );
    let proxy = proxy(cluster).await;
    let writer = connect(cluster, proxy.addr, &db).await;
    let q = "SELECT v FROM t";
    let mut v = 0;

    // Reads `q` in `session`'s open block, has the writer update through the
    // proxy, reads again (its own snapshot), and checks that a new session
    // sees the write.
    async fn round(session: &Client, writer: &Client, v: &mut i32, what: &str) {
        let q = "SELECT v FROM t";
        assert_eq!(value(session, q).await, v.to_string(), "{what}");
        *v += 1;
        writer
            .batch_execute(&format!("UPDATE t SET v = {v}"))
            .await
            .unwrap();
        assert_eq!(
            value(session, q).await,
            (*v - 1).to_string(),
            "{what}: its own snapshot"
        );
        let _ = session.batch_execute("COMMIT").await;
    }
    async fn others_see(proxy: std::net::SocketAddr, cluster: &Cluster, db: &str, v: i32) {
        let other = connect(cluster, proxy, db).await;
        assert_eq!(value(&other, "SELECT v FROM t").await, v.to_string());
    }

    // A second BEGIN inside a REPEATABLE READ block changes nothing.
    let s = connect(cluster, proxy.addr, &db).await;
    s.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    let _ = s.simple_query("BEGIN").await;
    round(&s, &writer, &mut v, "second BEGIN").await;
    others_see(proxy.addr, cluster, &db, v).await;

    // A login role defaulting to REPEATABLE READ, then SET ROLE to one that
    // does not.
    let rr = connect_as(proxy.addr, "h_rr", "pw", &db).await;
    rr.batch_execute("SET ROLE h_rc").await.unwrap();
    rr.batch_execute("BEGIN").await.unwrap();
    round(&rr, &writer, &mut v, "role default").await;
    others_see(proxy.addr, cluster, &db, v).await;

    // The role's default reset while its session is open.
    let rr = connect_as(proxy.addr, "h_rr", "pw", &db).await;
    assert_eq!(value(&rr, q).await, v.to_string());
    cluster
        .psql(&db, "ALTER ROLE h_rr RESET default_transaction_isolation")
        .unwrap();
    rr.batch_execute("BEGIN").await.unwrap();
    round(&rr, &writer, &mut v, "role default reset").await;
    others_see(proxy.addr, cluster, &db, v).await;

    // The server's default changed by ALTER SYSTEM and a reload, under an
    // open session.
    let s = connect(cluster, proxy.addr, &db).await;
    assert_eq!(value(&s, q).await, v.to_string());
    writer
        .batch_execute("ALTER SYSTEM SET default_transaction_isolation = 'repeatable read'")
        .await
        .unwrap();
    writer
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.batch_execute("BEGIN").await.unwrap();
    round(&s, &writer, &mut v, "ALTER SYSTEM").await;
    writer
        .batch_execute("ALTER SYSTEM RESET default_transaction_isolation")
        .await
        .unwrap();
    writer
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    others_see(proxy.addr, cluster, &db, v).await;
    proxy.shutdown().await.unwrap();
}

/// Hole 9: a transaction block that ends without the status leaving 'T'
/// (`COMMIT AND CHAIN`, `COMMIT; BEGIN` in one query) still invalidates
/// what it wrote before the COMMIT is acknowledged.
#[tokio::test]
async fn a_commit_that_chains_invalidates() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "holes_chain",
        "CREATE TABLE t (v int); INSERT INTO t VALUES (0);",
    );
    let proxy = proxy(cluster).await;
    let writer = connect(cluster, proxy.addr, &db).await;
    let reader = connect(cluster, proxy.addr, &db).await;
    let q = "SELECT v FROM t";
    for (i, end) in ["COMMIT AND CHAIN", "COMMIT; BEGIN"].iter().enumerate() {
        writer
            .batch_execute(&format!("BEGIN; UPDATE t SET v = {}", i + 1))
            .await
            .unwrap();
        assert_eq!(value(&reader, q).await, i.to_string(), "before {end}");
        writer.batch_execute(end).await.unwrap();
        assert_eq!(value(&reader, q).await, (i + 1).to_string(), "after {end}");
        writer.batch_execute("COMMIT").await.unwrap();
    }
    proxy.shutdown().await.unwrap();
}

/// Hole 10: a named statement answered from the cache exists on the server
/// too, for SQL EXECUTE and pg_prepared_statements.
#[tokio::test]
async fn a_statement_answered_from_the_cache_exists_on_the_server() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "holes_named",
        "CREATE TABLE t (v int); INSERT INTO t VALUES (7);",
    );
    let proxy = proxy(cluster).await;
    let batch = [
        parse("st1", "SELECT v FROM t"),
        bind("st1"),
        execute(),
        sync(),
    ]
    .concat();
    let mut first = Raw::login_to(proxy.addr, cluster.superuser(), &db).await;
    first.send(&batch).await;
    first.read_until(b'Z').await;
    let hits = proxy.shared.stats.queries("hit");
    let mut second = Raw::login_to(proxy.addr, cluster.superuser(), &db).await;
    second.send(&batch).await;
    let (rows, _) = rows_and_errors(&second.read_until(b'Z').await);
    assert_eq!(rows, ["7"]);
    assert_eq!(
        proxy.shared.stats.queries("hit"),
        hits + 1,
        "answered from the cache"
    );
    second.send(&query("EXECUTE st1")).await;
    let (rows, errors) = rows_and_errors(&second.read_until(b'Z').await);
    assert_eq!((rows, errors), (vec!["7".to_string()], vec![]));
    second
        .send(&query(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = 'st1'",
        ))
        .await;
    let (rows, _) = rows_and_errors(&second.read_until(b'Z').await);
    assert_eq!(rows, ["1"]);
    proxy.shutdown().await.unwrap();
}

/// A statement the server rejected (a syntax error, an unknown table)
/// invalidates nothing: one user's typo does not empty everyone's cache.
#[tokio::test]
async fn a_rejected_statement_invalidates_nothing() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "holes_rejected",
        "CREATE TABLE t (v int); INSERT INTO t VALUES (1);",
    );
    let proxy = proxy(cluster).await;
    let a = connect(cluster, proxy.addr, &db).await;
    let b = connect(cluster, proxy.addr, &db).await;
    assert_eq!(value(&a, "SELECT v FROM t").await, "1");
    for bad in [
        "SELEC 1",
        "UPDATE no_such_table SET x = 1",
        "UPDATE t SET v = 1/0",
    ] {
        assert!(b.simple_query(bad).await.is_err(), "{bad}");
        let hits = proxy.shared.stats.queries("hit");
        assert_eq!(value(&a, "SELECT v FROM t").await, "1");
        assert_eq!(
            proxy.shared.stats.queries("hit"),
            hits + 1,
            "still cached after {bad}"
        );
    }
    proxy.shutdown().await.unwrap();
}

/// The proxy's own connections never keep a database open that no client
/// uses: a catalog connection idle for a while is closed, so `DROP DATABASE`
/// straight on the server succeeds once the clients have left.
#[tokio::test]
async fn an_idle_catalog_connection_is_closed() {
    let cluster = Cluster::shared();
    let db = setup_db(
        cluster,
        "holes_idle_catalog",
        "CREATE TABLE t (v int); INSERT INTO t VALUES (1);",
    );
    let proxy = common::proxy_with(cluster, |c| {
        c.catalog_idle_close = std::time::Duration::from_millis(100);
    })
    .await;
    let client = connect(cluster, proxy.addr, &db).await;
    assert_eq!(value(&client, "SELECT v FROM t").await, "1");
    drop(client);
    let direct = connect(cluster, cluster.addr(), "postgres").await;
    let count = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND application_name = 'pgcache-catalog'"
    );
    assert_eq!(
        value(&direct, &count).await,
        "1",
        "the catalog connection while in use"
    );
    let mut closed = false;
    for _ in 0..100 {
        if value(&direct, &count).await == "0" {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(closed, "the idle catalog connection was not closed");
    direct
        .batch_execute(&format!("DROP DATABASE {db}"))
        .await
        .expect("DROP DATABASE succeeds once the proxy's connections are gone");
    proxy.shutdown().await.unwrap();
}
