//! Authentication passes through untouched: the proxy never sees a password,
//! yet SCRAM-SHA-256, MD5 and cleartext password logins work end to end.

mod common;

use common::proxy;
use testkit::{Cluster, HbaMethod, PasswordKind};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

async fn login(
    addr: std::net::SocketAddr,
    user: &str,
    password: &str,
) -> Result<i32, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::Config::new()
        .host(addr.ip().to_string())
        .port(addr.port())
        .user(user)
        .password(password)
        .dbname("postgres")
        .connect(NoTls)
        .await?;
    tokio::spawn(connection);
    let row = client.query_one("SELECT 7", &[]).await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn scram_md5_and_password_logins_pass_through() {
    let cluster = Cluster::shared_scram();
    cluster
        .create_user_with_method(
            "scram_alice",
            "alice-pw",
            PasswordKind::Scram,
            HbaMethod::Scram,
        )
        .unwrap();
    cluster
        .create_user_with_method("md5_bob", "bob-pw", PasswordKind::Md5, HbaMethod::Md5)
        .unwrap();
    cluster
        .create_user_with_method(
            "pw_carol",
            "carol-pw",
            PasswordKind::Scram,
            HbaMethod::Password,
        )
        .unwrap();
    let proxy = proxy(cluster).await;
    for (user, pw) in [
        ("scram_alice", "alice-pw"),
        ("md5_bob", "bob-pw"),
        ("pw_carol", "carol-pw"),
        (cluster.superuser(), cluster.superuser_password()),
    ] {
        assert_eq!(login(proxy.addr, user, pw).await.unwrap(), 7, "{user}");
        // And the same against the server, for comparison.
        assert_eq!(login(cluster.addr(), user, pw).await.unwrap(), 7, "{user}");
        let err = login(proxy.addr, user, "wrong").await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(&SqlState::INVALID_PASSWORD),
            "{user}: {err}"
        );
    }
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn psql_logs_in_with_scram_through_the_proxy() {
    let cluster = Cluster::shared_scram();
    let proxy = proxy(cluster).await;
    let addr = proxy.addr;
    let out = tokio::task::spawn_blocking(move || {
        common::run_client(
            cluster,
            "psql",
            addr,
            &[
                "-X",
                "-A",
                "-t",
                "-d",
                "postgres",
                "-c",
                "SELECT current_user",
            ],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(common::stdout(&out).trim(), cluster.superuser());
    proxy.shutdown().await.unwrap();
}
