//! Functions a query runs without naming them, as a real server's catalog
//! reports them.

use super::*;
use crate::catalog::{FuncName, Volatility};

/// A table the non-immutable functions below read, so a cached answer
/// could really go stale.
const LIMITS: &str = "
    CREATE TABLE limits (lo int);
    INSERT INTO limits VALUES (0);
    CREATE FUNCTION min_allowed() RETURNS int STABLE LANGUAGE sql AS 'SELECT lo FROM limits';
    CREATE TABLE t (a int, name text);
";

fn risk(snapshot: &Snapshot, query: &str) -> Option<&'static str> {
    let (fingerprint, _) = crate::sql::fingerprint(query);
    snapshot.hidden_call_risk(&fingerprint).map(|r| r.as_str())
}

fn volatility(snapshot: &Snapshot, name: &str) -> Option<(Volatility, bool)> {
    let name = FuncName {
        schema: None,
        name: name.to_string(),
    };
    snapshot
        .function_volatility(&name, &path(&["$user", "public"]), "postgres")
        .map(|f| (f.volatility, f.is_system))
}

#[tokio::test]
async fn user_operators() {
    let setup = format!(
        "{LIMITS}
        CREATE FUNCTION same_text(text, text) RETURNS bool STABLE LANGUAGE sql
            AS 'SELECT $1 = $2 AND $2 >= (SELECT lo FROM limits)::text';
        CREATE OPERATOR === (FUNCTION = same_text, LEFTARG = text, RIGHTARG = text);
        CREATE FUNCTION bump(int, int) RETURNS int VOLATILE LANGUAGE sql
            AS 'UPDATE limits SET lo = lo + 1 RETURNING $1 + $2';
        CREATE OPERATOR +#+ (FUNCTION = bump, LEFTARG = int, RIGHTARG = int);
        CREATE FUNCTION pure_mod(int, int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 % $2';
        CREATE OPERATOR %%% (FUNCTION = pure_mod, LEFTARG = int, RIGHTARG = int);
        "
    );
    let (_c, _db, s) = fresh("cat_hidden_operators", &setup).await;
    assert_eq!(
        risk(&s, "SELECT name === 'x' FROM t"),
        Some("volatile_operator")
    );
    assert_eq!(
        risk(&s, "SELECT * FROM t WHERE a OPERATOR(public.+#+) 1 > 2"),
        Some("volatile_operator")
    );
    assert_eq!(risk(&s, "SELECT a+#+1 FROM t"), Some("volatile_operator"));
    // An IMMUTABLE user operator and the built-in ones are no risk.
    assert_eq!(
        risk(&s, "SELECT a %%% 2, a + 1 FROM t WHERE name = 'x'"),
        None
    );
    assert_eq!(risk(&s, "SELECT a FROM t ORDER BY a"), None);
}

#[tokio::test]
async fn sort_support_is_reached_without_an_operator() {
    let setup = format!(
        "{LIMITS}
        CREATE FUNCTION cmp_lo(int, int) RETURNS int STABLE LANGUAGE sql
            AS 'SELECT btint4cmp($1 + min_allowed(), $2)';
        CREATE OPERATOR CLASS lo_ops FOR TYPE int USING btree AS
            OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
            FUNCTION 1 cmp_lo(int, int);
        "
    );
    let (_c, _db, s) = fresh("cat_hidden_opclass", &setup).await;
    assert_eq!(
        risk(&s, "SELECT a FROM t ORDER BY a"),
        Some("volatile_operator")
    );
}

#[tokio::test]
async fn user_casts() {
    let setup = format!(
        "{LIMITS}
        CREATE TYPE mood AS ENUM ('sad', 'happy');
        CREATE FUNCTION int_to_mood(int) RETURNS mood STABLE LANGUAGE sql
            AS 'SELECT (enum_range(NULL::mood))[$1 + min_allowed()]';
        CREATE CAST (int AS mood) WITH FUNCTION int_to_mood(int);
        CREATE DOMAIN good_mood AS mood;
        CREATE TYPE level AS ENUM ('low', 'high');
        CREATE FUNCTION int_to_level(int) RETURNS level IMMUTABLE LANGUAGE sql
            AS 'SELECT (enum_range(NULL::level))[$1]';
        CREATE CAST (int AS level) WITH FUNCTION int_to_level(int);
        "
    );
    let (_c, _db, s) = fresh("cat_hidden_casts", &setup).await;
    assert_eq!(risk(&s, "SELECT 1::mood"), Some("volatile_cast"));
    assert_eq!(
        risk(&s, "SELECT CAST(a AS public.MOOD) FROM t"),
        Some("volatile_cast")
    );
    assert_eq!(risk(&s, "SELECT mood(a) FROM t"), Some("volatile_cast"));
    // Coercing to a domain over the target runs the cast.
    assert_eq!(risk(&s, "SELECT 2::good_mood"), Some("volatile_cast"));
    assert_eq!(risk(&s, "SELECT 1::level, a FROM t"), None);
    assert_eq!(risk(&s, "SELECT moods FROM t"), None);

    // An implicit cast needs no syntax at all.
    let (_c, _db, s) = fresh(
        "cat_hidden_casts_implicit",
        &format!(
            "{LIMITS}
            CREATE TYPE mood AS ENUM ('sad', 'happy');
            CREATE FUNCTION int_to_mood(int) RETURNS mood STABLE LANGUAGE sql
                AS 'SELECT (enum_range(NULL::mood))[$1 + min_allowed()]';
            CREATE CAST (int AS mood) WITH FUNCTION int_to_mood(int) AS IMPLICIT;
            "
        ),
    )
    .await;
    assert_eq!(risk(&s, "SELECT a FROM t"), Some("volatile_cast"));
}

#[tokio::test]
async fn domain_checks() {
    let setup = format!(
        "{LIMITS}
        CREATE DOMAIN pos AS int CHECK (VALUE > min_allowed());
        CREATE DOMAIN pos2 AS pos;
        CREATE DOMAIN past AS date CHECK (VALUE <= CURRENT_DATE);
        CREATE DOMAIN small AS int CHECK (VALUE < 100) CHECK (VALUE > -100);
        CREATE FUNCTION takes_pos(p pos) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
        CREATE FUNCTION takes_pos2s(p pos2[]) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT 1';
        CREATE FUNCTION gives_past() RETURNS past IMMUTABLE LANGUAGE sql
            AS $$ SELECT DATE '2000-01-01' $$;
        CREATE FUNCTION gives_row(OUT d past, OUT n int) IMMUTABLE LANGUAGE sql
            AS $$ SELECT DATE '2000-01-01', 1 $$;
        CREATE FUNCTION takes_small(p small) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
        CREATE VIEW positive AS SELECT a::pos2 AS p, a::small AS s FROM t;
        CREATE TYPE pair AS (x pos, y int);
        CREATE TYPE list AS (xs pos2[]);
        CREATE TYPE plain AS (x small);
        CREATE DOMAIN via_function AS int CHECK (takes_pos(VALUE) > 0);
        CREATE FUNCTION takes_via(v via_function) RETURNS int IMMUTABLE LANGUAGE sql
            AS 'SELECT $1';
        CREATE VIEW bounded AS SELECT a::small AS s FROM t;
        "
    );
    let (_c, _db, s) = fresh("cat_hidden_domains", &setup).await;
    assert_eq!(risk(&s, "SELECT 5::pos"), Some("volatile_domain_check"));
    assert_eq!(
        risk(&s, "SELECT CAST(a AS pos2) FROM t"),
        Some("volatile_domain_check")
    );
    assert_eq!(
        risk(&s, "SELECT '2020-01-01'::past"),
        Some("volatile_domain_check")
    );
    assert_eq!(risk(&s, "SELECT 5::small, a FROM t"), None);
    // Composite types check their domain fields.
    assert_eq!(
        risk(&s, "SELECT ROW(1, 2)::pair"),
        Some("volatile_domain_check")
    );
    assert_eq!(risk(&s, "SELECT $1::list"), Some("volatile_domain_check"));
    assert_eq!(risk(&s, "SELECT ROW(1)::plain"), None);
    // A check that calls a function with a checked domain argument.
    assert_eq!(
        risk(&s, "SELECT 1::via_function"),
        Some("volatile_domain_check")
    );

    // A call coerces its arguments and result to their domains.
    let stable = Some((Volatility::Stable, false));
    assert_eq!(volatility(&s, "takes_pos"), stable);
    assert_eq!(volatility(&s, "takes_pos2s"), stable);
    assert_eq!(volatility(&s, "gives_past"), stable);
    assert_eq!(volatility(&s, "gives_row"), stable);
    assert_eq!(volatility(&s, "takes_via"), stable);
    assert_eq!(
        volatility(&s, "takes_small"),
        Some((Volatility::Immutable, false))
    );

    // A view that coerces to a domain runs its checks when read.
    let worst = |view: &str| {
        let closure = s.read_closure(&[oid(&s, view)]);
        closure.view_functions.iter().map(|f| f.volatility).max()
    };
    assert_eq!(worst("public.positive"), Some(Volatility::Stable));
    assert_eq!(worst("public.bounded"), None);
}

#[tokio::test]
async fn aggregates() {
    let setup = format!(
        "{LIMITS}
        CREATE FUNCTION add_lo(int, int) RETURNS int STABLE LANGUAGE sql
            AS 'SELECT coalesce($1, 0) + $2 + min_allowed()';
        CREATE AGGREGATE sum_lo(int) (SFUNC = add_lo, STYPE = int);
        CREATE FUNCTION finish(int) RETURNS int VOLATILE LANGUAGE sql
            AS 'UPDATE limits SET lo = $1 RETURNING lo';
        CREATE AGGREGATE sum_finish(int) (SFUNC = int4pl, STYPE = int, FINALFUNC = finish);
        CREATE FUNCTION minus_lo(int, int) RETURNS int STABLE STRICT LANGUAGE sql
            AS 'SELECT $1 - $2 - min_allowed()';
        CREATE AGGREGATE moving(int) (SFUNC = int4pl, STYPE = int,
            MSFUNC = int4pl, MINVFUNC = minus_lo, MSTYPE = int);
        CREATE AGGREGATE plain_sum(int) (SFUNC = int4pl, STYPE = int);
        CREATE VIEW totals AS SELECT sum_lo(a) FROM t;
        "
    );
    let (_c, _db, s) = fresh("cat_hidden_aggregates", &setup).await;
    assert_eq!(volatility(&s, "sum_lo"), Some((Volatility::Stable, false)));
    assert_eq!(
        volatility(&s, "sum_finish"),
        Some((Volatility::Volatile, false))
    );
    assert_eq!(volatility(&s, "moving"), Some((Volatility::Stable, false)));
    assert_eq!(
        volatility(&s, "plain_sum"),
        Some((Volatility::Immutable, false))
    );
    assert_eq!(volatility(&s, "sum"), Some((Volatility::Immutable, true)));
    // Built-in, marked IMMUTABLE, with STABLE support functions.
    assert_eq!(
        volatility(&s, "jsonb_object_agg"),
        Some((Volatility::Stable, true))
    );

    // A view's aggregate is checked through the view.
    let closure = s.read_closure(&[oid(&s, "public.totals")]);
    let worst = closure.view_functions.iter().map(|f| f.volatility).max();
    assert_eq!(worst, Some(Volatility::Stable));
}

#[tokio::test]
async fn argument_defaults() {
    let setup = format!(
        "{LIMITS}
        CREATE SEQUENCE ids;
        CREATE FUNCTION with_nextval(a int, b bigint DEFAULT nextval('ids')) RETURNS int
            IMMUTABLE LANGUAGE sql AS 'SELECT $1';
        CREATE FUNCTION with_now(a int, b timestamptz DEFAULT now()) RETURNS int
            IMMUTABLE LANGUAGE sql AS 'SELECT $1';
        CREATE FUNCTION with_current(a int, b date DEFAULT CURRENT_DATE) RETURNS int
            IMMUTABLE LANGUAGE sql AS 'SELECT $1';
        CREATE FUNCTION with_call(a int DEFAULT with_now(1)) RETURNS int
            IMMUTABLE LANGUAGE sql AS 'SELECT $1';
        CREATE FUNCTION with_constant(a int, b int DEFAULT 1 + 2, c text DEFAULT lower('X'))
            RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
        "
    );
    let (_c, _db, s) = fresh("cat_hidden_defaults", &setup).await;
    assert_eq!(
        volatility(&s, "with_nextval"),
        Some((Volatility::Volatile, false))
    );
    let stable = Some((Volatility::Stable, false));
    assert_eq!(volatility(&s, "with_now"), stable);
    assert_eq!(volatility(&s, "with_current"), stable);
    assert_eq!(volatility(&s, "with_call"), stable);
    assert_eq!(
        volatility(&s, "with_constant"),
        Some((Volatility::Immutable, false))
    );
}

#[tokio::test]
async fn user_type_io() {
    // Needs a superuser: the I/O functions reuse built-in C ones.
    let setup = "
        CREATE TYPE num;
        CREATE FUNCTION num_in(cstring) RETURNS num VOLATILE LANGUAGE internal AS 'int4in';
        CREATE FUNCTION num_out(num) RETURNS cstring IMMUTABLE LANGUAGE internal AS 'int4out';
        CREATE TYPE num (INPUT = num_in, OUTPUT = num_out, LIKE = int4);
        CREATE TYPE fixed;
        CREATE FUNCTION fixed_in(cstring) RETURNS fixed IMMUTABLE LANGUAGE internal AS 'int4in';
        CREATE FUNCTION fixed_out(fixed) RETURNS cstring IMMUTABLE LANGUAGE internal
            AS 'int4out';
        CREATE TYPE fixed (INPUT = fixed_in, OUTPUT = fixed_out, LIKE = int4);
    ";
    let (_c, _db, s) = fresh("cat_hidden_type_io", setup).await;
    // A parameter's type comes by oid: any query may run num_in.
    assert_eq!(risk(&s, "SELECT $1"), Some("volatile_type_io"));

    // STABLE, as PostgreSQL marks I/O that follows client_encoding or
    // TimeZone (keyed settings), is no risk.
    let (_c, _db, s) = fresh(
        "cat_hidden_type_io_stable",
        &setup.replace("VOLATILE", "STABLE"),
    )
    .await;
    assert_eq!(risk(&s, "SELECT $1::num"), None);
}

#[tokio::test]
async fn nothing_hidden_in_a_plain_database() {
    let setup = format!(
        "{LIMITS}
        CREATE TYPE mood AS ENUM ('sad', 'happy');
        CREATE DOMAIN small AS int CHECK (VALUE < 100);
        CREATE FUNCTION pure(int, int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 + $2';
        CREATE OPERATOR <+> (FUNCTION = pure, LEFTARG = int, RIGHTARG = int);
        CREATE FUNCTION with_default(a int, b int DEFAULT 2) RETURNS int
            IMMUTABLE LANGUAGE sql AS 'SELECT $1';
        CREATE VIEW v AS SELECT a, sum(a) OVER () FROM t;
        "
    );
    let (_c, _db, s) = fresh("cat_hidden_none", &setup).await;
    for query in [
        "SELECT a <+> 1, 'sad'::mood, 5::small FROM t WHERE name LIKE 'x%' AND a IN (1, 2)",
        "SELECT a, count(*) FROM v GROUP BY a ORDER BY a",
        "SELECT with_default(1), $1::text",
    ] {
        assert_eq!(risk(&s, query), None, "{query}");
    }
    assert_eq!(
        volatility(&s, "with_default"),
        Some((Volatility::Immutable, false))
    );
    assert_eq!(volatility(&s, "count"), Some((Volatility::Immutable, true)));
}

#[tokio::test]
async fn common_extensions_refuse_only_their_setting_dependent_operators() {
    let extensions = [
        "citext",
        "hstore",
        "ltree",
        "cube",
        "isn",
        "seg",
        "intarray",
        "btree_gist",
        "btree_gin",
        "pg_trgm",
        "fuzzystrmatch",
        "pgcrypto",
    ];
    let setup: String = extensions
        .iter()
        .map(|e| format!("CREATE EXTENSION \"{e}\";\n"))
        .collect();
    let (_c, _db, s) = fresh("cat_hidden_extensions", &format!("{LIMITS}{setup}")).await;
    for query in [
        "SELECT a, name FROM t WHERE name = 'x' AND a IN (1, 2) ORDER BY name, a",
        "SELECT 'a=>1'::hstore @> 'a=>1', 'a.b'::ltree <@ 'a', $1::citext = 'X'",
        "SELECT similarity(name, 'x') FROM t GROUP BY name",
    ] {
        assert_eq!(risk(&s, query), None, "{query}");
    }
    // pg_trgm's % follows pg_trgm.similarity_threshold (STABLE); so does
    // anything spelled %, such as integer modulo.
    assert_eq!(
        risk(&s, "SELECT name FROM t WHERE name % 'x'"),
        Some("volatile_operator")
    );
}
