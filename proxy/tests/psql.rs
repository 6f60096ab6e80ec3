//! psql through the proxy: the simple protocol, scripts, \copy, large objects
//! (the function-call message), errors, and the SSL refusal.

mod common;

use common::{fresh_db, proxy, run_client, run_client_with, stderr, stdout};
use testkit::Cluster;

#[tokio::test]
async fn scripts_and_errors_match_the_server() {
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, "psql_script");
    let proxy = proxy(cluster).await;
    let script = "
        CREATE TABLE notes (id serial PRIMARY KEY, body text);
        INSERT INTO notes (body) VALUES ('a'), ('b'), ('c');
        BEGIN;
        UPDATE notes SET body = upper(body);
        SAVEPOINT s;
        DELETE FROM notes;
        ROLLBACK TO s;
        COMMIT;
        SELECT string_agg(body, ',' ORDER BY id) FROM notes;
        SELECT 1/0;
    ";
    let db2 = db.clone();
    let run = move |addr| {
        let out = run_client_with(
            cluster,
            "psql",
            addr,
            &["-X", "-q", "-A", "-t", "-d", &db2, "-f", "-"],
            Some(script),
        );
        (stdout(&out), stderr(&out))
    };
    let (out, err) = tokio::task::spawn_blocking({
        let (addr, run) = (proxy.addr, run.clone());
        move || run(addr)
    })
    .await
    .unwrap();
    assert_eq!(out.trim(), "A,B,C");
    assert!(err.contains("ERROR:  division by zero"), "{err}");

    // The same statements against the server give the same output.
    cluster
        .psql(&db, "DROP TABLE notes")
        .expect("reset for the direct run");
    let (direct_out, direct_err) = tokio::task::spawn_blocking(move || run(cluster.addr()))
        .await
        .unwrap();
    assert_eq!(out, direct_out);
    assert_eq!(
        err.replace("<stdin>", ""),
        direct_err.replace("<stdin>", "")
    );
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn backslash_copy_both_ways() {
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, "psql_copy");
    let proxy = proxy(cluster).await;
    let dir = std::env::temp_dir().join(format!("pgcache-psql-copy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.csv");
    let output = dir.join("out.csv");
    let rows: String = (1..=5000).map(|i| format!("{i},item {i}\n")).collect();
    std::fs::write(&input, &rows).unwrap();
    let addr = proxy.addr;
    let (db2, input2, output2) = (db.clone(), input.clone(), output.clone());
    let out = tokio::task::spawn_blocking(move || {
        let script = format!(
            "CREATE TABLE items (id int, name text);\n\
             \\copy items FROM '{}' WITH (FORMAT csv)\n\
             \\copy (SELECT * FROM items ORDER BY id) TO '{}' WITH (FORMAT csv)\n\
             SELECT count(*) FROM items;\n",
            input2.display(),
            output2.display()
        );
        run_client_with(
            cluster,
            "psql",
            addr,
            &[
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &db2,
                "-f",
                "-",
            ],
            Some(&script),
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "5000");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), rows);

    // A COPY that fails in the middle reports the server's error with its line.
    std::fs::write(&input, "1,ok\nx,broken\n").unwrap();
    let input2 = input.clone();
    let out = tokio::task::spawn_blocking(move || {
        run_client(
            cluster,
            "psql",
            addr,
            &[
                "-X",
                "-d",
                &db,
                "-c",
                &format!("\\copy items FROM '{}' WITH (FORMAT csv)", input2.display()),
            ],
        )
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("invalid input syntax for type integer"),
        "{err}"
    );
    assert!(err.contains("line 2"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn large_objects_use_the_function_call_message() {
    let cluster = Cluster::shared();
    let db = fresh_db(cluster, "psql_lo");
    let proxy = proxy(cluster).await;
    let dir = std::env::temp_dir().join(format!("pgcache-psql-lo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(dir.join("blob.bin"), &blob).unwrap();
    let addr = proxy.addr;
    let dir2 = dir.clone();
    // libpq implements lo_import/lo_export with the fast-path function call ('F').
    let out = tokio::task::spawn_blocking(move || {
        let script = format!(
            "\\lo_import '{0}/blob.bin'\n\
             SELECT lo_export(:LASTOID, '/dev/null') IS NOT NULL;\n\
             \\lo_export :LASTOID '{0}/copy.bin'\n",
            dir2.display()
        );
        run_client_with(
            cluster,
            "psql",
            addr,
            &["-X", "-v", "ON_ERROR_STOP=1", "-d", &db, "-f", "-"],
            Some(&script),
        )
    })
    .await
    .unwrap();
    // lo_export to a server file needs superuser and a server-writable path; only
    // the client-side import/export matter here.
    let copy = std::fs::read(dir.join("copy.bin"));
    assert!(
        copy.as_deref().ok() == Some(&blob[..]),
        "round trip failed: {}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
    proxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn sslmode_require_is_refused_clearly_and_prefer_falls_back() {
    let cluster = Cluster::shared();
    let proxy = proxy(cluster).await;
    let addr = proxy.addr;
    let (required, preferred) = tokio::task::spawn_blocking(move || {
        let required = run_client(
            cluster,
            "psql",
            addr,
            &[
                "-X",
                "-d",
                "sslmode=require dbname=postgres",
                "-c",
                "SELECT 1",
            ],
        );
        let preferred = run_client(
            cluster,
            "psql",
            addr,
            &[
                "-X",
                "-A",
                "-t",
                "-d",
                "sslmode=prefer dbname=postgres",
                "-c",
                "SELECT 42",
            ],
        );
        (required, preferred)
    })
    .await
    .unwrap();
    assert!(!required.status.success());
    assert!(
        stderr(&required).contains("server does not support SSL"),
        "{}",
        stderr(&required)
    );
    assert_eq!(stdout(&preferred).trim(), "42", "{}", stderr(&preferred));
    proxy.shutdown().await.unwrap();
}
