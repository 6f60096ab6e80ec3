//! test_decoding's text output, read only as far as invalidation needs: the
//! transaction boundaries, the names of the tables each change touched, and
//! logical messages. Row contents are never parsed nor kept, so a reader may
//! hand over only the first bytes of a long line (see [`MAX_LINE_PREFIX`]).
//!
//! The lines, as the plugin writes them with `include-xids`:
//!
//! ```text
//! BEGIN 529
//! table public.orders: INSERT: id[integer]:1 ...
//! table public.a, "My Schema"."T": TRUNCATE: (no-flags)
//! message: transactional: 1 prefix: pgcache, sz: 4 content:...
//! COMMIT 529
//! ```
//!
//! Table names are `quote_qualified_identifier`'s output: an identifier is
//! either bare (lower-case letters, digits, `_`, `$`) or double-quoted with
//! `""` for a quote, so a name never hides a `.`, `,` or `:` outside quotes.

use std::collections::HashSet;

/// How much of each change a reader must keep: room for the longest
/// qualified name (two 63-byte identifiers, every character a doubled quote
/// in a 4-byte encoding is still far below) and the kind that follows it.
/// A TRUNCATE of many tables may be cut short: that line reads as
/// [`Line::Unreadable`] and its transaction counts as "everything".
pub const MAX_LINE_PREFIX: usize = 8 * 1024;

/// Past this many distinct tables in one transaction, the proxy stops
/// counting and invalidates everything at its commit: memory stays bounded
/// however many tables a transaction writes.
pub const MAX_TABLES_PER_TRANSACTION: usize = 10_000;

/// The prefix of the logical messages pgcache's own setup emits (DDL).
pub const MESSAGE_PREFIX: &str = "pgcache";

/// A table name as the server spelled it: exact, no folding left to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

/// One line of test_decoding's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Begin {
        xid: u32,
    },
    Commit {
        xid: u32,
    },
    /// INSERT, UPDATE, DELETE or TRUNCATE of these tables.
    Change {
        tables: Vec<TableName>,
    },
    /// `pg_logical_emit_message`: only transactional ones from pgcache's
    /// setup matter (they mark DDL at its place in the stream).
    Message {
        transactional: bool,
        from_pgcache: bool,
    },
    /// A line this reader does not understand, or one cut before its table
    /// names ended: whatever its transaction did is unknown.
    Unreadable,
}

/// Reads one line (or its first [`MAX_LINE_PREFIX`] bytes).
pub fn parse_line(line: &[u8]) -> Line {
    if let Some(rest) = line.strip_prefix(b"BEGIN ") {
        return xid(rest).map_or(Line::Unreadable, |xid| Line::Begin { xid });
    }
    if let Some(rest) = line.strip_prefix(b"COMMIT ") {
        return xid(rest).map_or(Line::Unreadable, |xid| Line::Commit { xid });
    }
    if let Some(rest) = line.strip_prefix(b"table ") {
        return change(rest).unwrap_or(Line::Unreadable);
    }
    if let Some(rest) = line.strip_prefix(b"message: transactional: ") {
        return message(rest).unwrap_or(Line::Unreadable);
    }
    Line::Unreadable
}

/// The xid after BEGIN/COMMIT; `include-timestamp` would append ` (at ...)`.
fn xid(rest: &[u8]) -> Option<u32> {
    let end = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

fn change(mut rest: &[u8]) -> Option<Line> {
    let mut tables = Vec::new();
    loop {
        let (schema, after) = identifier(rest)?;
        let after = after.strip_prefix(b".")?;
        let (name, after) = identifier(after)?;
        tables.push(TableName { schema, name });
        if let Some(more) = after.strip_prefix(b", ") {
            rest = more;
            continue;
        }
        let kind = after.strip_prefix(b": ")?;
        let known = [&b"INSERT:"[..], b"UPDATE:", b"DELETE:", b"TRUNCATE:"]
            .iter()
            .any(|k| kind.starts_with(k));
        return known.then_some(Line::Change { tables });
    }
}

/// A bare or double-quoted identifier at the start of `input`, and the rest.
fn identifier(input: &[u8]) -> Option<(String, &[u8])> {
    if let Some(quoted) = input.strip_prefix(b"\"") {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            match quoted.get(i)? {
                b'"' if quoted.get(i + 1) == Some(&b'"') => {
                    out.push(b'"');
                    i += 2;
                }
                b'"' => {
                    return Some((String::from_utf8(out).ok()?, &quoted[i + 1..]));
                }
                &b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
    }
    let end = input
        .iter()
        .position(|&b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'$'))
        .unwrap_or(input.len());
    if end == 0 {
        return None;
    }
    let name = std::str::from_utf8(&input[..end]).ok()?.to_string();
    Some((name, &input[end..]))
}

fn message(rest: &[u8]) -> Option<Line> {
    let transactional = match rest.first()? {
        b'1' => true,
        b'0' => false,
        _ => return None,
    };
    let prefix = rest[1..].strip_prefix(b" prefix: ")?;
    let end = prefix.windows(5).position(|w| w == b", sz:")?;
    Some(Line::Message {
        transactional,
        from_pgcache: &prefix[..end] == MESSAGE_PREFIX.as_bytes(),
    })
}

/// What one transaction changed, so far.
#[derive(Debug, Default)]
pub struct Transaction {
    tables: HashSet<TableName>,
    /// Too many tables, an unreadable line, or a change outside BEGIN/COMMIT.
    everything: bool,
    /// pgcache's DDL message was seen: the catalog must be reloaded.
    ddl: bool,
}

/// What a committed transaction changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub xid: u32,
    /// `None`: anything at all.
    pub tables: Option<Vec<TableName>>,
    pub ddl: bool,
}

