use tokio_postgres::NoTls;

use super::*;
use crate::catalog::RelKind;

const SETUP: &str = "
CREATE SCHEMA a; CREATE SCHEMA b;
CREATE TABLE a.t (id int); CREATE TABLE b.t (id int); CREATE TABLE public.t (id int);
CREATE TABLE a.only_a (id int);
CREATE TABLE a.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx (id int);
CREATE TABLE a.pg_class (id int);
DO $$ BEGIN CREATE ROLE res_alice; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
DO $$ BEGIN CREATE ROLE res_bob; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
CREATE SCHEMA res_alice AUTHORIZATION res_alice;
CREATE TABLE res_alice.t (id int);
CREATE SCHEMA \"Mixed\"; CREATE TABLE \"Mixed\".\"T\" (id int);
CREATE SCHEMA hidden; REVOKE ALL ON SCHEMA hidden FROM PUBLIC; CREATE TABLE hidden.t (id int);
CREATE SCHEMA opened; GRANT USAGE ON SCHEMA opened TO PUBLIC; CREATE TABLE opened.t (id int);
CREATE VIEW public.v AS SELECT * FROM public.t;
CREATE MATERIALIZED VIEW public.mv AS SELECT * FROM public.t;
CREATE SEQUENCE public.s;
CREATE INDEX t_idx ON public.t (id);
CREATE FOREIGN DATA WRAPPER res_dummy; CREATE SERVER res_srv FOREIGN DATA WRAPPER res_dummy;
CREATE FOREIGN TABLE public.ft (id int) SERVER res_srv;
CREATE TABLE public.secure (id int); ALTER TABLE public.secure ENABLE ROW LEVEL SECURITY;
";

fn schema_of<'a>(s: &'a Snapshot, name: &str, search_path: &[&str], user: &str) -> Option<&'a str> {
    s.resolve(&rel(None, name), &path(search_path), user)
        .map(|r| r.schema.as_str())
}

#[tokio::test]
async fn resolves_through_search_path() {
    let (_c, _db, s) = fresh("cat_resolve", SETUP).await;
    assert_eq!(schema_of(&s, "t", &["a", "b"], "postgres"), Some("a"));
    assert_eq!(schema_of(&s, "t", &["b", "a"], "postgres"), Some("b"));
    assert_eq!(schema_of(&s, "only_a", &["b", "a"], "postgres"), Some("a"));
    assert_eq!(schema_of(&s, "only_a", &["b", "public"], "postgres"), None);
    // Nonexistent schemas are skipped.
    assert_eq!(schema_of(&s, "t", &["nope", "b"], "postgres"), Some("b"));
    // "$user" is the current role's schema when there is one.
    assert_eq!(
        schema_of(&s, "t", &["$user", "public"], "res_alice"),
        Some("res_alice")
    );
    assert_eq!(
        schema_of(&s, "t", &["$user", "public"], "res_bob"),
        Some("public")
    );
    // pg_catalog comes first unless the path places it.
    let pg_class = schema_of(&s, "pg_class", &["a"], "postgres");
    assert_eq!(pg_class, Some("pg_catalog"));
    assert_eq!(
        schema_of(&s, "pg_class", &["a", "pg_catalog"], "postgres"),
        Some("a")
    );
    // Explicit schemas; quoted (case-preserved) names.
    let explicit = s.resolve(&rel(Some("public"), "t"), &path(&["a"]), "postgres");
    assert_eq!(explicit.map(|r| r.schema.as_str()), Some("public"));
    assert!(s
        .resolve(&rel(Some("b"), "only_a"), &[], "postgres")
        .is_none());
    assert!(s
        .resolve(&rel(Some("Mixed"), "T"), &[], "postgres")
        .is_some());
    assert!(s
        .resolve(&rel(Some("mixed"), "t"), &[], "postgres")
        .is_none());
    // pg_temp is never resolved.
    assert!(s
        .resolve(&rel(Some("pg_temp"), "t"), &[], "postgres")
        .is_none());
    assert_eq!(schema_of(&s, "t", &["pg_temp", "b"], "postgres"), Some("b"));
    // Empty path: only pg_catalog.
    assert_eq!(schema_of(&s, "t", &[], "postgres"), None);
    // Identifiers longer than 63 bytes mean their first 63.
    let long = "x".repeat(70);
    assert_eq!(schema_of(&s, &long, &["a"], "postgres"), Some("a"));
    assert_eq!(schema_of(&s, &long[..63], &["a"], "postgres"), Some("a"));
}

