use super::*;
use crate::catalog::Volatility;

fn read(s: &Snapshot, q: &[&str]) -> Vec<String> {
    let oids: Vec<Oid> = q.iter().map(|q| oid(s, q)).collect();
    let closure = s.read_closure(&oids);
    assert!(closure.unknown.is_empty());
    names(s, &closure.relations)
}

fn write(s: &Snapshot, q: &[&str], truncate_cascade: bool) -> (Vec<String>, Vec<String>) {
    let oids: Vec<Oid> = q.iter().map(|q| oid(s, q)).collect();
    let closure = s.write_closure(&oids, truncate_cascade);
    assert!(closure.unknown.is_empty());
    (names(s, &closure.relations), names(s, &closure.triggered))
}

#[tokio::test]
async fn views_expand_to_base_relations_and_functions() {
    let (_c, _db, s) = fresh(
        "cat_views",
        "
        CREATE TABLE t1 (id int, name text, at timestamptz);
        CREATE TABLE t2 (id int, label text);
        CREATE TABLE t3 (id int);
        CREATE VIEW recent AS SELECT * FROM t1 WHERE at > now() - interval '1 day';
        CREATE VIEW joined AS SELECT r.id, t2.label FROM recent r JOIN t2 USING (id)
            WHERE r.id IN (SELECT id FROM t3);
        CREATE VIEW lowered AS SELECT lower(name) AS l, id + 1 AS next FROM t1;
        CREATE FUNCTION bump(int) RETURNS int VOLATILE LANGUAGE sql AS 'SELECT $1';
        CREATE VIEW calls_user AS SELECT bump(id) FROM t3;
        CREATE MATERIALIZED VIEW snap AS SELECT * FROM t1;
        CREATE VIEW today AS SELECT * FROM t1 WHERE at::date = CURRENT_DATE AND name = current_user;
        ",
    )
    .await;
    assert_eq!(
        read(&s, &["public.joined"]),
        sorted(&[
            "public.joined",
            "public.recent",
            "public.t1",
            "public.t2",
            "public.t3"
        ])
    );
    let joined = s.read_closure(&[oid(&s, "public.joined")]);
    let now = joined
        .view_functions
        .iter()
        .find(|f| f.name == "now")
        .unwrap_or_else(|| panic!("now() in {:?}", joined.view_functions));
    assert_eq!(
        (now.volatility, now.is_system, now.schema.as_str()),
        (Volatility::Stable, true, "pg_catalog")
    );

    let lowered = s.read_closure(&[oid(&s, "public.lowered")]);
    assert_eq!(
        names(&s, &lowered.relations),
        sorted(&["public.lowered", "public.t1"])
    );
    let lower = lowered
        .view_functions
        .iter()
        .find(|f| f.name == "lower")
        .expect("lower()");
    assert_eq!(lower.volatility, Volatility::Immutable);
    // `id + 1` is an operator; its function (int4pl) is what counts.
    assert!(lowered.view_functions.iter().any(|f| f.name == "int4pl"));
    assert!(lowered
        .view_functions
        .iter()
        .all(|f| f.volatility == Volatility::Immutable));

    let user = s.read_closure(&[oid(&s, "public.calls_user")]);
    let bump = user
        .view_functions
        .iter()
        .find(|f| f.name == "bump")
        .expect("bump()");
    assert_eq!(
        (bump.volatility, bump.is_system),
        (Volatility::Volatile, false)
    );

    // SQL-syntax functions leave no pg_depend entry; they are still found.
    let today = s.read_closure(&[oid(&s, "public.today")]);
    let mut special: Vec<&str> = today
        .view_functions
        .iter()
        .filter(|f| f.oid == 0)
        .map(|f| f.name.as_str())
        .collect();
    special.sort();
    assert_eq!(special, ["current_date", "current_user"]);
    assert!(today
        .view_functions
        .iter()
        .filter(|f| f.oid == 0)
        .all(|f| f.volatility == Volatility::Stable));

    // A materialized view holds its own rows.
    assert_eq!(read(&s, &["public.snap"]), sorted(&["public.snap"]));
    // System views report the built-in functions they call, and the
    // catalogs they read (pg_depend records neither).
    let activity = s.read_closure(&[oid(&s, "pg_catalog.pg_stat_activity")]);
    let get_activity = activity
        .view_functions
        .iter()
        .find(|f| f.name == "pg_stat_get_activity");
    assert_eq!(get_activity.map(|f| f.volatility), Some(Volatility::Stable));
    assert!(names(&s, &activity.relations).contains(&"pg_catalog.pg_database".to_string()));

    // Unknown oids are reported, not dropped.
    let unknown = s.read_closure(&[4_000_000_000]);
    assert_eq!(unknown.unknown, vec![4_000_000_000]);
}

