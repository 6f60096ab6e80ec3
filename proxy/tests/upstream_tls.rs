//! TLS toward the upstream: a server that accepts TCP over TLS only, reached
//! with sslmode=verify-full (sessions and the catalog connection), require,
//! and refused clearly with a wrong CA or without TLS.

mod common;

use std::sync::OnceLock;

use common::certs::certificates;
use common::{proxy_with, run_client, stderr, stdout};
use testkit::{Cluster, ClusterOptions};

struct Setup {
    cluster: Cluster,
    ca: std::path::PathBuf,
    wrong_ca: std::path::PathBuf,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("pgcache-upstream-tls-{}", std::process::id()));
        let (ca, cert, key) = certificates(&dir.join("good"));
        let (wrong_ca, _, _) = certificates(&dir.join("other"));
        let cluster = Cluster::start(ClusterOptions::default().tls_only(
            std::fs::read_to_string(cert).unwrap(),
            std::fs::read_to_string(key).unwrap(),
        ))
        .expect("a TLS-only cluster");
        Setup {
            cluster,
            ca,
            wrong_ca,
        }
    })
}

fn upstream(setup: &Setup, query: &str) -> pgcache::Upstream {
    let c = &setup.cluster;
    format!(
        "{}?{query}",
        c.url(c.superuser(), Some(c.superuser_password()), "postgres")
    )
    .parse()
    .unwrap()
}

async fn psql(
    setup: &'static Setup,
    addr: std::net::SocketAddr,
    sql: &'static str,
) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        run_client(
            &setup.cluster,
            "psql",
            addr,
            &[
                "-X",
                "-A",
                "-t",
                "-d",
                "dbname=postgres sslmode=disable",
                "-c",
                sql,
            ],
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn verify_full_serves_and_caches_through_a_tls_only_server() {
    let setup = setup();
    let query = format!("sslmode=verify-full&sslrootcert={}", setup.ca.display());
    let up = upstream(setup, &query);
    let proxy = proxy_with(&setup.cluster, move |c| c.upstream = up).await;
    setup
        .cluster
        .psql(
            "postgres",
            "CREATE TABLE IF NOT EXISTS t (v int); TRUNCATE t; INSERT INTO t VALUES (5);",
        )
        .unwrap();
    for _ in 0..3 {
        let out = psql(setup, proxy.addr, "SELECT v FROM t").await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).trim(), "5");
    }
    // Hits prove the catalog connection got through TLS too.
    assert!(
        proxy.shared.stats.queries("hit") >= 2,
        "no hits: the catalog did not connect"
    );
    let out = psql(
        setup,
        proxy.addr,
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .await;
    assert_eq!(
        stdout(&out).trim(),
        "t",
        "the upstream session is encrypted"
    );
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn require_encrypts_and_wrong_ca_or_no_tls_is_refused_clearly() {
    let setup = setup();
    let up = upstream(setup, "sslmode=require");
    let require = proxy_with(&setup.cluster, move |c| c.upstream = up).await;
    let out = psql(setup, require.addr, "SELECT 'encrypted'").await;
    assert_eq!(stdout(&out).trim(), "encrypted", "{}", stderr(&out));

    let query = format!(
        "sslmode=verify-full&sslrootcert={}",
        setup.wrong_ca.display()
    );
    let up = upstream(setup, &query);
    let wrong = proxy_with(&setup.cluster, move |c| c.upstream = up).await;
    let out = psql(setup, wrong.addr, "SELECT 1").await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("TLS handshake failed"),
        "{}",
        stderr(&out)
    );

    let up = upstream(setup, "sslmode=disable");
    let plain = proxy_with(&setup.cluster, move |c| c.upstream = up).await;
    let out = psql(setup, plain.addr, "SELECT 1").await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no encryption"),
        "the server's own refusal: {}",
        stderr(&out)
    );
    for p in [require, wrong, plain] {
        p.shutdown().await.unwrap();
    }
}