#[tokio::test]
async fn schemas_a_role_may_not_use_are_not_guessed() {
    let (_c, _db, s) = fresh("cat_resolve_usage", SETUP).await;
    // res_bob may lack USAGE on `hidden`: PostgreSQL would skip it and find
    // public.t, a superuser finds hidden.t; unsure, so no answer.
    assert_eq!(schema_of(&s, "t", &["hidden", "public"], "res_bob"), None);
    assert_eq!(
        schema_of(&s, "t", &["hidden", "public"], "postgres"),
        Some("hidden")
    );
    // Only one candidate: no ambiguity (a lack of USAGE is an error).
    assert_eq!(schema_of(&s, "t", &["hidden"], "res_bob"), Some("hidden"));
    // PUBLIC has USAGE: certain.
    assert_eq!(
        schema_of(&s, "t", &["opened", "public"], "res_bob"),
        Some("opened")
    );
    // The owner can use its schema.
    assert_eq!(
        schema_of(&s, "t", &["res_alice", "public"], "res_alice"),
        Some("res_alice")
    );
}

#[tokio::test]
async fn relation_facts() {
    let (_c, _db, s) = fresh("cat_relation_facts", SETUP).await;
    let get = |q: &str| s.relation(oid(&s, q)).cloned().expect("relation");
    let t = get("public.t");
    assert_eq!(
        (t.kind, t.system, t.temporary, t.row_security),
        (RelKind::Table, false, false, false)
    );
    assert!(!t.has_user_triggers && !t.has_rules);
    assert_eq!(get("public.v").kind, RelKind::View);
    assert!(
        !get("public.v").has_rules,
        "_RETURN is not a rule for has_rules"
    );
    assert_eq!(get("public.mv").kind, RelKind::MaterializedView);
    assert_eq!(get("public.s").kind, RelKind::Sequence);
    assert_eq!(get("public.ft").kind, RelKind::Foreign);
    assert_eq!(get("public.t_idx").kind, RelKind::Other);
    assert!(get("public.secure").row_security);
    let pg_class = get("pg_catalog.pg_class");
    assert!(pg_class.system);
    assert!(get("information_schema.tables").system);
    // An index shadows a table of the same name later in the path.
    assert_eq!(
        schema_of(&s, "t_idx", &["public"], "postgres"),
        Some("public")
    );
}

#[tokio::test]
async fn temporary_tables_are_marked() {
    let db = "cat_temp";
    Cluster::shared().create_database(db).unwrap();
    let url = Cluster::shared().url("postgres", Some(Cluster::shared().superuser_password()), db);
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TEMP TABLE tmp1 (id int)")
        .await
        .unwrap();
    let row = client
        .query_one("SELECT 'tmp1'::regclass::oid", &[])
        .await
        .unwrap();
    let temp_oid: Oid = row.get(0);

    let catalogs = Catalogs::new(config());
    let s = catalogs.get(db).await.unwrap().snapshot().await.unwrap();
    let temp = s.relation(temp_oid).expect("temp table loaded");
    assert!(temp.temporary);
    assert!(temp.schema.starts_with("pg_temp_"));
    assert!(s
        .resolve(&rel(None, "tmp1"), &path(&["$user", "public"]), "postgres")
        .is_none());
    assert!(s
        .resolve(&rel(Some("pg_temp"), "tmp1"), &[], "postgres")
        .is_none());
}
