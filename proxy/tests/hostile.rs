//! Hostile clients (issue 11): what an ordinary login, or a connection that
//! never logs in, can make the proxy hold, and what it can take from the
//! other sessions. Real proxy processes in front of a real server; memory
//! bounds are read from the proxy's resident set (VmRSS), not its counters.

mod common;

use std::time::Duration;

use common::binary::Binary;
use common::http::request;
use common::raw::{error_fields, message, startup_packet, Raw};
use common::{config_for, connect, fresh_db, proxy_with};
use testkit::{Cluster, ClusterOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The tests that load the machine (floods, latency): one at a time, so the
/// latency test measures the proxy and not its neighbours.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A query whose fingerprint is as long as its text: a quoted identifier is
/// kept verbatim in a fingerprint (the server cuts it to 63 bytes).
fn long_shape(i: usize, bytes: usize) -> String {
    format!("SELECT 1 AS \"{i}{}\"", "q".repeat(bytes))
}

#[tokio::test]
async fn query_statistics_and_analyses_are_bounded_in_bytes() {
    let _heavy = HEAVY.lock().await;
    let cluster = Cluster::shared();
    let proxy = Binary::start(cluster, true, &[]).await;
    let admin = proxy.admin.unwrap();
    let c = connect(cluster, proxy.addr, "postgres").await;
    for i in 0..8 {
        c.simple_query(&long_shape(i, 60_000)).await.unwrap();
    }
    // Over the size that is analysed, the shape is named by its beginning.
    c.simple_query(&long_shape(9, 100_000)).await.unwrap();
    let reply = request(admin, "GET", "/api/queries", None, None).await;
    assert!(
        reply.body.contains("(too large: 100015 bytes)"),
        "{}",
        &reply.body[..2000]
    );
    let before = proxy.rss_kib();
    // 600 distinct shapes of 60 KB (just under what is analysed): 36 MB of
    // fingerprints, held by the statistics and the analysis cache (one copy
    // shared) if unbounded.
    for i in 100..700 {
        c.simple_query(&long_shape(i, 60_000)).await.unwrap();
    }
    let growth_mib = proxy.rss_kib().saturating_sub(before) / 1024;
    // The analysis cache may hold 16 MiB, the statistics 2 MiB.
    assert!(
        growth_mib < 26,
        "600 distinct 60 KB query shapes grew the proxy by {growth_mib} MiB"
    );
    let reply = request(admin, "GET", "/api/queries", None, None).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.len() < 512 << 10,
        "GET /api/queries answered {} bytes",
        reply.body.len()
    );
    let listed = reply.json();
    let shapes = listed["queries"].as_array().unwrap();
    assert!(shapes
        .iter()
        .filter_map(|q| q["fingerprint"].as_str())
        .any(|f| f.starts_with("select $1 as \"1") && f.contains(" ... (cut: 600")));
}

/// True if the peer closes `stream` within `within` (whatever it sent first).
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut sink = [0u8; 1024];
    let reading = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(within, reading).await.is_ok()
}

