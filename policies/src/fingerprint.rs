//! The light canonical form under which `[queries."..."]` keys are compared.
//!
//! Operators copy a fingerprint from the admin listing (or a metric label) into
//! the policy file; the proxy computes fingerprints of the queries it sees. The
//! two must meet even if the copy gained a line break, different spacing,
//! different keyword case or a trailing semicolon. So both sides go through
//! [`canonical_fingerprint`], which, outside single- and double-quoted text:
//! - trims leading and trailing whitespace and trailing semicolons,
//! - collapses every run of whitespace into one space,
//! - lower-cases ASCII letters (keywords and unquoted identifiers are
//!   case-insensitive in SQL; quoted identifiers and literals are kept).
//!
//! It does not insert or remove whitespace around punctuation: `id=$1` and
//! `id = $1` stay different, which is why the listing's text should be copied
//! as is rather than retyped.

use std::borrow::Cow;

/// Canonical form of a query fingerprint; borrowed when already canonical.
pub fn canonical_fingerprint(fingerprint: &str) -> Cow<'_, str> {
    // The proxy looks fingerprints up per query; most are already canonical,
    // so check first and allocate only when something changes.
    if is_canonical(fingerprint) {
        Cow::Borrowed(fingerprint)
    } else {
        Cow::Owned(canonicalize(fingerprint))
    }
}

fn is_canonical(s: &str) -> bool {
    if s.starts_with(char::is_whitespace) {
        return false;
    }
    let mut quote: Option<char> = None;
    let mut prev_space = false;
    for c in s.chars() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
            }
            None => {
                if c == ' ' {
                    if prev_space {
                        return false;
                    }
                    prev_space = true;
                    continue;
                }
                if c.is_whitespace() || c.is_ascii_uppercase() {
                    return false;
                }
                prev_space = false;
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    quote.is_some() || !(s.ends_with(' ') || s.ends_with(';'))
}

fn canonicalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut quote: Option<char> = None;
    // Whitespace is emitted lazily, so runs collapse and a trailing run vanishes.
    let mut pending_space = false;
    for c in s.chars() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    // A doubled quote ('' or "") closes and at once reopens: same result.
                    quote = None;
                }
            }
            None if c.is_whitespace() => pending_space = !out.is_empty(),
            None => {
                if pending_space {
                    out.push(' ');
                    pending_space = false;
                }
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                out.push(c.to_ascii_lowercase());
            }
        }
    }
    if quote.is_none() {
        // Trailing semicolons (and the spaces between them) are not part of the shape.
        while out.ends_with(';') || out.ends_with(' ') {
            out.pop();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_trims_and_folds_outside_quotes() {
        assert_eq!(
            canonical_fingerprint("  SELECT *\n  FROM users\tWHERE id = $1 ;; "),
            "select * from users where id = $1"
        );
        assert_eq!(
            canonical_fingerprint(r#"select "Name",  'A  B' from "My  Table""#),
            r#"select "Name", 'A  B' from "My  Table""#
        );
        assert_eq!(
            canonical_fingerprint("select 'it''s  x'"),
            "select 'it''s  x'"
        );
        assert_eq!(canonical_fingerprint(""), "");
        assert_eq!(canonical_fingerprint(" ; "), "");
        // An unterminated quote keeps everything after it verbatim.
        assert_eq!(canonical_fingerprint("select 'a ;  "), "select 'a ;  ");
    }

    #[test]
    fn borrows_when_already_canonical() {
        assert!(matches!(
            canonical_fingerprint("select * from users where id = $1"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(canonical_fingerprint("SELECT 1"), Cow::Owned(_)));
    }
}