#[tokio::test]
async fn partitions_both_ways() {
    let (_c, _db, s) = fresh(
        "cat_partitions",
        "
        CREATE TABLE p (id int, v int) PARTITION BY RANGE (id);
        CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);
        CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (10) TO (20) PARTITION BY RANGE (id);
        CREATE TABLE p2a PARTITION OF p2 FOR VALUES FROM (10) TO (15);
        CREATE TABLE p2b PARTITION OF p2 FOR VALUES FROM (15) TO (20);
        ",
    )
    .await;
    let all = sorted(&[
        "public.p",
        "public.p1",
        "public.p2",
        "public.p2a",
        "public.p2b",
    ]);
    assert_eq!(read(&s, &["public.p"]), all);
    assert_eq!(read(&s, &["public.p1"]), sorted(&["public.p1"]));
    assert_eq!(
        read(&s, &["public.p2"]),
        sorted(&["public.p2", "public.p2a", "public.p2b"])
    );
    // A write to a leaf changes what its ancestors read, not its siblings.
    assert_eq!(
        write(&s, &["public.p2a"], false).0,
        sorted(&["public.p", "public.p2", "public.p2a"])
    );
    assert_eq!(
        write(&s, &["public.p1"], false).0,
        sorted(&["public.p", "public.p1"])
    );
    assert_eq!(write(&s, &["public.p"], false).0, all);
    assert_eq!(
        write(&s, &["public.p2"], false).0,
        sorted(&["public.p", "public.p2", "public.p2a", "public.p2b"])
    );
}

#[tokio::test]
async fn inheritance_both_ways() {
    let (_c, _db, s) = fresh(
        "cat_inheritance",
        "
        CREATE TABLE animal (id int);
        CREATE TABLE pet (owner text) INHERITS (animal);
        CREATE TABLE dog () INHERITS (pet);
        CREATE TABLE tagged (tag text);
        CREATE TABLE tagged_pet () INHERITS (pet, tagged);
        ",
    )
    .await;
    assert_eq!(
        read(&s, &["public.animal"]),
        sorted(&[
            "public.animal",
            "public.pet",
            "public.dog",
            "public.tagged_pet"
        ])
    );
    assert_eq!(
        write(&s, &["public.dog"], false).0,
        sorted(&["public.animal", "public.pet", "public.dog"])
    );
    // A write through `pet` may change rows of tagged_pet, which `tagged`
    // reads too.
    assert_eq!(
        write(&s, &["public.pet"], false).0,
        sorted(&[
            "public.animal",
            "public.pet",
            "public.dog",
            "public.tagged_pet",
            "public.tagged"
        ])
    );
}

#[tokio::test]
async fn foreign_key_cascades() {
    let (_c, _db, s) = fresh(
        "cat_fk",
        "
        CREATE TABLE a (id int PRIMARY KEY);
        CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a ON DELETE CASCADE);
        CREATE TABLE c (id int PRIMARY KEY, b_id int REFERENCES b ON DELETE SET NULL);
        CREATE TABLE d (a_id int REFERENCES a);
        CREATE TABLE e (c_id int REFERENCES c ON UPDATE SET DEFAULT);
        CREATE TABLE f (d_id int);
        CREATE TABLE g (c_id int REFERENCES c ON DELETE RESTRICT);
        ",
    )
    .await;
    let (relations, triggered) = write(&s, &["public.a"], false);
    assert_eq!(
        relations,
        sorted(&["public.a", "public.b", "public.c", "public.e"])
    );
    assert!(
        triggered.is_empty(),
        "FK triggers are internal: {triggered:?}"
    );
    let (truncated, _) = write(&s, &["public.a"], true);
    assert_eq!(
        truncated,
        sorted(&["public.a", "public.b", "public.c", "public.d", "public.e", "public.g"])
    );
    // The referencing side does not reach its parent.
    assert_eq!(
        write(&s, &["public.b"], false).0,
        sorted(&["public.b", "public.c", "public.e"])
    );
    assert_eq!(write(&s, &["public.d"], false).0, sorted(&["public.d"]));
}

#[tokio::test]
async fn partitioned_foreign_keys() {
    let (_c, _db, s) = fresh(
        "cat_fk_partitioned",
        "
        CREATE TABLE parent (id int PRIMARY KEY) PARTITION BY RANGE (id);
        CREATE TABLE parent1 PARTITION OF parent FOR VALUES FROM (0) TO (10);
        CREATE TABLE child (pid int REFERENCES parent ON DELETE CASCADE) PARTITION BY RANGE (pid);
        CREATE TABLE child1 PARTITION OF child FOR VALUES FROM (0) TO (10);
        ",
    )
    .await;
    let (relations, _) = write(&s, &["public.parent1"], false);
    assert_eq!(
        relations,
        sorted(&[
            "public.parent",
            "public.parent1",
            "public.child",
            "public.child1"
        ])
    );
}

