//! The admin HTTP server: metrics move as traffic flows, health follows the
//! upstream, and the JSON API lists and invalidates; mutations need the token.

mod common;

use std::time::Duration;

use common::http::{request, sample};
use common::{connect, fresh_db, proxy_with};
use testkit::Cluster;

const TOKEN: &str = "s3cret-admin-token";

#[tokio::test]
async fn metrics_move_with_traffic_and_the_api_works() {
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, "admin_api");
    cluster
        .psql(&db, "CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT i, repeat('x', 300) FROM generate_series(1, 50) i;")
        .unwrap();
    let dir = std::env::temp_dir().join(format!("pgcache-admin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    // A tiny budget, so that distinct results evict each other.
    std::fs::write(&policy, "[cache]\nmax_memory = \"32KiB\"\n").unwrap();
    let path = policy.clone();
    let proxy = proxy_with(cluster, move |c| {
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        c.admin_token = Some(TOKEN.into());
        c.policy = Some(path);
    })
    .await;
    let admin = proxy.admin_addr.expect("admin listener");
    let c = connect(cluster, proxy.addr, &db).await;
    let direct = connect(cluster, cluster.addr(), &db).await;

    // misses, then hits
    for _ in 0..3 {
        for id in 1..=3 {
            c.simple_query(&format!("SELECT v FROM items WHERE id = {id}"))
                .await
                .unwrap();
        }
    }
    // a bypass, and an invalidation of items
    c.simple_query("UPDATE items SET v = 'y' WHERE id = 50")
        .await
        .unwrap();
    // evictions: many distinct results of ~1 KiB into a 32 KiB budget
    for id in 1..=50 {
        c.simple_query(&format!("SELECT v, v, v FROM items WHERE id = {id}"))
            .await
            .unwrap();
    }

    let page = request(admin, "GET", "/metrics", None, None).await;
    assert_eq!(page.status, 200);
    let m = |s: &str| sample(&page.body, s).unwrap_or_else(|| panic!("{s} missing from /metrics"));
    assert!(m("pgcache_queries_total{result=\"hit\"}") >= 6.0);
    assert!(m("pgcache_queries_total{result=\"miss\"}") >= 3.0);
    assert!(m("pgcache_queries_total{result=\"bypass\"}") >= 1.0);
    assert!(m("pgcache_bypass_total{reason=\"not_select\"}") >= 1.0);
    assert!(m("pgcache_invalidations_total{source=\"write\",table=\"public.items\"}") >= 1.0);
    assert!(m("pgcache_evictions_total") >= 1.0);
    assert!(m("pgcache_cache_entries") >= 1.0);
    assert!(m("pgcache_cache_bytes") <= m("pgcache_cache_max_bytes"));
    assert_eq!(m("pgcache_cache_max_bytes"), 32.0 * 1024.0);
    assert!(m("pgcache_query_duration_seconds_count{result=\"hit\"}") >= 6.0);
    assert_eq!(m("pgcache_client_connections"), 1.0);
    assert_eq!(m("pgcache_build_info{version=\"0.1.0\"}"), 1.0);
    // The page is valid Prometheus text, by Prometheus' own checker.
    let promtool = common::promtool();
    let mut check = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        check
            .stdin
            .take()
            .unwrap()
            .write_all(page.body.as_bytes())
            .unwrap();
    }
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let health = request(admin, "GET", "/healthz", None, None).await;
    assert_eq!(health.status, 200, "{}", health.body);

    let queries = request(admin, "GET", "/api/queries", None, None)
        .await
        .json();
    let listed = queries["queries"].as_array().unwrap();
    let lookup = listed
        .iter()
        .find(|q| {
            q["fingerprint"]
                .as_str()
                .unwrap()
                .starts_with("select v from items where id =")
        })
        .unwrap_or_else(|| panic!("fingerprint listed: {queries}"));
    assert!(lookup["hits"].as_u64().unwrap() >= 6);
    assert!(
        !lookup["fingerprint"].as_str().unwrap().contains("= 1"),
        "literals are normalized"
    );

    let tables = request(admin, "GET", "/api/tables", None, None)
        .await
        .json();
    let items = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.items")
        .expect("items listed");
    assert_eq!(items["policy"]["cache"], true);

    // Invalidation by table: refused without the token, applied with it.
    c.simple_query("SELECT v FROM items WHERE id = 7")
        .await
        .unwrap();
    c.simple_query("SELECT v FROM items WHERE id = 7")
        .await
        .unwrap();
    direct
        .batch_execute("UPDATE items SET v = 'behind' WHERE id = 7")
        .await
        .unwrap();
    let refused = request(
        admin,
        "POST",
        "/api/invalidate",
        None,
        Some(r#"{"table": "public.items"}"#),
    )
    .await;
    assert_eq!(refused.status, 401);
    let wrong = request(
        admin,
        "POST",
        "/api/invalidate",
        Some("nope"),
        Some(r#"{"table": "public.items"}"#),
    )
    .await;
    assert_eq!(wrong.status, 401);
    let before = c
        .simple_query("SELECT v FROM items WHERE id = 7")
        .await
        .unwrap();
    assert!(
        format!("{before:?}").contains("xxx"),
        "still cached before the invalidation"
    );
    let ok = request(
        admin,
        "POST",
        "/api/invalidate",
        Some(TOKEN),
        Some(r#"{"table": "items"}"#),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let after = c
        .simple_query("SELECT v FROM items WHERE id = 7")
        .await
        .unwrap();
    assert!(
        format!("{after:?}").contains("behind"),
        "fresh after the invalidation"
    );
    let bad = request(admin, "POST", "/api/invalidate", Some(TOKEN), Some("{}")).await;
    assert_eq!(bad.status, 400);

    // Reload: a broken file is refused with its errors; a good one applies.
    std::fs::write(&policy, "[cache]\nmax_memory = \"lots\"\n").unwrap();
    let refused = request(admin, "POST", "/api/reload", Some(TOKEN), None).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("max_memory"), "{}", refused.body);
    std::fs::write(&policy, "[cache]\nmax_memory = \"1MiB\"\n").unwrap();
    let applied = request(admin, "POST", "/api/reload", Some(TOKEN), None).await;
    assert_eq!(applied.status, 200, "{}", applied.body);
    let page = request(admin, "GET", "/metrics", None, None).await;
    assert_eq!(
        sample(&page.body, "pgcache_cache_max_bytes"),
        Some(1048576.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn healthz_reports_an_unreachable_upstream_with_503() {
    let cluster = Cluster::shared();
    let dead = testkit::free_port();
    let proxy = proxy_with(cluster, move |c| {
        c.upstream.port = dead;
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let health = tokio::time::timeout(
        Duration::from_secs(10),
        request(proxy.admin_addr.unwrap(), "GET", "/healthz", None, None),
    )
    .await
    .unwrap();
    assert_eq!(health.status, 503);
    assert!(health.body.contains(&format!("127.0.0.1:{dead}")));
    proxy.shutdown().await.unwrap();
}

/// `/readyz`: ready while the upstream answers a login and the proxy is not
/// draining; 503 while it drains and when the upstream is gone.
#[tokio::test]
async fn readyz_says_ready_then_draining() {
    let cluster = Cluster::shared();
    let proxy = proxy_with(cluster, |c| {
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let admin = proxy.admin_addr.unwrap();
    let ready = request(admin, "GET", "/readyz", None, None).await;
    assert_eq!(
        (ready.status, ready.json()["status"].clone()),
        (200, "ready".into())
    );
    let wrong = request(admin, "POST", "/readyz", None, None).await;
    assert_eq!(wrong.status, 405);
    proxy.shared.shutdown.send_replace(true);
    let draining = request(admin, "GET", "/readyz", None, None).await;
    assert_eq!(
        (draining.status, draining.json()["status"].clone()),
        (503, "draining".into())
    );
    proxy.shutdown().await.unwrap();

    let dead = testkit::free_port();
    let gone = proxy_with(cluster, move |c| {
        c.upstream.port = dead;
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let reply = request(gone.admin_addr.unwrap(), "GET", "/readyz", None, None).await;
    assert_eq!(reply.status, 503);
    gone.shutdown().await.unwrap();
}

#[tokio::test]
async fn admin_console_answers_in_psql_and_refuses_others() {
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, "admin_console");
    cluster
        .psql(&db, "CREATE TABLE t (v int); INSERT INTO t VALUES (1);")
        .unwrap();
    let proxy = proxy_with(cluster, |_| {}).await;
    let c = connect(cluster, proxy.addr, &db).await;
    c.simple_query("SELECT v FROM t").await.unwrap();
    c.simple_query("SELECT v FROM t").await.unwrap();
    let addr = proxy.addr;
    let run = move |sql: &'static str, user: &'static str| {
        tokio::task::spawn_blocking(move || {
            let bin = testkit::bin("psql").unwrap();
            std::process::Command::new(bin)
                .args([
                    "-X",
                    "-A",
                    "-F",
                    "|",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &addr.port().to_string(),
                    "-U",
                    user,
                    "-d",
                    "pgcache",
                    "-c",
                    sql,
                ])
                .env("PGPASSWORD", cluster.superuser_password())
                .output()
                .unwrap()
        })
    };
    let out = run("SHOW STATS", "postgres").await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("stat|value"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("hits|") && l != "hits|0"),
        "{text}"
    );
    let out = run("SHOW QUERIES", "postgres").await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("select v from t"));
    let out = run("SHOW TABLES", "postgres").await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("public.t"));
    let out = run("SHOW POLICY", "postgres").await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("max_memory|256MiB"));
    let out = run("INVALIDATE TABLE public.t", "postgres").await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run("INVALIDATE ALL", "postgres").await.unwrap();
    assert!(out.status.success());
    let out = run("RELOAD", "postgres").await.unwrap();
    assert!(out.status.success());
    let out = run("DROP TABLE t", "postgres").await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown pgcache console command"));
    // Not an admin user: refused before anything reaches the server.
    cluster
        .create_user("console_outsider", "pw", testkit::PasswordKind::Scram)
        .unwrap();
    let out = run("SHOW STATS", "console_outsider").await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("may not use the pgcache admin console"));
    proxy.shutdown().await.unwrap();
}
