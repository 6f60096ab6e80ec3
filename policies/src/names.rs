//! Schema-qualified names of tables and functions, folded like PostgreSQL
//! identifiers.
//!
//! A name in the policy file is written the way it would be in SQL: `orders`,
//! `public.orders`, `"Sales"."Orders"`. Unquoted parts are lower-cased (ASCII
//! only, as PostgreSQL does for UTF-8 databases), double-quoted parts are kept
//! exactly, with `""` standing for one `"`. A name without a schema means
//! `public`: the policy is read with no search_path, so it cannot guess another.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use thiserror::Error;

/// PostgreSQL keeps at most NAMEDATALEN-1 bytes of an identifier; a longer
/// name in the policy could never match the catalog, so it is refused.
const MAX_IDENT_BYTES: usize = 63;

/// A schema and a relation or function name, both already folded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

impl QualifiedName {
    /// From parts that are already folded (as the catalog returns them).
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        QualifiedName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// Parses a name as written in the policy file: `orders`, `public.orders`,
    /// `"Sales"."Orders"`. Wildcards are not names; see the `[tables]` docs.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        match parse_pattern(s)? {
            TablePattern::Exact(q) => Ok(q),
            TablePattern::Schema(_) => Err(NameError::WildcardNotAllowed(s.to_owned())),
        }
    }
}

impl FromStr for QualifiedName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        QualifiedName::parse(s)
    }
}

/// `schema.name`, each part double-quoted when it would not read back the
/// same unquoted, so the output can be pasted into a policy file (or SQL,
/// keywords aside).
impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_ident(f, &self.schema)?;
        f.write_str(".")?;
        write_ident(f, &self.name)
    }
}

impl Serialize for QualifiedName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Writes one identifier, quoted if it needs to be.
pub(crate) fn write_ident(f: &mut fmt::Formatter<'_>, ident: &str) -> fmt::Result {
    if needs_quotes(ident) {
        f.write_str("\"")?;
        f.write_str(&ident.replace('"', "\"\""))?;
        f.write_str("\"")
    } else {
        f.write_str(ident)
    }
}

fn needs_quotes(ident: &str) -> bool {
    let mut chars = ident.chars();
    match chars.next() {
        None => true,
        Some(c) if !is_ident_start(c) || c.is_ascii_uppercase() => true,
        Some(_) => !chars.all(|c| is_ident_char(c) && !c.is_ascii_uppercase()),
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_ident_char(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == '$'
}

/// Why a table or function name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("empty name; expected table or schema.table")]
    Empty,
    #[error("invalid name {0:?}: empty part; expected table or schema.table")]
    EmptyPart(String),
    #[error("invalid name {0:?}: a quoted part cannot be empty")]
    EmptyQuoted(String),
    #[error("invalid name {0:?}: unterminated double quote")]
    Unterminated(String),
    #[error("invalid name {name:?}: expected '.' after the quoted part, found {found:?}")]
    AfterQuote { name: String, found: char },
    #[error("invalid name {name:?}: {part:?} is not a valid unquoted name (letters, digits, _ and $, not starting with a digit or $); double-quote it as in SQL: {suggestion}")]
    BadUnquoted {
        name: String,
        part: String,
        /// The fixed name, written so it can be pasted into the TOML file.
        suggestion: String,
    },
    #[error("invalid name {name:?}: {part:?} is longer than PostgreSQL's limit of 63 bytes")]
    TooLong { name: String, part: String },
    #[error("invalid name {0:?}: a name has at most two parts, schema.table (database names are not allowed)")]
    TooManyParts(String),
    #[error("invalid name {0:?}: a name cannot contain a NUL character")]
    Nul(String),
    #[error("invalid name {0:?}: wildcards are allowed only in [tables] keys, as \"schema.*\"")]
    WildcardNotAllowed(String),
    #[error("invalid name {0:?}: the wildcard stands for every table of one schema, as \"schema.*\"; for every table use [defaults]")]
    BadWildcard(String),
}

/// The key of a `[tables."..."]` rule: one table, or every table of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TablePattern {
    Exact(QualifiedName),
    Schema(String),
}

enum Part {
    Ident(String),
    Star,
}