impl Transaction {
    /// Folds in one line; at COMMIT, returns what the transaction changed
    /// and starts over.
    pub fn apply(&mut self, line: Line) -> Option<Committed> {
        match line {
            Line::Begin { .. } => {
                // A BEGIN without the previous COMMIT would be a server bug;
                // keep what was gathered rather than forget it.
            }
            Line::Change { tables } => {
                for table in tables {
                    if self.everything {
                        break;
                    }
                    self.tables.insert(table);
                    if self.tables.len() > MAX_TABLES_PER_TRANSACTION {
                        self.everything = true;
                        self.tables = HashSet::new();
                    }
                }
            }
            Line::Message {
                transactional: true,
                from_pgcache: true,
            } => self.ddl = true,
            Line::Message { .. } => {}
            Line::Unreadable => {
                self.everything = true;
                self.tables = HashSet::new();
            }
            Line::Commit { xid } => {
                let done = std::mem::take(self);
                return Some(Committed {
                    xid,
                    tables: (!done.everything).then(|| done.tables.into_iter().collect()),
                    ddl: done.ddl,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(schema: &str, name: &str) -> TableName {
        TableName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    #[test]
    fn reads_boundaries() {
        assert_eq!(parse_line(b"BEGIN 529"), Line::Begin { xid: 529 });
        assert_eq!(parse_line(b"COMMIT 529"), Line::Commit { xid: 529 });
        assert_eq!(
            parse_line(b"COMMIT 7 (at 2026-12-01 00:00:00+00)"),
            Line::Commit { xid: 7 }
        );
        assert_eq!(parse_line(b"COMMIT"), Line::Unreadable);
        assert_eq!(parse_line(b"BEGIN x"), Line::Unreadable);
    }

    #[test]
    fn reads_the_table_of_each_kind_of_change() {
        for kind in [
            "INSERT: id[integer]:1",
            "UPDATE: a[text]:'x: y'",
            "DELETE: (no-tuple-data)",
        ] {
            let line = format!("table public.orders: {kind}");
            assert_eq!(
                parse_line(line.as_bytes()),
                Line::Change {
                    tables: vec![t("public", "orders")]
                },
                "{line}"
            );
        }
        assert_eq!(
            parse_line(b"table public.a, \"My Schema\".\"T\"\"1\": TRUNCATE: (no-flags)"),
            Line::Change {
                tables: vec![t("public", "a"), t("My Schema", "T\"1")]
            }
        );
        assert_eq!(
            parse_line(b"table s$1.\"a.b, c: d\": DELETE: x"),
            Line::Change {
                tables: vec![t("s$1", "a.b, c: d")]
            }
        );
    }

    #[test]
    fn a_line_cut_inside_its_names_is_unreadable() {
        assert_eq!(parse_line(b"table public.a, public.b"), Line::Unreadable);
        assert_eq!(parse_line(b"table \"unterminated"), Line::Unreadable);
        assert_eq!(parse_line(b"table public.a: MERGE: x"), Line::Unreadable);
        assert_eq!(parse_line(b"table Public.a: INSERT: x"), Line::Unreadable);
        assert_eq!(parse_line(b"something new"), Line::Unreadable);
    }

    #[test]
    fn reads_messages() {
        assert_eq!(
            parse_line(b"message: transactional: 1 prefix: pgcache, sz: 3 content:abc"),
            Line::Message {
                transactional: true,
                from_pgcache: true
            }
        );
        assert_eq!(
            parse_line(b"message: transactional: 0 prefix: other, sz: 0 content:"),
            Line::Message {
                transactional: false,
                from_pgcache: false
            }
        );
    }

    #[test]
    fn a_transaction_collects_its_tables_until_commit() {
        let mut tx = Transaction::default();
        for line in [
            "BEGIN 9",
            "table public.a: INSERT: x",
            "table public.b: UPDATE: y",
            "table public.a: DELETE: z",
        ] {
            assert_eq!(tx.apply(parse_line(line.as_bytes())), None);
        }
        let mut done = tx.apply(parse_line(b"COMMIT 9")).unwrap();
        done.tables
            .as_mut()
            .unwrap()
            .sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(
            done,
            Committed {
                xid: 9,
                tables: Some(vec![t("public", "a"), t("public", "b")]),
                ddl: false
            }
        );
        // The next transaction starts empty.
        let next = tx.apply(parse_line(b"COMMIT 10")).unwrap();
        assert_eq!(next.tables, Some(vec![]));
    }

    #[test]
    fn too_many_tables_or_an_unreadable_line_is_everything() {
        let mut tx = Transaction::default();
        for i in 0..=MAX_TABLES_PER_TRANSACTION {
            tx.apply(Line::Change {
                tables: vec![t("public", &format!("t{i}"))],
            });
        }
        assert!(tx.tables.is_empty(), "memory is given back");
        assert_eq!(tx.apply(Line::Commit { xid: 1 }).unwrap().tables, None);

        tx.apply(parse_line(b"table public.a: INSERT: x"));
        tx.apply(parse_line(b"table public.a, public."));
        tx.apply(parse_line(b"table public.b: INSERT: x"));
        assert_eq!(tx.apply(Line::Commit { xid: 2 }).unwrap().tables, None);
    }

    #[test]
    fn pgcache_messages_mark_ddl() {
        let mut tx = Transaction::default();
        tx.apply(parse_line(
            b"message: transactional: 1 prefix: pgcache, sz: 1 content:x",
        ));
        assert!(tx.apply(Line::Commit { xid: 3 }).unwrap().ddl);
        tx.apply(parse_line(
            b"message: transactional: 1 prefix: other, sz: 1 content:x",
        ));
        assert!(!tx.apply(Line::Commit { xid: 4 }).unwrap().ddl);
    }
}
