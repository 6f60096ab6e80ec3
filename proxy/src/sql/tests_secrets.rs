//! Fingerprints of statements that carry secrets show none of them, whether
//! the statement is well-formed or not.

use super::{fingerprint, Analyzer};

const SECRET: &str = "N3wPassw0rd";

fn shows_no_secret(text: &str) -> String {
    let (fp, _) = fingerprint(text);
    assert!(!fp.contains(SECRET), "{text:?} fingerprinted as {fp:?}");
    let analyzed = Analyzer::new(100).analyze(text);
    assert!(
        !analyzed.fingerprint.contains(SECRET),
        "{text:?} analyzed as {:?}",
        analyzed.fingerprint
    );
    fp
}

#[test]
fn password_statements_hide_every_literal_well_formed_or_not() {
    for text in [
        "ALTER ROLE bob PASSWORD 'N3wPassw0rd'",
        "ALTER ROLE bob PASSWORD 'N3wPassw0rd",
        "alter user bob with encrypted password 'N3wPassw0rd' valid until 'infinity'",
        "CREATE USER bob PASSWORD E'N3wPassw0rd",
        "CREATE ROLE bob LOGIN PASSWORD $pw$N3wPassw0rd",
        "CREATE ROLE bob PASSWORD \"N3wPassw0rd\"",
        "CREATE ROLE bob PASSWORD N3wPassw0rd LOGIN",
        "ALTER USER bob PASSWORD U&'N3wPassw0rd",
        "CREATE GROUP g; ALTER ROLE bob PASSWORD 'N3wPassw0rd'; SELECT 1",
        "SELECT 1; ALTER ROLE bob PASSWORD 'N3wPassw0rd",
        "\\password N3wPassw0rd",
    ] {
        shows_no_secret(text);
    }
    assert_eq!(
        shows_no_secret("ALTER ROLE bob PASSWORD 'N3wPassw0rd"),
        "alter role bob password $?"
    );
    assert_eq!(
        shows_no_secret("CREATE ROLE bob PASSWORD N3wPassw0rd LOGIN"),
        "create role bob password $? login"
    );
}

#[test]
fn server_and_user_mapping_options_are_hidden() {
    for text in [
        "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'db', dbname 'x', password 'N3wPassw0rd')",
        "ALTER SERVER s OPTIONS (SET password 'N3wPassw0rd",
        "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password 'N3wPassw0rd')",
        "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password \"N3wPassw0rd\")",
        "ALTER USER MAPPING FOR bob SERVER s OPTIONS (SET password 'N3wPassw0rd",
        "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', \"N3wPassw0rd\" 'x')",
        "IMPORT FOREIGN SCHEMA s FROM SERVER f INTO t OPTIONS (\"N3wPassw0rd\" 'x')",
    ] {
        shows_no_secret(text);
    }
}

#[test]
fn other_statements_keep_their_fingerprints() {
    assert_eq!(
        fingerprint("SELECT \"Col\" FROM t WHERE a = 'x'").0,
        "select \"Col\" from t where a = $1"
    );
    // The rest of an unterminated literal never shows, whatever the statement.
    assert_eq!(fingerprint("SELECT 'N3wPassw0rd").0, "select $?");
    assert_eq!(fingerprint("SELECT 1 # 2").0, "select $1 # $2");
}

#[test]
fn secret_statements_are_not_shared_by_shape() {
    let analyzer = Analyzer::new(100);
    let a = analyzer.analyze("CREATE ROLE \"a\" PASSWORD 'x'");
    let b = analyzer.analyze("CREATE ROLE \"b\" PASSWORD 'y'");
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(
        analyzer.parse_count(),
        2,
        "each text is analyzed on its own"
    );
}