#[tokio::test]
async fn user_triggers_are_listed() {
    let (_c, _db, s) = fresh(
        "cat_triggers",
        "
        CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
        CREATE TABLE audited (id int PRIMARY KEY);
        CREATE TRIGGER audit AFTER INSERT ON audited FOR EACH ROW EXECUTE FUNCTION noop();
        CREATE TABLE plain (id int PRIMARY KEY);
        CREATE TABLE cascaded (id int REFERENCES plain ON DELETE CASCADE);
        CREATE TRIGGER audit AFTER DELETE ON cascaded FOR EACH STATEMENT EXECUTE FUNCTION noop();
        CREATE TABLE quiet (id int REFERENCES plain);
        CREATE TABLE p (id int) PARTITION BY LIST (id);
        CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1);
        CREATE TRIGGER audit AFTER UPDATE ON p FOR EACH ROW EXECUTE FUNCTION noop();
        CREATE VIEW v AS SELECT id FROM quiet;
        CREATE FUNCTION v_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
        CREATE TRIGGER instead INSTEAD OF INSERT ON v FOR EACH ROW EXECUTE FUNCTION v_insert();
        ",
    )
    .await;
    assert!(
        s.relation(oid(&s, "public.audited"))
            .unwrap()
            .has_user_triggers
    );
    assert!(
        !s.relation(oid(&s, "public.plain"))
            .unwrap()
            .has_user_triggers
    );
    assert_eq!(
        write(&s, &["public.audited"], false).1,
        sorted(&["public.audited"])
    );
    // Cascading into a table with triggers runs them.
    let (relations, triggered) = write(&s, &["public.plain"], false);
    assert_eq!(relations, sorted(&["public.plain", "public.cascaded"]));
    assert_eq!(triggered, sorted(&["public.cascaded"]));
    assert!(write(&s, &["public.quiet"], false).1.is_empty());
    // Row triggers on a partitioned table are cloned onto its partitions.
    assert_eq!(write(&s, &["public.p1"], false).1, sorted(&["public.p1"]));
    // INSTEAD OF triggers on a view.
    let (relations, triggered) = write(&s, &["public.v"], false);
    assert_eq!(relations, sorted(&["public.v", "public.quiet"]));
    assert_eq!(triggered, sorted(&["public.v"]));
}

#[tokio::test]
async fn rules_and_writable_views() {
    let (_c, _db, s) = fresh(
        "cat_rules",
        "
        CREATE TABLE t (id int, v text);
        CREATE TABLE log (id int, at timestamptz);
        CREATE RULE t_log AS ON INSERT TO t DO ALSO INSERT INTO log VALUES (NEW.id, now());
        CREATE TABLE base (id int, v text);
        CREATE VIEW simple AS SELECT id, v FROM base WHERE id > 0;
        CREATE VIEW over_simple AS SELECT id FROM simple;
        CREATE TABLE target (id int);
        CREATE VIEW redirected AS SELECT id FROM base;
        CREATE RULE redirect AS ON INSERT TO redirected DO INSTEAD INSERT INTO target VALUES (NEW.id);
        CREATE FUNCTION side_effect(int) RETURNS int VOLATILE LANGUAGE sql AS 'SELECT $1';
        CREATE TABLE with_fn_rule (id int);
        CREATE RULE call AS ON DELETE TO with_fn_rule DO ALSO SELECT side_effect(OLD.id);
        CREATE TABLE with_default (id int DEFAULT side_effect(1));
        CREATE TABLE with_serial (id serial, n int DEFAULT random()::int);
        ",
    )
    .await;
    assert!(s.relation(oid(&s, "public.t")).unwrap().has_rules);
    let (relations, triggered) = write(&s, &["public.t"], false);
    assert_eq!(relations, sorted(&["public.t", "public.log"]));
    assert!(triggered.is_empty(), "now() writes nothing: {triggered:?}");
    assert_eq!(
        write(&s, &["public.over_simple"], false).0,
        sorted(&["public.over_simple", "public.simple", "public.base"])
    );
    // The view's own base table is included too: more than needed, not less.
    assert_eq!(
        write(&s, &["public.redirected"], false).0,
        sorted(&["public.redirected", "public.target", "public.base"])
    );
    // Rules and defaults calling a user VOLATILE function may write anything.
    assert_eq!(
        write(&s, &["public.with_fn_rule"], false).1,
        sorted(&["public.with_fn_rule"])
    );
    assert_eq!(
        write(&s, &["public.with_default"], false).1,
        sorted(&["public.with_default"])
    );
    // nextval() and random() are system functions.
    assert!(write(&s, &["public.with_serial"], false).1.is_empty());
}

#[tokio::test]
async fn row_security_policies_are_read() {
    let (_c, _db, s) = fresh(
        "cat_policies",
        "
        CREATE TABLE members (tenant text, who text);
        CREATE TABLE docs (tenant text, body text);
        ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
        CREATE POLICY mine ON docs USING (tenant IN (SELECT tenant FROM members WHERE who = current_user));
        ",
    )
    .await;
    let closure = s.read_closure(&[oid(&s, "public.docs")]);
    assert_eq!(
        names(&s, &closure.relations),
        sorted(&["public.docs", "public.members"])
    );
    assert!(closure
        .view_functions
        .iter()
        .any(|f| f.name == "current_user"));
}
