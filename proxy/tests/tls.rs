//! TLS terminated by the proxy: psql with verify-full against a test CA, SCRAM
//! through it, channel binding refused clearly, and plain connections refused
//! when TLS is required.

mod common;

use common::certs::certificates;
use common::{proxy_with, run_client, stderr, stdout};
use pgcache::tls::TlsMode;
use testkit::Cluster;

#[tokio::test]
async fn psql_verify_full_with_scram_and_required_mode() {
    let cluster = Cluster::shared_scram();
    let dir = std::env::temp_dir().join(format!("pgcache-tls-test-{}", std::process::id()));
    let (ca, cert, key) = certificates(&dir);
    let (c2, k2) = (cert.clone(), key.clone());
    let optional = proxy_with(cluster, move |c| {
        c.tls_mode = TlsMode::Optional;
        c.tls_cert = Some(c2);
        c.tls_key = Some(k2);
    })
    .await;
    let required = proxy_with(cluster, move |c| {
        c.tls_mode = TlsMode::Required;
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
    })
    .await;
    let (opt, req) = (optional.addr, required.addr);
    let ca2 = ca.clone();
    let outs = tokio::task::spawn_blocking(move || {
        let conn = |mode: &str, extra: &str| {
            format!(
                "host=localhost dbname=postgres sslmode={mode} sslrootcert={} {extra}",
                ca2.display()
            )
        };
        let psql = |addr, conninfo: String, sql: &str| {
            run_client(
                cluster,
                "psql",
                addr,
                &["-X", "-A", "-t", "-d", &conninfo, "-c", sql],
            )
        };
        vec![
            psql(opt, conn("verify-full", ""), "\\conninfo"),
            psql(opt, conn("require", ""), "SELECT 'over tls'"),
            psql(opt, conn("disable", ""), "SELECT 'plain'"),
            psql(opt, conn("require", "channel_binding=require"), "SELECT 1"),
            psql(req, conn("disable", ""), "SELECT 1"),
            psql(req, conn("verify-full", ""), "SELECT 'required ok'"),
        ]
    })
    .await
    .unwrap();
    let ok = |i: usize| {
        assert!(outs[i].status.success(), "case {i}: {}", stderr(&outs[i]));
        stdout(&outs[i])
    };
    assert!(ok(0).contains("SSL connection"), "{}", ok(0));
    assert_eq!(ok(1).trim(), "over tls");
    assert_eq!(ok(2).trim(), "plain");
    assert!(!outs[3].status.success());
    assert!(
        stderr(&outs[3]).contains("channel binding"),
        "{}",
        stderr(&outs[3])
    );
    assert!(!outs[4].status.success());
    assert!(
        stderr(&outs[4]).contains("requires an encrypted connection"),
        "{}",
        stderr(&outs[4])
    );
    assert_eq!(ok(5).trim(), "required ok");
    let _ = std::fs::remove_dir_all(&dir);
    optional.shutdown().await.unwrap();
    required.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_certificate_files_are_a_clear_startup_error() {
    let cluster = Cluster::shared();
    let upstream = cluster
        .url(
            cluster.superuser(),
            Some(cluster.superuser_password()),
            "postgres",
        )
        .parse()
        .unwrap();
    let mut config = pgcache::ProxyConfig::new("127.0.0.1:0".parse().unwrap(), upstream);
    config.tls_mode = TlsMode::Optional;
    let err = pgcache::Proxy::bind(config.clone()).await.err().unwrap();
    assert!(err.to_string().contains("--tls-cert"), "{err}");
    config.tls_cert = Some("/nonexistent/cert.pem".into());
    config.tls_key = Some("/nonexistent/key.pem".into());
    let err = pgcache::Proxy::bind(config).await.err().unwrap();
    assert!(
        format!("{err:#}").contains("/nonexistent/cert.pem"),
        "{err:#}"
    );
}