#[tokio::test]
async fn the_admin_server_bounds_connections_and_time() {
    let cluster = Cluster::shared();
    let proxy = proxy_with(cluster, |c| {
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        c.admin_limits.max_connections = 16;
        c.admin_limits.header_timeout = Duration::from_millis(600);
        c.admin_limits.body_timeout = Duration::from_millis(600);
        c.admin_limits.max_body = 4096;
    })
    .await;
    let admin = proxy.admin_addr.unwrap();

    // 100 half-sent requests: all but 16 are closed at once, the rest when
    // their head does not arrive in time.
    let mut half_sent = Vec::new();
    for _ in 0..100 {
        let mut s = TcpStream::connect(admin).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        half_sent.push(s);
    }
    let mut closed_at_once = 0;
    for s in &mut half_sent {
        if closed_within(s, Duration::from_millis(20)).await {
            closed_at_once += 1;
        }
    }
    assert!(
        closed_at_once >= 84,
        "{closed_at_once} of 100 closed at once"
    );
    // Meanwhile PostgreSQL clients are served.
    let c = connect(cluster, proxy.addr, "postgres").await;
    c.simple_query("SELECT 1").await.unwrap();
    for s in &mut half_sent {
        assert!(
            closed_within(s, Duration::from_secs(3)).await,
            "a half-sent request was kept open"
        );
    }
    assert!(proxy.shared.stats.limit_hits("admin_connections") >= 84);
    assert_eq!(
        request(admin, "GET", "/healthz", None, None).await.status,
        200
    );

    // An idle keep-alive connection is closed.
    let mut idle = TcpStream::connect(admin).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert!(
        closed_within(&mut idle, Duration::from_secs(3)).await,
        "an idle keep-alive connection was kept open"
    );

    // A body that never arrives in full gets 408; a large one 413.
    let mut slow = TcpStream::connect(admin).await.unwrap();
    slow.write_all(
        b"POST /api/invalidate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"all\"",
    )
    .await
    .unwrap();
    let mut reply = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), slow.read_to_end(&mut reply)).await;
    assert!(read.is_ok(), "a stalled body kept its connection open");
    assert!(
        String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let large = format!("{{\"table\": \"{}\"}}", "t".repeat(10_000));
    let reply = request(admin, "POST", "/api/invalidate", None, Some(&large)).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_admin_api_answers_a_wrong_method_with_405() {
    let cluster = Cluster::shared();
    let proxy = proxy_with(cluster, |c| {
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        c.admin_token = Some("s3cret".into());
    })
    .await;
    let admin = proxy.admin_addr.unwrap();
    let raw = |method: &'static str, path: &'static str| async move {
        let mut s = TcpStream::connect(admin).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).await.unwrap();
        String::from_utf8_lossy(&reply).to_ascii_lowercase()
    };
    let reply = raw("POST", "/metrics").await;
    assert!(reply.starts_with("http/1.1 405"), "{reply}");
    assert!(reply.contains("\r\nallow: get\r\n"), "{reply}");
    let reply = raw("GET", "/api/reload").await;
    assert!(reply.starts_with("http/1.1 405"), "{reply}");
    assert!(reply.contains("\r\nallow: post\r\n"), "{reply}");
    assert!(raw("GET", "/nowhere").await.starts_with("http/1.1 404"));
    assert_eq!(
        request(admin, "POST", "/api/reload", Some("s3creT"), None)
            .await
            .status,
        401
    );
    assert_eq!(
        request(admin, "POST", "/api/reload", Some("s3cret"), None)
            .await
            .status,
        200
    );
    proxy.shutdown().await.unwrap();
}

/// A policy file in a fresh directory; the directory is removed with the guard.
struct PolicyFile {
    dir: std::path::PathBuf,
    path: String,
}

