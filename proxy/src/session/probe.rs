//! Asking the server what state a session is in.
//!
//! The proxy sees the statements it relays, not what the server did with
//! them: a function can call `set_config`, a procedure can `SET`, `RESET ALL`
//! keeps the role, a role's defaults apply at login and not at `SET ROLE`,
//! and the isolation of a transaction block depends on settings that can
//! change behind the session's back (`ALTER SYSTEM` and a reload). So instead
//! of modelling any of that, the proxy asks: after anything that may have
//! changed the session's state, and before the next answer it would serve or
//! store, it sends this one-row query in a cycle of its own whose answers the
//! client never sees, and keys the cache with what comes back.
//!
//! Every name in the query is qualified with `pg_catalog`, and the operators
//! are spelled `OPERATOR(pg_catalog.=)`, so a user's own functions or
//! operators earlier in search_path cannot change the answer.

use bytes::BytesMut;

use crate::wire::result_set::{data_row_values, write_query};

/// Settings that change what a statement returns (or how its text is read)
/// and that the server does not report with ParameterStatus. The reported
/// ones (TimeZone, DateStyle, IntervalStyle, client_encoding,
/// standard_conforming_strings, ...) are in the key already, exactly as
/// reported. A setting read only through functions that are not IMMUTABLE
/// (`current_setting('app.tenant')`) needs no place here: such a read is
/// never cached. Reading all of `pg_settings` instead costs the server
/// almost a millisecond per probe.
const KEYED_SETTINGS: &[&str] = &[
    "extra_float_digits",
    "bytea_output",
    "xmloption",
    "xmlbinary",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "default_text_search_config",
    "array_nulls",
    "backslash_quote",
    "transform_null_equals",
    "row_security",
    "gin_fuzzy_search_limit",
    "timezone_abbreviations",
    "quote_all_identifiers",
    "session_replication_role",
];

/// What to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// Everything the key and name resolution depend on.
    State,
    /// Only the isolation of the transaction block just begun: nothing
    /// else can change by beginning one.
    Isolation,
}

impl Ask {
    /// The probe's text. Built once; it never changes.
    pub fn text(self) -> &'static str {
        static STATE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        match self {
            Ask::Isolation => "SELECT pg_catalog.current_setting('transaction_isolation')",
            Ask::State => STATE.get_or_init(|| {
                let settings = KEYED_SETTINGS
                    .iter()
                    .map(|n| format!("pg_catalog.current_setting('{n}', true)"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "SELECT pg_catalog.current_setting('transaction_isolation'), \
                     pg_catalog.current_setting('search_path'), \
                     CAST(current_user AS pg_catalog.text), CAST(session_user AS pg_catalog.text), \
                     pg_catalog.pg_my_temp_schema() OPERATOR(pg_catalog.<>) 0, \
                     pg_catalog.concat_ws(pg_catalog.chr(10), {settings})"
                )
            }),
        }
    }

    /// Appends the probe (a simple Query) to what goes to the server.
    pub fn write(self, server: &mut BytesMut) {
        write_query(server, self.text());
    }
}

/// What the server answered: the state, or only the block's isolation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    State(Probed),
    Isolation { read_committed: bool },
}

impl Answer {
    /// Reads the probe's DataRow (whole message). `None` if it is not a row
    /// a probe asked for.
    pub fn from_data_row(message: &[u8]) -> Option<Answer> {
        let values = data_row_values(message)?;
        let text = |i: usize| -> Option<String> {
            let v = values.get(i).copied()??;
            std::str::from_utf8(v).ok().map(str::to_owned)
        };
        let read_committed = text(0)? == "read committed";
        match values.len() {
            1 => Some(Answer::Isolation { read_committed }),
            6 => Some(Answer::State(Probed {
                read_committed,
                search_path: text(1)?,
                current_user: text(2)?,
                session_user: text(3)?,
                temporary_relations: text(4)? == "t",
                settings: text(5)?,
            })),
            _ => None,
        }
    }
}

/// What the server said about the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    /// `search_path` as the server holds it (not expanded).
    pub search_path: String,
    /// The transaction's isolation; meaningful inside a transaction block.
    pub read_committed: bool,
    /// The role privileges are checked against (`SET ROLE` changes it).
    pub current_user: String,
    pub session_user: String,
    /// The session has a temporary schema (it created temporary objects at
    /// some point): a name may resolve to one, which the proxy's catalog
    /// cannot see.
    pub temporary_relations: bool,
    /// The values of `KEYED_SETTINGS`, one per line.
    pub settings: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::result_set::write_result_set;
    use crate::wire::{Framer, Piece};

    fn row(values: Vec<Option<String>>) -> Option<Answer> {
        let mut out = BytesMut::new();
        let columns: Vec<String> = (0..values.len()).map(|i| format!("c{i}")).collect();
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        write_result_set(&mut out, &columns, &[values], "SELECT 1");
        let mut framer = Framer::new(1 << 20, 1 << 20);
        let mut answer = None;
        while let Some(Piece::Message { tag, bytes }) = framer.next(&mut out).unwrap() {
            if tag == b'D' {
                answer = Answer::from_data_row(&bytes);
            }
        }
        answer
    }

    #[test]
    fn reads_the_rows_it_asked_for() {
        let s = |v: &str| Some(v.to_string());
        let state = row(vec![
            s("repeatable read"),
            s("\"$user\", public"),
            s("alice"),
            s("app"),
            s("f"),
            s("1\nhex"),
        ]);
        let Some(Answer::State(probed)) = state else {
            panic!("{state:?}");
        };
        assert_eq!(probed.search_path, "\"$user\", public");
        assert!(!probed.read_committed);
        assert_eq!(probed.current_user, "alice");
        assert_eq!(probed.session_user, "app");
        assert!(!probed.temporary_relations);
        assert_eq!(
            row(vec![s("read committed")]),
            Some(Answer::Isolation {
                read_committed: true
            })
        );
        assert_eq!(row(vec![s("x"), s("y")]), None);
        assert_eq!(row(vec![None]), None);
    }

    #[test]
    fn the_queries_are_one_statement_qualified_throughout() {
        for ask in [Ask::State, Ask::Isolation] {
            let analysis = crate::sql::analyze(ask.text());
            assert_eq!(analysis.statements.len(), 1, "{analysis:?}");
            for f in analysis
                .statements
                .iter()
                .filter_map(|s| s.kind.reads())
                .flat_map(|r| &r.functions)
            {
                assert!(
                    f.schema.as_deref() == Some("pg_catalog")
                        || ["current_user", "session_user"].contains(&f.name.as_str()),
                    "unqualified function {f} in the probe"
                );
            }
        }
    }
}
