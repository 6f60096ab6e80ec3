//! Real drivers through the proxy: psycopg 3, psycopg2 (libpq) and asyncpg
//! (Python), pgJDBC and node-postgres each run a scripted session (tests/drivers/) against
//! the server, then the same session through pgcache. The transcripts must be identical, and the
//! proxy must have answered part of it from the cache.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::{fresh_db, proxy};
use testkit::Cluster;
use tokio::process::Command;

/// Debian's interpreter, where python3-psycopg and python3-asyncpg install.
const PYTHON: &str = "/usr/bin/python3";
/// Debian's pgJDBC (libpostgresql-jdbc-java).
const JDBC_JAR: &str = "/usr/share/java/postgresql.jar";

const SCHEMA: &str = "CREATE TABLE items (
    id int PRIMARY KEY,
    name text NOT NULL,
    price numeric(10, 2) NOT NULL,
    tags text[],
    doc jsonb,
    raw bytea
)";

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/drivers")
}

/// Runs a driver program and returns its transcript (stdout).
async fn transcript(mut command: Command) -> String {
    let out = command.output().await.expect("start the driver program");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.ends_with("done\n"),
        "driver program failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Fails, saying how to install it, when Debian's python3 lacks `module`.
fn require_python_module(module: &str, package: &str) {
    let ok = std::process::Command::new(PYTHON)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{PYTHON} cannot import {module}: install it with `apt-get install {package}` \
         (scripts/system-deps.sh does)"
    );
}

/// Debian's python3 running one of the session scripts.
fn python(script: &str, target: String) -> Command {
    let mut command = Command::new(PYTHON);
    command.arg(scripts().join(script)).arg(target);
    command
}

/// libpq's key=value connection string for the superuser.
fn conninfo(cluster: &Cluster, addr: SocketAddr, db: &str) -> String {
    format!(
        "host={} port={} user={} password={} dbname={db} sslmode=disable",
        addr.ip(),
        addr.port(),
        cluster.superuser(),
        cluster.superuser_password()
    )
}

/// A postgresql:// URL for the superuser.
fn url(cluster: &Cluster, addr: SocketAddr, db: &str) -> String {
    format!(
        "postgresql://{}:{}@{}:{}/{db}?sslmode=disable",
        cluster.superuser(),
        cluster.superuser_password(),
        addr.ip(),
        addr.port()
    )
}

/// Runs `session` against the server and through a fresh proxy, on a fresh
/// database with the test schema, and compares the transcripts.
async fn same_through_the_proxy(db: &str, session: impl Fn(&Cluster, SocketAddr, &str) -> Command) {
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, db);
    cluster.psql(&db, SCHEMA).expect("schema");
    let proxy = proxy(cluster).await;
    let direct = transcript(session(cluster, cluster.addr(), &db)).await;
    let through = transcript(session(cluster, proxy.addr, &db)).await;
    assert_eq!(through, direct, "the transcripts differ");
    let hits = proxy.shared.stats.queries("hit");
    assert!(hits > 0, "nothing was answered from the cache");
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn psycopg_sessions_are_the_same_through_the_proxy() {
    require_python_module("psycopg", "python3-psycopg");
    same_through_the_proxy("drivers_psycopg", |cluster, addr, db| {
        python("psycopg_check.py", conninfo(cluster, addr, db))
    })
    .await;
}

#[tokio::test]
async fn psycopg2_sessions_are_the_same_through_the_proxy() {
    require_python_module("psycopg2", "python3-psycopg2");
    same_through_the_proxy("drivers_psycopg2", |cluster, addr, db| {
        python("psycopg2_check.py", conninfo(cluster, addr, db))
    })
    .await;
}

#[tokio::test]
async fn asyncpg_sessions_are_the_same_through_the_proxy() {
    require_python_module("asyncpg", "python3-asyncpg");
    same_through_the_proxy("drivers_asyncpg", |cluster, addr, db| {
        python("asyncpg_check.py", url(cluster, addr, db))
    })
    .await;
}

#[tokio::test]
async fn jdbc_sessions_are_the_same_through_the_proxy() {
    assert!(
        Path::new(JDBC_JAR).exists(),
        "{JDBC_JAR} is missing: install it with `apt-get install libpostgresql-jdbc-java` \
         (scripts/system-deps.sh does)"
    );
    let classes = std::env::temp_dir().join(format!("pgcache-jdbc-{}", std::process::id()));
    std::fs::create_dir_all(&classes).unwrap();
    let javac = std::process::Command::new("javac")
        .arg("-cp")
        .arg(JDBC_JAR)
        .arg("-d")
        .arg(&classes)
        .arg(scripts().join("JdbcCheck.java"))
        .output()
        .unwrap_or_else(|e| {
            panic!("javac: {e}: install a JDK with `apt-get install default-jdk-headless`")
        });
    assert!(
        javac.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&javac.stderr)
    );
    same_through_the_proxy("drivers_jdbc", |cluster, addr, db| {
        let mut command = Command::new("java");
        command
            .arg("-cp")
            .arg(format!("{}:{JDBC_JAR}", classes.display()))
            .arg("JdbcCheck")
            .arg(format!(
                "jdbc:postgresql://{}:{}/{db}?prepareThreshold=1&sslmode=disable",
                addr.ip(),
                addr.port()
            ))
            .arg(cluster.superuser())
            .arg(cluster.superuser_password());
        command
    })
    .await;
    let _ = std::fs::remove_dir_all(&classes);
}

#[tokio::test]
async fn node_postgres_sessions_are_the_same_through_the_proxy() {
    let node_dir = scripts().join("node");
    assert!(
        node_dir.join("node_modules/pg").exists(),
        "node-postgres is missing: run `npm ci --prefix {}` (scripts/test.sh does)",
        node_dir.display()
    );
    same_through_the_proxy("drivers_node_pg", |cluster, addr, db| {
        let mut command = Command::new("node");
        command
            .arg(node_dir.join("pg_check.js"))
            .arg(url(cluster, addr, db));
        command
    })
    .await;
}