impl PolicyFile {
    fn new(name: &str, text: &str) -> PolicyFile {
        let dir = std::env::temp_dir().join(format!("pgcache-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("policy.toml");
        std::fs::write(&path, text).unwrap();
        let path = path.to_string_lossy().into_owned();
        PolicyFile { dir, path }
    }
}

impl Drop for PolicyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A capture's grown buffer is stored at its size (cache-core's
/// `a_grown_buffer_is_stored_at_its_size`). On this allocator the spare
/// capacity is mostly never touched, so this check guards the budget as a
/// whole rather than telling the two apart.
#[tokio::test]
async fn the_store_budget_bounds_resident_memory() {
    let _heavy = HEAVY.lock().await;
    let cluster = Cluster::shared();
    let policy = PolicyFile::new(
        "store-rss",
        "[cache]\nmax_memory = \"32MiB\"\n[defaults]\nmax_entry_size = \"256KiB\"\n",
    );
    let proxy = Binary::start(cluster, false, &["--policy", &policy.path]).await;
    let db = fresh_db(cluster, "hostile_store");
    let rows =
        "CREATE TABLE rows AS SELECT repeat('x', 100) || g AS v FROM generate_series(1, 560) g";
    cluster.psql(&db, rows).unwrap();
    let c = connect(cluster, proxy.addr, &db).await;
    // ~67 KB of rows: a capture grows its buffer to 128 KiB to hold them.
    let rows = |i: usize| format!("SELECT v, {i} FROM rows");
    for i in 0..20 {
        c.simple_query(&rows(i)).await.unwrap();
    }
    let before = proxy.rss_kib();
    // 1000 distinct results: twice the budget.
    for i in 100..1100 {
        c.simple_query(&rows(i)).await.unwrap();
    }
    let growth_mib = proxy.rss_kib().saturating_sub(before) / 1024;
    // The allocator's arenas (one per worker thread) and the analysis cache
    // come on top of the store's 32 MiB: twice the budget is the bound.
    assert!(
        growth_mib < 64,
        "resident memory grew by {growth_mib} MiB for a 32 MiB budget"
    );
}

/// Starts `SELECT pg_sleep(2)` on a session straight to the server, sends a
/// CancelRequest for it to `via`, and tells whether the query was cancelled.
async fn cancel_through(cluster: &Cluster, via: std::net::SocketAddr) -> bool {
    let mut victim = Raw::connect(cluster.addr()).await;
    victim
        .send(&startup_packet(
            3,
            0,
            &[("user", cluster.superuser()), ("database", "postgres")],
        ))
        .await;
    let login = victim.read_until(b'Z').await;
    let key = login
        .iter()
        .find(|(tag, _)| *tag == b'K')
        .map(|(_, body)| body.clone())
        .expect("BackendKeyData");
    victim.send(&message(b'Q', b"SELECT pg_sleep(2)\0")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut cancel = Vec::new();
    cancel.extend_from_slice(&((8 + key.len()) as u32).to_be_bytes());
    cancel.extend_from_slice(&80877102u32.to_be_bytes());
    cancel.extend_from_slice(&key);
    let mut canceller = Raw::connect(via).await;
    canceller.send(&cancel).await;
    assert!(canceller.closed_within(Duration::from_secs(5)).await);
    let answers = victim.read_until(b'Z').await;
    answers
        .iter()
        .any(|(tag, body)| *tag == b'E' && error_fields(body).0 == "57014")
}

#[tokio::test]
async fn cancel_requests_obey_the_allow_list() {
    let cluster = Cluster::shared();
    let open = proxy_with(cluster, |_| {}).await;
    assert!(
        cancel_through(cluster, open.addr).await,
        "a cancel through the proxy works"
    );
    // The test's connections come from 127.0.0.1, outside this list.
    let closed = proxy_with(cluster, |c| c.allow = vec!["10.0.0.0/8".parse().unwrap()]).await;
    assert!(
        !cancel_through(cluster, closed.addr).await,
        "a cancel from outside --allow reached the server"
    );
    assert_eq!(closed.shared.stats.limit_hits("allow_list"), 1);
    // A cancel takes a connection slot like any client.
    let full = proxy_with(cluster, |c| c.max_client_connections = 1).await;
    let _holder = Raw::login(full.addr, cluster.superuser()).await;
    assert!(
        !cancel_through(cluster, full.addr).await,
        "a cancel passed the connection limit"
    );
    assert_eq!(full.shared.stats.limit_hits("max_client_connections"), 1);
    full.shutdown().await.unwrap();
    open.shutdown().await.unwrap();
    closed.shutdown().await.unwrap();
}

#[tokio::test]
async fn secrets_never_reach_the_admin_api() {
    let cluster = Cluster::shared();
    let proxy = proxy_with(cluster, |c| {
        c.admin_listen = Some("127.0.0.1:0".parse().unwrap())
    })
    .await;
    let c = connect(cluster, proxy.addr, "postgres").await;
    let secret = "N3wPassw0rd";
    for text in [
        format!("ALTER ROLE nobody_here PASSWORD '{secret}"),
        format!("ALTER ROLE nobody_here PASSWORD \"{secret}\""),
        format!("CREATE USER MAPPING FOR nobody_here SERVER nowhere OPTIONS (password '{secret}')"),
        format!("SELECT 1 WHERE 'a' = '{secret}"),
    ] {
        assert!(c.simple_query(&text).await.is_err(), "{text} fails");
    }
    let reply = request(proxy.admin_addr.unwrap(), "GET", "/api/queries", None, None).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.contains("alter role nobody_here password $?"),
        "{}",
        reply.body
    );
    assert!(!reply.body.contains(secret), "{}", reply.body);
    proxy.shutdown().await.unwrap();
}

/// Runs `sql` (a cacheable read) and tells whether it was answered from the
/// cache.
async fn served_from_cache(
    proxy: &pgcache::ProxyHandle,
    c: &tokio_postgres::Client,
    sql: &str,
) -> bool {
    let hits = proxy.shared.stats.queries("hit");
    c.simple_query(sql).await.unwrap();
    proxy.shared.stats.queries("hit") == hits + 1
}

#[tokio::test]
async fn a_client_cannot_flush_the_cache_by_failing_to_log_in() {
    let cluster = Cluster::start(ClusterOptions::scram().setting("authentication_timeout", "1s"))
        .expect("a cluster with a short authentication_timeout");
    let proxy = proxy_with(&cluster, |_| {}).await;
    let c = connect(&cluster, proxy.addr, "postgres").await;
    c.batch_execute("CREATE TABLE kv AS SELECT 1 AS k, 'v'::text AS v")
        .await
        .unwrap();
    let q = "SELECT v FROM kv WHERE k = 1";
    c.simple_query(q).await.unwrap();
    assert!(
        served_from_cache(&proxy, &c, q).await,
        "cached to begin with"
    );

    // A failed login.
    let wrong = config_for(&cluster, proxy.addr, "postgres")
        .password("wrong")
        .connect(tokio_postgres::NoTls)
        .await;
    assert_eq!(
        wrong.err().and_then(|e| e.code().cloned()),
        Some(tokio_postgres::error::SqlState::INVALID_PASSWORD)
    );
    assert!(
        served_from_cache(&proxy, &c, q).await,
        "after a failed login"
    );

    // A login to a missing database (the server says AuthenticationOk first).
    let missing = config_for(&cluster, proxy.addr, "no_such_database")
        .connect(tokio_postgres::NoTls)
        .await;
    assert_eq!(
        missing.err().and_then(|e| e.code().cloned()),
        Some(tokio_postgres::error::SqlState::INVALID_CATALOG_NAME)
    );
    assert!(
        served_from_cache(&proxy, &c, q).await,
        "after a login to a missing database"
    );

    // A client that never answers the password request.
    let mut idle = Raw::connect(proxy.addr).await;
    idle.send(&startup_packet(
        3,
        0,
        &[("user", cluster.superuser()), ("database", "postgres")],
    ))
    .await;
    assert_eq!(idle.read_message().await.map(|m| m.0), Some(b'R'));
    assert!(
        idle.closed_within(Duration::from_secs(5)).await,
        "authentication_timeout"
    );
    assert!(
        served_from_cache(&proxy, &c, q).await,
        "after authentication_timeout"
    );

    // A password message larger than the server accepts.
    let mut oversized = Raw::connect(proxy.addr).await;
    oversized
        .send(&startup_packet(
            3,
            0,
            &[("user", cluster.superuser()), ("database", "postgres")],
        ))
        .await;
    assert_eq!(oversized.read_message().await.map(|m| m.0), Some(b'R'));
    oversized.send(&message(b'p', &vec![b'a'; 100_000])).await;
    assert!(
        oversized.closed_within(Duration::from_secs(5)).await,
        "the server refuses it"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        served_from_cache(&proxy, &c, q).await,
        "after an oversized password message"
    );
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_session_losing_its_server_does_not_flush_the_cache() {
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, "hostile_lost");
    let proxy = proxy_with(cluster, |_| {}).await;
    let c = connect(cluster, proxy.addr, &db).await;
    c.batch_execute("CREATE TABLE kv AS SELECT 1 AS k, 'v'::text AS v")
        .await
        .unwrap();
    let q = "SELECT v FROM kv WHERE k = 1";
    c.simple_query(q).await.unwrap();
    assert!(
        served_from_cache(&proxy, &c, q).await,
        "cached to begin with"
    );

    // A logged-in client sends a message the server refuses by its length
    // (Sync is limited to 10000 bytes): the server closes without a word.
    let mut oversized = Raw::login_to(proxy.addr, cluster.superuser(), &db).await;
    oversized.send(&message(b'S', &vec![0; 20_000])).await;
    assert!(
        oversized.closed_within(Duration::from_secs(5)).await,
        "the server refuses it"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        served_from_cache(&proxy, &c, q).await,
        "after an oversized message"
    );

    // A session whose backend is terminated (FATAL 57P01, as in a shutdown).
    let mut victim = Raw::login_to(proxy.addr, cluster.superuser(), &db).await;
    let pid: i32 = c
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND application_name = ''",
            &[&db],
        )
        .await
        .unwrap()
        .get(0);
    c.simple_query(&format!("SELECT pg_terminate_backend({pid})"))
        .await
        .unwrap();
    assert!(victim.closed_within(Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        served_from_cache(&proxy, &c, q).await,
        "after a backend was terminated"
    );
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_liveness_probe_tells_a_running_server_from_a_missing_one() {
    use pgcache::liveness::{probe, Verdict};
    let cluster = Cluster::shared();
    let up: pgcache::Upstream = cluster
        .url(cluster.superuser(), None, "postgres")
        .parse()
        .unwrap();
    assert_eq!(
        probe(&up, None, Duration::from_secs(5)).await,
        Verdict::Alive
    );
    let nobody = format!("postgres://x@127.0.0.1:{}/postgres", testkit::free_port());
    let down: pgcache::Upstream = nobody.parse().unwrap();
    assert!(matches!(
        probe(&down, None, Duration::from_secs(5)).await,
        Verdict::Gone(_)
    ));
}

/// Starts the binary under `ulimit -Sn soft -Hn hard`; returns its log once it
/// listens, and its soft open-file limit.
async fn start_with_fd_limit(cluster: &Cluster, soft: u64, hard: u64) -> (String, u64) {
    let port = testkit::free_port();
    let log = std::env::temp_dir().join(format!("pgcache-fd-{}-{port}.log", std::process::id()));
    let script = format!(
        "ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" --listen 127.0.0.1:{port} --upstream \"$1\" 2>\"$2\""
    );
    let url = cluster.url(
        cluster.superuser(),
        Some(cluster.superuser_password()),
        "postgres",
    );
    let mut child = std::process::Command::new("bash")
        .args([
            "-c",
            &script,
            env!("CARGO_BIN_EXE_pgcache"),
            &url,
            &log.to_string_lossy(),
        ])
        .env("RUST_LOG", "info")
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let limits =
        std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(up, "pgcache did not come up: {text}");
    let soft_now = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .expect("Max open files in /proc/PID/limits");
    (text, soft_now)
}

#[tokio::test]
async fn the_open_file_limit_is_checked_at_start() {
    let cluster = Cluster::shared();
    // 1000 clients (the default) need 2064 descriptors.
    let (log, soft) = start_with_fd_limit(cluster, 100, 300).await;
    assert_eq!(soft, 300, "the soft limit is raised to the hard one");
    assert!(log.contains("raise it to 2064"), "{log}");
    assert!(log.contains("--max-client-connections to 118"), "{log}");
    let (log, soft) = start_with_fd_limit(cluster, 100, 5000).await;
    assert_eq!(soft, 2064, "raised as far as needed");
    // (The readiness check above connects and leaves: that is logged too.)
    assert!(
        !log.lines()
            .any(|l| l.contains("WARN") && l.contains("fd_limit")),
        "{log}"
    );
}

#[tokio::test]
async fn large_texts_do_not_stall_other_sessions() {
    let _heavy = HEAVY.lock().await;
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, "hostile_stall");
    cluster
        .psql(&db, "CREATE TABLE kv AS SELECT 1 AS k, 'v'::text AS v")
        .unwrap();
    let proxy = Binary::start(cluster, false, &[]).await;
    let victim = connect(cluster, proxy.addr, &db).await;
    let q = "SELECT v FROM kv WHERE k = 1";
    victim.simple_query(q).await.unwrap();

    // As many attackers as the machine has cores, each sending 300 KB of
    // table names (the server refuses them at once: no schema "s").
    let mut names = String::from("SELECT 1 FROM s.t0");
    for i in 1.. {
        if names.len() > 300 << 10 {
            break;
        }
        names.push_str(&format!(", s.t{i}"));
    }
    let attackers: Vec<_> = (0..2)
        .map(|_| {
            let (names, cluster, addr, db) = (names.clone(), cluster, proxy.addr, db.clone());
            tokio::spawn(async move {
                let c = connect(cluster, addr, &db).await;
                let until = std::time::Instant::now() + Duration::from_secs(3);
                while std::time::Instant::now() < until {
                    assert!(c.simple_query(&names).await.is_err());
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..50 {
        let started = std::time::Instant::now();
        victim.simple_query(q).await.unwrap();
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a cached read took {slowest:?} while others sent large texts"
    );
    for a in attackers {
        a.await.unwrap();
    }
}

/// Nothing is done for a client before the server has accepted it: a query
/// sent before the password opens no catalog connection and is not analysed
/// (the server, not the proxy, answers it).
#[tokio::test]
async fn nothing_is_done_for_a_client_before_it_logs_in() {
    let cluster = Cluster::start(ClusterOptions::scram()).expect("a SCRAM cluster");
    let proxy = proxy_with(&cluster, |_| {}).await;
    let db = fresh_db(&cluster, "hostile_prelogin");
    let mut raw = Raw::connect(proxy.addr).await;
    raw.send(&startup_packet(
        3,
        0,
        &[("user", cluster.superuser()), ("database", &db)],
    ))
    .await;
    // A write to a qualified name: planned at once when analysed.
    let q = b"DELETE FROM public.t\0".to_vec();
    raw.send(&message(b'Q', &q)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let direct = connect(&cluster, cluster.addr(), "postgres").await;
    let rows = direct
        .query(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgcache-catalog'",
            &[],
        )
        .await
        .unwrap();
    let catalogs: i64 = rows[0].get(0);
    assert_eq!(catalogs, 0, "a catalog connection was opened before login");
    assert_eq!(
        proxy.shared.stats.queries("miss") + proxy.shared.stats.queries("bypass"),
        0,
        "a query was analysed before login"
    );
    drop(raw);
    proxy.shutdown().await.unwrap();
}
