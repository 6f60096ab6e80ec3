use std::time::Instant;

use super::*;

#[tokio::test]
async fn mark_stale_reloads() {
    let db = "cat_refresh";
    let (catalogs, catalog, first) = fresh(db, "CREATE TABLE before (id int)").await;
    let public = path(&["public"]);
    assert!(first
        .resolve(&rel(None, "before"), &public, "postgres")
        .is_some());
    Cluster::shared()
        .psql(db, "CREATE TABLE after (id int)")
        .unwrap();

    // Not marked, not old: the same snapshot.
    let same = catalog.snapshot().await.unwrap();
    assert!(Arc::ptr_eq(&first, &same));
    assert!(same
        .resolve(&rel(None, "after"), &public, "postgres")
        .is_none());

    catalog.mark_stale();
    let fresh = catalog.snapshot().await.unwrap();
    assert!(!Arc::ptr_eq(&first, &fresh));
    assert!(fresh
        .resolve(&rel(None, "after"), &public, "postgres")
        .is_some());

    // Catalogs::get is a lookup now: same catalog, same index.
    let again = catalogs.get(db).await.unwrap();
    assert!(Arc::ptr_eq(&catalog, &again));
    assert!(fresh.load_duration() < Duration::from_secs(5));
    eprintln!(
        "catalog load: {} relations in {:?}",
        fresh.relation_count(),
        fresh.load_duration()
    );
}

#[tokio::test]
async fn concurrent_callers_share_one_reload() {
    let (_catalogs, catalog, first) = fresh("cat_single_flight", "").await;
    catalog.mark_stale();
    let snapshots = futures_join_all((0..8).map(|_| {
        let catalog = Arc::clone(&catalog);
        tokio::spawn(async move { catalog.snapshot().await.unwrap() })
    }))
    .await;
    for s in &snapshots {
        assert!(!Arc::ptr_eq(s, &first));
        assert!(Arc::ptr_eq(s, &snapshots[0]), "one reload for all");
    }
}

async fn futures_join_all<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn periodic_refresh_picks_up_outside_ddl() {
    let db = "cat_periodic";
    Cluster::shared().create_database(db).unwrap();
    let mut config = config();
    config.refresh_interval = Duration::from_millis(200);
    let catalogs = Catalogs::new(config);
    let catalog = catalogs.get(db).await.unwrap();
    Cluster::shared()
        .psql(db, "CREATE TABLE outside (id int)")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = catalog.snapshot().await.unwrap();
    assert!(s
        .resolve(&rel(None, "outside"), &path(&["public"]), "postgres")
        .is_some());
}

#[tokio::test]
async fn databases_get_distinct_indexes() {
    let pg = Cluster::shared();
    pg.create_database("cat_index_a").unwrap();
    pg.create_database("cat_index_b").unwrap();
    let catalogs = Catalogs::new(config());
    let a = catalogs.get("cat_index_a").await.unwrap();
    let b = catalogs.get("cat_index_b").await.unwrap();
    assert_eq!((a.index(), b.index()), (0, 1));
    assert_eq!((a.database(), b.database()), ("cat_index_a", "cat_index_b"));
    assert_eq!(catalogs.get("cat_index_a").await.unwrap().index(), 0);
}

#[tokio::test]
async fn connect_failure_is_quick_and_remembered() {
    let mut config = config();
    config.port = testkit::free_port();
    config.connect_timeout = Duration::from_secs(2);
    let catalogs = Catalogs::new(config);
    let started = Instant::now();
    let err = catalogs.get("postgres").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, crate::catalog::CatalogError::Connect { .. }),
        "{err}"
    );
    // Within the backoff the same error comes back without a new attempt.
    let started = Instant::now();
    let again = catalogs.get("postgres").await.unwrap_err();
    assert_eq!(again, err);
    assert!(started.elapsed() < Duration::from_millis(50));
}

#[tokio::test]
async fn unresponsive_server_times_out() {
    // Accepts TCP connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut config = config();
    config.port = port;
    config.connect_timeout = Duration::from_millis(500);
    let catalogs = Catalogs::new(config);
    let started = Instant::now();
    let err = catalogs.get("postgres").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, crate::catalog::CatalogError::Timeout { .. }),
        "{err}"
    );
    held.abort();
}

#[tokio::test]
async fn missing_database_is_an_error() {
    let catalogs = Catalogs::new(config());
    let err = catalogs.get("cat_no_such_database").await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

/// The proxy shares these across tasks and awaits them in spawned ones.
#[allow(dead_code)]
fn shareable_across_tasks(catalogs: &'static Catalogs, catalog: &'static DbCatalog) {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<Catalogs>();
    send_sync::<DbCatalog>();
    send_sync::<Snapshot>();
    send_sync::<crate::catalog::CatalogError>();
    send(&catalogs.get("db"));
    send(&catalog.snapshot());
}
