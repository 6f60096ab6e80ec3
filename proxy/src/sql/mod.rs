//! SQL analysis for the proxy: what kind of statement a text holds, which
//! relations and functions it reads and writes, and its fingerprint.
//!
//! This module knows nothing of sockets, the catalog or the cache engine. It
//! reports names as written (folded like PostgreSQL folds identifiers); the
//! proxy resolves them against the catalog. Its one rule is the proxy's: a
//! wrong "cacheable" or a missed write target serves stale rows, so whatever
//! is not fully understood is [`StatementKind::Unknown`].
//!
//! # Pipeline
//!
//! 1. `lexer`: a tokenizer faithful to PostgreSQL's (`scan.l`), over any
//!    `&str`, never panicking.
//! 2. `normalize`: the fingerprint (literals as `$n`), the statement split
//!    at top-level semicolons, and the literal-dependent flags (time literals
//!    like `'now'`, mentions of "temp").
//! 3. `classify`: per statement, dispatch on the leading keyword. Utility
//!    statements and SET are read from tokens (`utility`, `set`); queries
//!    and DML are re-emitted from the tokens as plain text and parsed by
//!    sqlparser (`parse`), then walked by its visitor (`collect`).
//! 4. `cache`: the [`Analyzer`], an LRU of analyses shared by shape where
//!    the analysis does not depend on literal values, else by exact text.
//!
//! # Use
//!
//! One [`Analyzer`] is shared by all sessions: `analyzer.analyze(text)` gives
//! an `Arc<Analysis>`; [`Analysis::single_cacheable_read`] is the syntactic
//! half of "may this be cached"; the proxy adds the catalog, policy and
//! session checks.
//!
//! # Limits the proxy must know
//!
//! - `creates_temp` sees only the text: a function, procedure or DO block may
//!   create temporary tables too (DO and other Unknown statements that mention
//!   "temp" anywhere are flagged; calls are not).
//! - Lexing assumes `standard_conforming_strings = on`. With it off, a
//!   backslash in `'...'` escapes the quote and statement boundaries can
//!   differ from what was analyzed: treat such sessions' texts as Unknown.
//! - Extended-protocol parameter values are not seen here. A text parameter
//!   bound to `'now'`/`'today'`/... and cast to a date/time type is a time
//!   literal; [`is_time_literal`] checks a value.
//! - Functions reached without a call in the text are not reported: operators
//!   and casts implemented by user functions, column defaults, triggers,
//!   rules, and what a view's definition calls. The catalog side covers
//!   those (`Snapshot::hidden_call_risk` over the fingerprint's tokens for
//!   operators, casts, domains; folded volatility for aggregates and
//!   argument defaults; view expansion).
//! - `EXECUTE name(args)` reports only the name; functions called in its
//!   arguments are not collected.
//! - Nesting deeper than sqlparser's recursion budget (about 190 parentheses
//!   or 95 nested subqueries) or operator chains deeper than 8000 make a
//!   statement Unknown.
//! - Parsing widens, once per process, the stack margin at which sqlparser's
//!   `recursive` dependency grows the stack (the default is too small for
//!   unoptimized builds). Nothing else uses that crate.
//! - A statement sqlparser cannot parse is Unknown even when the server would
//!   accept it (e.g. `ROWS FROM (...)`, `SEARCH/CYCLE` clauses, `xmlelement(name
//!   ...)`, `WHERE CURRENT OF`); `error` says why.
//! - `Analysis::statements` follows the server's statement boundaries (also
//!   through `BEGIN ATOMIC ... END` bodies); one unparsable statement does not
//!   hide the others. The server rejects the whole text if any statement has a
//!   syntax error, so a text holding an Unknown may in fact run nothing.

mod analysis;
mod cache;
mod classify;
mod collect;
mod databases;
mod keywords;
mod lexer;
mod normalize;
mod parse;
mod set;
mod utility;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_prop;
#[cfg(test)]
mod tests_secrets;

pub use analysis::{
    Analysis, FuncName, Isolation, Read, RelName, SetCommand, SetValue, Statement, StatementKind,
    TxCommand, Write,
};
pub use cache::{Analyzer, MAX_ANALYZED_TEXT, MAX_CACHED_TEXT, TOO_LARGE};
pub use databases::needing_exclusive_use;
/// The tokenizer, for the catalog's check of what a fingerprint names
/// (operators, type and domain names) without substring guesses.
pub(crate) use lexer::{ident_value, tokenize, Kind as TokenKind};

/// The fingerprint of `text` and its 64-bit id, without analyzing it.
pub fn fingerprint(text: &str) -> (String, u64) {
    if text.len() > MAX_ANALYZED_TEXT {
        let analysis = cache::too_large(text);
        return (analysis.fingerprint.to_string(), analysis.fingerprint_id);
    }
    let n = normalize::normalize(text);
    let id = normalize::fingerprint_id(&n.fingerprint);
    (n.fingerprint, id)
}

/// Whether a value, read as date/time input, means the current time
/// (`now`, `today`, `tomorrow`, `yesterday`, any case, with other fields or
/// punctuation around). For parameter values of extended-protocol queries.
pub fn is_time_literal(value: &str) -> bool {
    lexer::is_time_literal(value)
}

/// Analyze one text without any cache (tests, tools).
pub fn analyze(text: &str) -> Analysis {
    if text.len() > MAX_ANALYZED_TEXT {
        return cache::too_large(text);
    }
    let n = normalize::normalize(text);
    cache::analyze_uncached(text, &n).0
}