/// Parses `orders`, `public.orders`, `"Sales"."Orders"` or `analytics.*`.
pub(crate) fn parse_pattern(s: &str) -> Result<TablePattern, NameError> {
    // Only ASCII whitespace separates tokens, as in PostgreSQL's lexer: other
    // characters (even Unicode spaces such as U+0085) belong to identifiers.
    let trimmed = s.trim_matches(|c: char| c.is_ascii_whitespace());
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    let parts = split_parts(trimmed, s)?;
    match parts.as_slice() {
        [Part::Ident(name)] => Ok(TablePattern::Exact(QualifiedName::new(
            "public",
            name.clone(),
        ))),
        [Part::Ident(schema), Part::Ident(name)] => Ok(TablePattern::Exact(QualifiedName::new(
            schema.clone(),
            name.clone(),
        ))),
        [Part::Ident(schema), Part::Star] => Ok(TablePattern::Schema(schema.clone())),
        [_] | [_, _] => Err(NameError::BadWildcard(s.to_owned())),
        _ => Err(NameError::TooManyParts(s.to_owned())),
    }
}

fn split_parts(s: &str, original: &str) -> Result<Vec<Part>, NameError> {
    let name = || original.to_owned();
    if s.contains('\0') {
        return Err(NameError::Nul(name()));
    }
    let mut parts = Vec::new();
    let mut rest = s;
    loop {
        if let Some(after_quote) = rest.strip_prefix('"') {
            // Quoted: everything up to a lone '"', with "" meaning one quote.
            let mut ident = String::new();
            let mut chars = after_quote.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err(NameError::Unterminated(name())),
                    Some((i, '"')) => {
                        if after_quote[i + 1..].starts_with('"') {
                            ident.push('"');
                            chars.next();
                        } else {
                            break i + 1;
                        }
                    }
                    Some((_, c)) => ident.push(c),
                }
            };
            if ident.is_empty() {
                return Err(NameError::EmptyQuoted(name()));
            }
            check_len(&ident, original)?;
            parts.push(Part::Ident(ident));
            rest = &after_quote[end..];
            match rest.chars().next() {
                None => return Ok(parts),
                Some('.') => rest = &rest[1..],
                Some(found) => {
                    return Err(NameError::AfterQuote {
                        name: name(),
                        found,
                    })
                }
            }
        } else {
            let end = rest.find(['.', '"']).unwrap_or(rest.len());
            let raw = &rest[..end];
            if raw.is_empty() {
                return Err(NameError::EmptyPart(name()));
            }
            if raw == "*" {
                parts.push(Part::Star);
            } else {
                let valid = raw.chars().next().is_some_and(is_ident_start)
                    && raw.chars().all(is_ident_char);
                if !valid {
                    return Err(bad_unquoted(original, raw.to_owned()));
                }
                let folded = raw.to_ascii_lowercase();
                check_len(&folded, original)?;
                parts.push(Part::Ident(folded));
            }
            rest = &rest[end..];
            match rest.chars().next() {
                None => return Ok(parts),
                Some('.') => {
                    rest = &rest[1..];
                    if rest.is_empty() {
                        return Err(NameError::EmptyPart(name()));
                    }
                }
                // A quote in the middle of an unquoted part, as in `ab"c"`.
                Some(_) => {
                    let part = format!("{raw}{}", rest.split('.').next().unwrap_or_default());
                    return Err(bad_unquoted(original, part));
                }
            }
        }
    }
}

/// The error for an unquoted part that SQL would not accept, with the whole
/// name rewritten with that part double-quoted, inside TOML single quotes
/// (`'public."audit-log"'`) so it can be pasted as a key or array element.
fn bad_unquoted(original: &str, part: String) -> NameError {
    let quoted = format!("\"{}\"", part.replace('"', "\"\""));
    let fixed = original
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .replacen(&part, &quoted, 1);
    let suggestion = if fixed.contains('\'') || fixed.chars().any(char::is_control) {
        quoted
    } else {
        format!("'{fixed}'")
    };
    NameError::BadUnquoted {
        name: original.to_owned(),
        part,
        suggestion,
    }
}

