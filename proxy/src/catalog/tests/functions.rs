use super::*;
use crate::catalog::{FuncName, Volatility};

fn func(schema: Option<&str>, name: &str) -> FuncName {
    FuncName {
        schema: schema.map(str::to_string),
        name: name.to_string(),
    }
}

#[tokio::test]
async fn volatility_over_overloads() {
    let (_c, _db, s) = fresh(
        "cat_functions",
        "
        CREATE FUNCTION f(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
        CREATE FUNCTION f(text) RETURNS text VOLATILE LANGUAGE sql AS 'SELECT $1';
        CREATE FUNCTION pure(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
        CREATE FUNCTION writes() RETURNS void VOLATILE LANGUAGE sql AS 'SELECT';
        CREATE SCHEMA other;
        CREATE FUNCTION other.hidden() RETURNS int STABLE LANGUAGE sql AS 'SELECT 1';
        CREATE FUNCTION public.random(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
        CREATE FUNCTION public.upper(int) RETURNS int STABLE LANGUAGE sql AS 'SELECT $1';
        ",
    )
    .await;
    let path = path(&["$user", "public"]);
    let look = |schema: Option<&str>, name: &str| {
        s.function_volatility(&func(schema, name), &path, "postgres")
    };

    let f = look(None, "f").expect("f");
    assert_eq!(
        (f.volatility, f.is_system, f.schema.as_str()),
        (Volatility::Volatile, false, "public")
    );
    assert_eq!(
        look(None, "pure").map(|f| (f.volatility, f.is_system)),
        Some((Volatility::Immutable, false))
    );
    assert_eq!(
        look(None, "writes").map(|f| (f.volatility, f.is_system)),
        Some((Volatility::Volatile, false))
    );

    let now = look(None, "now").expect("now");
    assert_eq!(
        (now.volatility, now.is_system, now.schema.as_str()),
        (Volatility::Stable, true, "pg_catalog")
    );
    let lower = look(None, "lower").expect("lower");
    assert_eq!(
        (lower.volatility, lower.is_system),
        (Volatility::Immutable, true)
    );
    assert_eq!(
        look(Some("pg_catalog"), "lower").map(|f| f.volatility),
        Some(Volatility::Immutable)
    );

    // random() is volatile and a system function; the user's immutable
    // overload does not change that.
    let random = look(None, "random").expect("random");
    assert_eq!(
        (random.volatility, random.is_system),
        (Volatility::Volatile, true)
    );
    // upper(): system immutable, but a user STABLE overload is visible.
    let upper = look(None, "upper").expect("upper");
    assert_eq!(
        (upper.volatility, upper.is_system, upper.schema.as_str()),
        (Volatility::Stable, false, "public")
    );
    // ...and not when the path does not include public.
    let upper = s.function_volatility(&func(None, "upper"), &super::path(&["other"]), "postgres");
    assert_eq!(
        upper.map(|f| (f.volatility, f.is_system)),
        Some((Volatility::Immutable, true))
    );

    // Functions outside the path are not visible unqualified.
    assert!(look(None, "hidden").is_none());
    assert_eq!(
        look(Some("other"), "hidden").map(|f| f.volatility),
        Some(Volatility::Stable)
    );
    assert!(look(Some("public"), "hidden").is_none());
    assert!(look(None, "no_such_function").is_none());
    assert!(look(Some("pg_temp"), "f").is_none());
    assert_eq!(
        look(None, "nextval").map(|f| (f.volatility, f.is_system)),
        Some((Volatility::Volatile, true))
    );
}
