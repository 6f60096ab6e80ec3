//! Helpers shared by the proxy's integration tests: a real PostgreSQL (from
//! testkit), a proxy in front of it in the test's own runtime, real clients.

#![allow(dead_code)]

pub mod binary;
pub mod certs;
pub mod feed;
pub mod http;
pub mod promql;
pub mod raw;
pub mod wire;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use pgcache::{Proxy, ProxyConfig, ProxyHandle};
use testkit::Cluster;
use tokio_postgres::{Client, Config, NoTls};

/// A proxy in front of `cluster`, with the defaults changed by `tune`.
pub async fn proxy_with(cluster: &Cluster, tune: impl FnOnce(&mut ProxyConfig)) -> ProxyHandle {
    let upstream = cluster
        .url(
            cluster.superuser(),
            Some(cluster.superuser_password()),
            "postgres",
        )
        .parse()
        .expect("valid upstream url");
    let mut config = ProxyConfig::new("127.0.0.1:0".parse().unwrap(), upstream);
    // Most tests watch what the proxy itself does (a write made behind its
    // back stays cached until the TTL); the tests of the feed turn it on.
    config.change_feed = pgcache::feed::ChangeFeedMode::Off;
    tune(&mut config);
    if config.change_feed != pgcache::feed::ChangeFeedMode::Off && config.policy.is_none() {
        config.policy = Some(relaxed_lag_policy());
    }
    Proxy::bind(config).await.expect("proxy binds").spawn()
}

/// A policy file whose `max_lag` is 2 s: tests with the change feed on judge
/// invalidation, not the lag, and a machine running every test binary at
/// once falls behind the default 250 ms now and then (no hit is served
/// meanwhile, and a test expecting one would fail). The tests of the lag
/// itself use [`default_lag_policy`].
pub fn relaxed_lag_policy() -> std::path::PathBuf {
    policy_file("relaxed-lag", "[cache]\nmax_lag = \"2s\"\n")
}

/// The default `max_lag` (250 ms) spelled out, for the tests of the lag.
pub fn default_lag_policy() -> std::path::PathBuf {
    policy_file("default-lag", "[cache]\nmax_lag = \"250ms\"\n")
}

fn policy_file(name: &str, text: &str) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("pgcache-test-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write the policy file");
    path
}

pub async fn proxy(cluster: &Cluster) -> ProxyHandle {
    proxy_with(cluster, |_| {}).await
}

pub fn config_for(cluster: &Cluster, addr: SocketAddr, db: &str) -> Config {
    let mut config = Config::new();
    config
        .host(addr.ip().to_string())
        .port(addr.port())
        .user(cluster.superuser())
        .password(cluster.superuser_password())
        .dbname(db)
        .connect_timeout(Duration::from_secs(10));
    config
}

/// A tokio-postgres client connected to `addr` as the superuser.
pub async fn connect(cluster: &Cluster, addr: SocketAddr, db: &str) -> Client {
    let (client, connection) = config_for(cluster, addr, db)
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A tokio-postgres client connected to `addr` as `user` with `password`.
pub async fn connect_as(addr: SocketAddr, user: &str, password: &str, db: &str) -> Client {
    let (client, connection) = Config::new()
        .host(addr.ip().to_string())
        .port(addr.port())
        .user(user)
        .password(password)
        .dbname(db)
        .connect_timeout(Duration::from_secs(10))
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr} as {user}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A fresh database for one test, so tests sharing a cluster don't collide.
pub fn fresh_db(cluster: &Cluster, name: &str) -> String {
    cluster
        .psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .expect("drop database");
    cluster.create_database(name).expect("create database");
    name.to_string()
}

/// Runs a PostgreSQL client program (psql, pgbench) against `addr`.
pub fn run_client(cluster: &Cluster, program: &str, addr: SocketAddr, args: &[&str]) -> Output {
    run_client_with(cluster, program, addr, args, None)
}

pub fn run_client_with(
    cluster: &Cluster,
    program: &str,
    addr: SocketAddr,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    use std::io::Write;
    let bin = testkit::bin(program).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("PGHOST", addr.ip().to_string())
        .env("PGPORT", addr.port().to_string())
        .env("PGUSER", cluster.superuser())
        .env("PGPASSWORD", cluster.superuser_password())
        .env("PGSSLMODE", "prefer")
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("run {program}: {e}"));
    let input = stdin.unwrap_or("").to_string();
    let mut pipe = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("wait for client");
    let _ = writer.join();
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Prometheus' `promtool`; the suite fails (never skips) without it.
pub fn promtool() -> std::path::PathBuf {
    for candidate in ["/usr/bin/promtool", "/usr/local/bin/promtool"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!("promtool not found: install it with `apt-get install -y prometheus` (bash scripts/test.sh does)");
}

/// The first column of the first row of a simple-protocol query, as text.
pub async fn value(client: &Client, sql: &str) -> String {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some(r.get(0).unwrap_or("NULL").to_string())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

/// A fresh database `name` set up with `sql` run straight on the server.
pub fn setup_db(cluster: &Cluster, name: &str, sql: &str) -> String {
    let db = fresh_db(cluster, name);
    cluster.psql(&db, sql).unwrap();
    db
}
