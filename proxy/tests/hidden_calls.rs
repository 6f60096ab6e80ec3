//! Functions a query runs without naming them (issue 10, hole 6), through a
//! real proxy: a user operator, cast, domain CHECK, aggregate or argument
//! default that reads another table (or writes, or takes nextval) must not
//! be answered from the cache. Each hidden function reads `limits`; the
//! write to `limits` goes through the proxy, which invalidates only what
//! read `limits` by name, so a cached answer would be stale.

mod common;

use common::{connect, fresh_db, proxy, value};
use testkit::Cluster;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// `t` holds one row (a = 1); `limits.lo` (0) is what the hidden functions
/// read, through `lo()`.
const BASE: &str = "
    CREATE TABLE t (a int);
    INSERT INTO t VALUES (1);
    CREATE TABLE limits (lo int);
    INSERT INTO limits VALUES (0);
    CREATE FUNCTION lo() RETURNS int STABLE LANGUAGE sql AS 'SELECT lo FROM limits';
    CREATE TABLE calls (n int);
    INSERT INTO calls VALUES (0);
";

fn setup(cluster: &Cluster, name: &str, sql: &str) -> String {
    let db = fresh_db(cluster, name);
    cluster.psql(&db, &format!("{BASE}{sql}")).unwrap();
    db
}

/// Reads `query` (expecting `before`), sets `limits.lo` to `lo` through the
/// proxy, and reads it again (expecting `after`).
async fn changes_with_limits(client: &Client, query: &str, before: &str, lo: i32, after: &str) {
    assert_eq!(value(client, query).await, before, "{query}");
    assert_eq!(value(client, query).await, before, "{query}");
    client
        .batch_execute(&format!("UPDATE limits SET lo = {lo}"))
        .await
        .unwrap();
    assert_eq!(
        value(client, query).await,
        after,
        "{query} was answered from the cache"
    );
}

