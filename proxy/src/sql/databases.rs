//! The statements the server runs only while nobody else uses a database:
//! `DROP DATABASE x`, `ALTER DATABASE x RENAME TO ...`, `ALTER DATABASE x SET
//! TABLESPACE ...` and `CREATE DATABASE ... [TEMPLATE x]` (template1 when no
//! TEMPLATE is given). The proxy's own connections to `x` (the catalog's,
//! the change feed's) would make them fail where they succeed against the
//! server, so the session releases `x` while such a statement runs.
//!
//! Read from tokens only: these statements have no expressions worth a
//! parse, and a name the lexer cannot decode simply names nothing.

use super::lexer::{tokenize, Kind, StrForm, Token};

/// PostgreSQL keeps the first NAMEDATALEN - 1 bytes of an identifier.
const MAX_NAME_BYTES: usize = 63;

/// The databases `text`'s statements need unused by anyone else.
pub fn needing_exclusive_use(text: &str) -> Vec<String> {
    let tokens = tokenize(text);
    let mut names = Vec::new();
    for statement in tokens.split(|t| t.is_punct(text, ";")) {
        if let Some(name) = statement_target(text, statement) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

fn statement_target(src: &str, t: &[Token]) -> Option<String> {
    let word = |i: usize, kw: &str| t.get(i).is_some_and(|t| t.is_word(src, kw));
    if !word(1, "database") {
        return None;
    }
    if word(0, "drop") {
        let at = if word(2, "if") && word(3, "exists") {
            4
        } else {
            2
        };
        return name(src, t.get(at)?);
    }
    if word(0, "alter") {
        let exclusive = word(3, "rename") || (word(3, "set") && word(4, "tablespace"));
        return if exclusive {
            name(src, t.get(2)?)
        } else {
            None
        };
    }
    if word(0, "create") {
        // Options after the new database's name (at 2): `TEMPLATE [=] x`.
        let template = (3..t.len()).find(|&i| word(i, "template"));
        return match template {
            Some(i) => {
                let value = if t
                    .get(i + 1)
                    .is_some_and(|t| t.kind == Kind::Op && t.text(src) == "=")
                {
                    i + 2
                } else {
                    i + 1
                };
                name(src, t.get(value)?)
            }
            None => Some("template1".to_string()),
        };
    }
    None
}

/// An identifier's name as the server stores it: unquoted ASCII letters
/// folded to lower case, a quoted one as written (`""` is `"`), both cut
/// to [`MAX_NAME_BYTES`]. `None` for anything else (a `U&"..."` name, a
/// string): no release, and the statement behaves as it would anyway.
fn name(src: &str, token: &Token) -> Option<String> {
    let text = token.text(src);
    let name = match token.kind {
        Kind::Word => text.to_ascii_lowercase(),
        Kind::Ident { unicode: false } => text
            .strip_prefix('"')?
            .strip_suffix('"')?
            .replace("\"\"", "\""),
        // `TEMPLATE 'x'`: the grammar takes a plain string there too.
        Kind::Str {
            form: StrForm::Standard,
            continued: false,
        } => text
            .strip_prefix('\'')?
            .strip_suffix('\'')?
            .replace("''", "'"),
        _ => return None,
    };
    Some(truncate(name))
}

fn truncate(mut name: String) -> String {
    if name.len() > MAX_NAME_BYTES {
        let mut end = MAX_NAME_BYTES;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::needing_exclusive_use as names;

    #[test]
    fn finds_the_database_each_statement_needs_alone() {
        assert_eq!(names("DROP DATABASE app"), ["app"]);
        assert_eq!(
            names("drop database if exists \"My DB\" with (force)"),
            ["My DB"]
        );
        assert_eq!(names("ALTER DATABASE App RENAME TO app2"), ["app"]);
        assert_eq!(names("ALTER DATABASE app SET TABLESPACE fast"), ["app"]);
        assert_eq!(names("CREATE DATABASE copy TEMPLATE src"), ["src"]);
        assert_eq!(
            names("CREATE DATABASE copy WITH OWNER = me TEMPLATE = \"Src\""),
            ["Src"]
        );
        assert_eq!(names("create database fresh"), ["template1"]);
        assert_eq!(names("CREATE DATABASE c TEMPLATE 'It''s'"), ["It's"]);
        assert_eq!(
            names("DROP DATABASE a; DROP DATABASE b; drop database a"),
            ["a", "b"]
        );
        assert_eq!(
            names("/* c */ DROP -- x\n DATABASE \"q\"\"uote\""),
            ["q\"uote"]
        );
    }

    #[test]
    fn other_statements_need_nothing() {
        for text in [
            "ALTER DATABASE app SET work_mem = '64MB'",
            "ALTER DATABASE app OWNER TO me",
            "DROP TABLE database",
            "SELECT 'DROP DATABASE app'",
            "DROP DATABASE",
            "DROP DATABASE U&\"d\\0061t\"",
            "",
        ] {
            assert!(names(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn long_names_are_cut_like_the_server_cuts_them() {
        let long = "x".repeat(70);
        assert_eq!(names(&format!("DROP DATABASE {long}")), ["x".repeat(63)]);
        let wide = "é".repeat(40); // 80 bytes
        let cut = &names(&format!("DROP DATABASE \"{wide}\""))[0];
        assert_eq!(cut.len(), 62);
    }
}
