use super::*;

#[tokio::test]
async fn search_path_and_isolation_by_precedence() {
    let db = "cat_settings";
    let (_c, _db, s) = fresh(
        db,
        "
        CREATE ROLE set_both; CREATE ROLE set_role_only; CREATE ROLE set_none;
        ALTER ROLE set_both IN DATABASE cat_settings SET search_path = app, \"Audit\";
        ALTER ROLE set_both SET search_path = ignored;
        ALTER ROLE set_role_only SET search_path = roleschema, public;
        ALTER ROLE set_role_only IN DATABASE postgres SET search_path = elsewhere;
        ALTER DATABASE cat_settings SET search_path = dbschema;
        ALTER ROLE set_both IN DATABASE cat_settings SET default_transaction_isolation = 'serializable';
        ALTER ROLE set_role_only SET default_transaction_isolation = 'repeatable read';
        ",
    )
    .await;
    assert_eq!(s.default_search_path("set_both"), ["app", "Audit"]);
    assert_eq!(
        s.default_search_path("set_role_only"),
        ["roleschema", "public"]
    );
    assert_eq!(s.default_search_path("set_none"), ["dbschema"]);
    assert!(!s.default_isolation_is_read_committed("set_both"));
    assert!(!s.default_isolation_is_read_committed("set_role_only"));
    assert!(s.default_isolation_is_read_committed("set_none"));
}

#[tokio::test]
async fn server_defaults_without_settings() {
    let (_c, _db, s) = fresh("cat_settings_default", "CREATE ROLE set_plain").await;
    assert_eq!(s.default_search_path("set_plain"), ["$user", "public"]);
    assert!(s.default_isolation_is_read_committed("set_plain"));
}

#[tokio::test]
async fn alter_role_seen_after_mark_all_stale() {
    let db = "cat_settings_refresh";
    let (catalogs, catalog, s) = fresh(db, "CREATE ROLE set_later").await;
    assert_eq!(s.default_search_path("set_later"), ["$user", "public"]);
    Cluster::shared()
        .psql(
            db,
            "ALTER ROLE set_later IN DATABASE cat_settings_refresh SET search_path = later",
        )
        .unwrap();
    catalogs.mark_all_stale();
    let s = catalog.snapshot().await.unwrap();
    assert_eq!(s.default_search_path("set_later"), ["later"]);
}

/// The proxy's service role need not be a superuser, and its own role
/// settings must neither leak into the catalog's queries nor be taken for
/// the server's defaults.
#[tokio::test]
async fn unprivileged_service_role_with_its_own_settings() {
    let db = "cat_settings_service";
    let pg = Cluster::shared();
    pg.create_database(db).unwrap();
    pg.psql(
        db,
        "
        DO $$ BEGIN CREATE ROLE cat_svc LOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
        ALTER ROLE cat_svc SET search_path = svc_only;
        ALTER ROLE cat_svc SET default_transaction_isolation = 'serializable';
        CREATE SCHEMA svc_only; CREATE TABLE svc_only.pg_class (id int);
        CREATE TABLE public.t (id int);
        DO $$ BEGIN CREATE ROLE cat_app; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
        ",
    )
    .unwrap();
    let mut config = config();
    config.user = "cat_svc".to_string();
    config.password = None;
    let catalogs = Catalogs::new(config);
    let s = catalogs.get(db).await.unwrap().snapshot().await.unwrap();
    assert_eq!(s.default_search_path("cat_app"), ["$user", "public"]);
    assert!(s.default_isolation_is_read_committed("cat_app"));
    assert_eq!(s.default_search_path("cat_svc"), ["svc_only"]);
    assert!(!s.default_isolation_is_read_committed("cat_svc"));
    let t = s.resolve(&rel(None, "t"), &path(&["$user", "public"]), "cat_app");
    assert_eq!(t.map(|r| r.schema.as_str()), Some("public"));
}