fn check_len(ident: &str, original: &str) -> Result<(), NameError> {
    if ident.len() > MAX_IDENT_BYTES {
        Err(NameError::TooLong {
            name: original.to_owned(),
            part: ident.to_owned(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str, n: &str) -> QualifiedName {
        QualifiedName::new(s, n)
    }

    #[test]
    fn unqualified_means_public_and_unquoted_folds() {
        assert_eq!(QualifiedName::parse("orders"), Ok(q("public", "orders")));
        assert_eq!(
            QualifiedName::parse("Public.Orders"),
            Ok(q("public", "orders"))
        );
        assert_eq!(
            QualifiedName::parse(" sales.ORDERS "),
            Ok(q("sales", "orders"))
        );
        assert_eq!(QualifiedName::parse("a_b$1.x9"), Ok(q("a_b$1", "x9")));
        assert_eq!(QualifiedName::parse("été.Ünï"), Ok(q("été", "Ünï")));
    }

    #[test]
    fn unicode_spaces_are_identifier_characters() {
        // Found by the property test: U+0085 is Unicode whitespace, but not to
        // PostgreSQL; a name made of it must survive Display and parse.
        let q = QualifiedName::new(" ", "\u{85}");
        assert_eq!(q.to_string().parse::<QualifiedName>(), Ok(q));
    }

    #[test]
    fn quoted_parts_keep_case() {
        assert_eq!(
            QualifiedName::parse(r#""Sales"."Orders""#),
            Ok(q("Sales", "Orders"))
        );
        assert_eq!(
            QualifiedName::parse(r#"sales."Orders""#),
            Ok(q("sales", "Orders"))
        );
        assert_eq!(
            QualifiedName::parse(r#""My Table""#),
            Ok(q("public", "My Table"))
        );
        assert_eq!(
            QualifiedName::parse(r#""a""b"."c.d""#),
            Ok(q("a\"b", "c.d"))
        );
    }

    #[test]
    fn bad_names_are_refused_precisely() {
        let msg = |s: &str| QualifiedName::parse(s).unwrap_err().to_string();
        assert_eq!(msg(""), "empty name; expected table or schema.table");
        assert!(msg("public..orders").contains("empty part"));
        assert!(msg(".orders").contains("empty part"));
        assert!(msg("orders.").contains("empty part"));
        assert!(msg(r#""""#).contains("quoted part cannot be empty"));
        assert!(msg(r#""Sales.orders"#).contains("unterminated"));
        assert!(msg(r#""Sales"x"#).contains("expected '.' after the quoted part"));
        assert_eq!(
            msg("public.my-table"),
            r#"invalid name "public.my-table": "my-table" is not a valid unquoted name (letters, digits, _ and $, not starting with a digit or $); double-quote it as in SQL: 'public."my-table"'"#
        );
        assert!(msg("1abc").contains("not a valid unquoted name"));
        assert!(msg("my table").contains("not a valid unquoted name"));
        assert!(msg(r#"ab"c""#).contains("not a valid unquoted name"));
        assert!(msg("db.public.orders").contains("at most two parts"));
        assert!(msg(&"x".repeat(64)).contains("63 bytes"));
        assert!(QualifiedName::parse(&"x".repeat(63)).is_ok());
        assert!(msg("analytics.*").contains("wildcards are allowed only in [tables]"));
        assert!(msg("a\0b").contains("NUL"));
    }

    #[test]
    fn patterns() {
        assert_eq!(
            parse_pattern("analytics.*"),
            Ok(TablePattern::Schema("analytics".into()))
        );
        assert_eq!(
            parse_pattern(r#""Analytics".*"#),
            Ok(TablePattern::Schema("Analytics".into()))
        );
        assert_eq!(
            parse_pattern(r#"analytics."*""#),
            Ok(TablePattern::Exact(q("analytics", "*")))
        );
        assert!(matches!(parse_pattern("*"), Err(NameError::BadWildcard(_))));
        assert!(matches!(
            parse_pattern("*.orders"),
            Err(NameError::BadWildcard(_))
        ));
        assert!(matches!(
            parse_pattern("*.*"),
            Err(NameError::BadWildcard(_))
        ));
    }

    #[test]
    fn display_quotes_when_needed() {
        assert_eq!(q("public", "orders").to_string(), "public.orders");
        assert_eq!(q("Sales", "Orders").to_string(), r#""Sales"."Orders""#);
        assert_eq!(q("public", "my table").to_string(), r#"public."my table""#);
        assert_eq!(q("public", "1x").to_string(), r#"public."1x""#);
        assert_eq!(q("public", "a\"b").to_string(), r#"public."a""b""#);
        assert_eq!(q("public", "*").to_string(), r#"public."*""#);
        assert_eq!(q("public", "").to_string(), r#"public."""#);
        for name in [q("Sales", "Orders"), q("public", "a\"b"), q("x$", "été")] {
            assert_eq!(QualifiedName::parse(&name.to_string()), Ok(name));
        }
    }
}