#[tokio::test]
async fn user_operators_reading_or_writing_are_not_cached() {
    let cluster = Cluster::shared();
    let db = setup(
        cluster,
        "hidden_operators",
        "
        CREATE FUNCTION plus_lo(int, int) RETURNS int STABLE LANGUAGE sql
            AS 'SELECT $1 + $2 + lo()';
        CREATE OPERATOR +#+ (FUNCTION = plus_lo, LEFTARG = int, RIGHTARG = int);
        CREATE FUNCTION count_call(int, int) RETURNS int VOLATILE LANGUAGE sql
            AS 'UPDATE calls SET n = n + $2 RETURNING n';
        CREATE OPERATOR #*# (FUNCTION = count_call, LEFTARG = int, RIGHTARG = int);
        ",
    );
    let proxy = proxy(cluster).await;
    let c = connect(cluster, proxy.addr, &db).await;
    changes_with_limits(&c, "SELECT a +#+ 1 FROM t", "2", 10, "12").await;
    assert_eq!(value(&c, "SELECT a #*# 1 FROM t").await, "1");
    assert_eq!(value(&c, "SELECT a #*# 1 FROM t").await, "2");
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn user_casts_are_not_cached() {
    let cluster = Cluster::shared();
    let db = setup(
        cluster,
        "hidden_casts",
        "
        CREATE TYPE mood AS ENUM ('sad', 'happy');
        CREATE FUNCTION int_to_mood(int) RETURNS mood STABLE LANGUAGE sql
            AS 'SELECT (enum_range(NULL::mood))[$1 + lo()]';
        CREATE CAST (int AS mood) WITH FUNCTION int_to_mood(int);
        ",
    );
    let proxy = proxy(cluster).await;
    let c = connect(cluster, proxy.addr, &db).await;
    changes_with_limits(&c, "SELECT a::mood FROM t", "sad", 1, "happy").await;
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn domain_checks_are_not_cached() {
    let cluster = Cluster::shared();
    let db = setup(
        cluster,
        "hidden_domains",
        "
        CREATE DOMAIN above_lo AS int CHECK (VALUE > lo());
        CREATE FUNCTION echo(v above_lo) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
        ",
    );
    let proxy = proxy(cluster).await;
    let c = connect(cluster, proxy.addr, &db).await;
    for query in ["SELECT a::above_lo FROM t", "SELECT echo(a) FROM t"] {
        c.batch_execute("UPDATE limits SET lo = 0").await.unwrap();
        assert_eq!(value(&c, query).await, "1");
        assert_eq!(value(&c, query).await, "1");
        c.batch_execute("UPDATE limits SET lo = 5").await.unwrap();
        let err = c
            .simple_query(query)
            .await
            .expect_err("the server raises the violation");
        assert_eq!(
            err.code(),
            Some(&SqlState::CHECK_VIOLATION),
            "{query}: {err:?}"
        );
    }
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn views_coercing_to_checked_domains_are_not_cached() {
    let cluster = Cluster::shared();
    let db = setup(
        cluster,
        "hidden_domain_views",
        "
        CREATE DOMAIN above_lo AS int CHECK (VALUE > lo());
        CREATE VIEW checked AS SELECT a::above_lo AS a FROM t;
        ",
    );
    let proxy = proxy(cluster).await;
    let c = connect(cluster, proxy.addr, &db).await;
    let query = "SELECT a FROM checked";
    assert_eq!(value(&c, query).await, "1");
    assert_eq!(value(&c, query).await, "1");
    c.batch_execute("UPDATE limits SET lo = 5").await.unwrap();
    let err = c
        .simple_query(query)
        .await
        .expect_err("the server raises the violation");
    assert_eq!(
        err.code(),
        Some(&SqlState::CHECK_VIOLATION),
        "{query}: {err:?}"
    );
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn aggregates_with_reading_support_functions_are_not_cached() {
    let cluster = Cluster::shared();
    let db = setup(
        cluster,
        "hidden_aggregates",
        "
        CREATE FUNCTION add_lo(int, int) RETURNS int STABLE LANGUAGE sql
            AS 'SELECT coalesce($1, 0) + $2 + lo()';
        CREATE AGGREGATE sum_lo(int) (SFUNC = add_lo, STYPE = int);
        ",
    );
    let proxy = proxy(cluster).await;
    let c = connect(cluster, proxy.addr, &db).await;
    changes_with_limits(&c, "SELECT sum_lo(a) FROM t", "1", 10, "11").await;
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn argument_defaults_are_not_cached() {
    let cluster = Cluster::shared();
    let db = setup(
        cluster,
        "hidden_defaults",
        "
        CREATE SEQUENCE ids;
        CREATE FUNCTION next_id(a int, b bigint DEFAULT nextval('ids')) RETURNS bigint
            IMMUTABLE LANGUAGE sql AS 'SELECT $2';
        CREATE FUNCTION plus_lo(a int, b int DEFAULT lo()) RETURNS int
            IMMUTABLE LANGUAGE sql AS 'SELECT $1 + $2';
        ",
    );
    let proxy = proxy(cluster).await;
    let c = connect(cluster, proxy.addr, &db).await;
    assert_eq!(value(&c, "SELECT next_id(a) FROM t").await, "1");
    assert_eq!(value(&c, "SELECT next_id(a) FROM t").await, "2");
    changes_with_limits(&c, "SELECT plus_lo(a) FROM t", "1", 10, "11").await;
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn immutable_hidden_calls_are_still_cached() {
    let cluster = Cluster::shared();
    let db = setup(
        cluster,
        "hidden_immutable",
        "
        CREATE FUNCTION plus(int, int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 + $2';
        CREATE OPERATOR +#+ (FUNCTION = plus, LEFTARG = int, RIGHTARG = int);
        CREATE AGGREGATE my_sum(int) (SFUNC = plus, STYPE = int);
        CREATE DOMAIN small AS int CHECK (VALUE < 100);
        CREATE FUNCTION with_default(a int, b int DEFAULT 1 + 1) RETURNS int
            IMMUTABLE LANGUAGE sql AS 'SELECT $1 + $2';
        ",
    );
    let proxy = proxy(cluster).await;
    let c = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;
    let query = "SELECT a +#+ 1, my_sum(a), a::small, with_default(a) FROM t GROUP BY a";
    assert_eq!(value(&c, query).await, "2");
    // Written behind the proxy's back: only a cached answer stays the same.
    direct.batch_execute("UPDATE t SET a = 5").await.unwrap();
    assert_eq!(value(&c, query).await, "2", "served from the cache");
    proxy.shutdown().await.unwrap();
}
