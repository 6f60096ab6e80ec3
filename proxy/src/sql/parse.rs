//! Hands one statement's tokens to sqlparser.
//!
//! sqlparser does not see the original text. It sees the statement re-emitted
//! from our PostgreSQL-faithful tokens, so its own lexer only ever meets the
//! simplest forms and cannot disagree with the server about where a literal,
//! comment or identifier ends:
//! - comments are gone; every token is separated by one space;
//! - every string literal (`E'..'`, `U&'..'`, `$$..$$`, continued `'a'\n'b'`)
//!   is a plain `'...'` holding its decoded value; bit strings are `'0'`;
//! - `U&"..."` identifiers and unquoted identifiers with `$` or non-ASCII
//!   characters become ordinary `"..."` identifiers (folded first);
//! - `1_000`, `0x1F`, `0o17`, `0b101` are plain decimal numbers;
//! - operators other than the common ones become `+`, and any operator
//!   before `ANY`/`ALL`/`SOME` becomes `=` (see `plan`): which operator it is
//!   never changes what is read or called.
//!
//! Plus rewrites for PostgreSQL syntax sqlparser 0.63 misreads or lacks, each
//! removing only syntax that names no relation and calls no function:
//! `ONLY` before a table name is dropped (sqlparser takes `FROM ONLY t` for a
//! table named "ONLY" aliased `t`; for invalidation `ONLY t` is `t`),
//! `TABLE t` as a query becomes `SELECT * FROM t`, `FOR NO KEY UPDATE` /
//! `FOR KEY SHARE` become `FOR UPDATE` / `FOR SHARE` and lose their `OF`
//! lists (all are locking clauses), `BETWEEN SYMMETRIC`, window `EXCLUDE ...`,
//! `OVERRIDING ... VALUE`, an `ON CONFLICT (..) WHERE` index predicate, and
//! `AT LOCAL` (as `AT TIME ZONE`).
//!
//! Depth limits: sqlparser's recursion limit turns deep nesting into an
//! error. Long flat chains (`a OR b OR ...`, `x::t::t...`, `UNION` chains)
//! are built by loops, not recursion, but the resulting left-deep tree is
//! dropped recursively, which overflows the stack at some tens of thousands
//! of levels; so the operator-chain depth is bounded before parsing. And the
//! stack-growth margin sqlparser keeps is widened (`widen_stack_red_zone`).

use std::ops::Range;
use std::sync::Once;

use sqlparser::ast::Statement as Ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token as SqlToken;

use super::collect::fold_ident;
use super::cursor::matching_paren;
use super::lexer::{self, Kind, Token};

/// sqlparser's nesting budget; each level of parentheses or subquery costs
/// one or two. Deeper statements become Unknown.
pub(crate) const RECURSION_LIMIT: usize = 200;

/// Bound on the operator-chain depth of a statement (see the module docs).
/// A dropped chain costs well under 100 bytes of stack per level, so this
/// stays far inside a 2 MiB thread stack.
pub(crate) const MAX_CHAIN_DEPTH: u64 = 8_000;

/// Parse one statement; `prefix` is prepended verbatim (used to wrap an
/// expression as `SELECT 1 WHERE <expr>`).
pub(crate) fn parse_one(src: &str, toks: &[Token], prefix: &str) -> Result<Ast, String> {
    let depth = chain_depth(src, toks);
    if depth > MAX_CHAIN_DEPTH {
        return Err(format!(
            "statement too complex to analyze (operator chain depth {depth} > {MAX_CHAIN_DEPTH})"
        ));
    }
    let first = parse_text(src, toks, prefix, false);
    match first {
        Err(e)
            if e.starts_with(PARSER_ERROR) && (0..toks.len()).any(|i| quotable(src, toks, i)) =>
        {
            // sqlparser reserves some words that PostgreSQL does not (it
            // rejects `FROM t settings`); the same statement with those words
            // quoted means the same to PostgreSQL.
            parse_text(src, toks, prefix, true).map_err(|_| e)
        }
        other => other,
    }
}

const PARSER_ERROR: &str = "sql parser error";

/// sqlparser's parser and visitor grow the stack (through the `recursive`
/// crate) when less than a red zone is left at one of their checkpoints. The
/// default zone, 128 KiB, is less than an unoptimized build uses between two
/// checkpoints (45 nested subqueries overflowed a 2 MiB thread), so widen it
/// once for the process; only sqlparser uses `recursive`.
fn widen_stack_red_zone() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let (red_zone, segment) = if cfg!(debug_assertions) {
            (1 << 20, 4 << 20)
        } else {
            (256 << 10, 2 << 20)
        };
        recursive::set_minimum_stack_size(red_zone.max(recursive::get_minimum_stack_size()));
        recursive::set_stack_allocation_size(segment.max(recursive::get_stack_allocation_size()));
    });
}

fn parse_text(src: &str, toks: &[Token], prefix: &str, quote: bool) -> Result<Ast, String> {
    widen_stack_red_zone();
    let span = match (toks.first(), toks.last()) {
        (Some(a), Some(b)) => b.end.saturating_sub(a.start),
        _ => 0,
    };
    let mut text = String::with_capacity(prefix.len() + span + span / 4 + 16);
    text.push_str(prefix);
    emit(src, toks, &mut text, quote)?;
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(&text)
        .map_err(|e| e.to_string())?;
    let stmt = parser.parse_statement().map_err(|e| e.to_string())?;
    // `parse_statements` would stop quietly at a stray `END`; insist that the
    // whole statement was read.
    if parser.peek_token().token != SqlToken::EOF {
        return Err(format!(
            "{PARSER_ERROR}: unexpected {} after the statement",
            parser.peek_token().token
        ));
    }
    Ok(stmt)
}

/// Words sqlparser treats as keywords (some only as not-an-alias) that are
/// plain identifiers to PostgreSQL in queries and DML.
const SQLPARSER_ONLY_KEYWORDS: &[&str] = &[
    "anti",
    "asof",
    "cluster",
    "connect",
    "distribute",
    "exclude",
    "final",
    "format",
    "global",
    "match_condition",
    "match_recognize",
    "minus",
    "open",
    "output",
    "partition",
    "pivot",
    "prewhere",
    "qualify",
    "sample",
    "semi",
    "settings",
    "sort",
    "start",
    "struct",
    "top",
    "unpivot",
    "view",
];

/// Whether the retry may quote this word: listed above, and not in one of the
/// few places where PostgreSQL does use it as a keyword.
fn quotable(src: &str, toks: &[Token], idx: usize) -> bool {
    let Some(t) = toks.get(idx).filter(|t| t.kind == Kind::Word) else {
        return false;
    };
    let raw = t.text(src);
    if !SQLPARSER_ONLY_KEYWORDS
        .iter()
        .any(|k| raw.eq_ignore_ascii_case(k))
    {
        return false;
    }
    let next_is = |kw: &str| word_is(toks.get(idx + 1), src, kw);
    !((raw.eq_ignore_ascii_case("format") && next_is("json"))
        || (raw.eq_ignore_ascii_case("partition") && next_is("by")))
}

fn word_is(t: Option<&Token>, src: &str, kw: &str) -> bool {
    t.is_some_and(|t| t.is_word(src, kw))
}

/// What to emit for one token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Keep,
    Drop,
    Replace(&'static str),
}

/// Decide the rewrites (see the module docs), looking ahead where needed.
/// Each one only removes or replaces syntax that cannot name a relation or
/// call a function, or swaps one operator for another.
fn plan(src: &str, toks: &[Token]) -> Vec<Action> {
    let mut act = vec![Action::Keep; toks.len()];
    let w = |i: usize, kw: &str| word_is(toks.get(i), src, kw);
    let mut prev: Option<usize> = None;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        match t.kind {
            Kind::Word => {
                let lower = t.text(src).to_ascii_lowercase();
                match lower.as_str() {
                    // `FROM ONLY t`, `UPDATE ONLY t`, `FROM ONLY (t)`.
                    "only"
                        if !prev.is_some_and(|p| w(p, "row") || w(p, "rows") || w(p, "read")) =>
                    {
                        act[i] = Action::Drop;
                        if toks.get(i + 1).is_some_and(|n| n.is_punct(src, "(")) {
                            if let Some(close) = simple_name_in_parens(src, toks, i + 1) {
                                act[i + 1] = Action::Drop;
                                act[close] = Action::Drop;
                            }
                        }
                    }
                    "table" if starts_query(src, prev.map(|p| &toks[p])) => {
                        act[i] = Action::Replace("SELECT * FROM");
                    }
                    // Locking clauses: `FOR NO KEY UPDATE` / `FOR KEY SHARE`
                    // lose the qualifier, `OF a, b` lists are dropped.
                    "for"
                        if w(i + 1, "update")
                            || w(i + 1, "share")
                            || w(i + 1, "no")
                            || w(i + 1, "key") =>
                    {
                        let mut j = i + 1;
                        if w(j, "no") && w(j + 1, "key") && w(j + 2, "update") {
                            act[j] = Action::Drop;
                            act[j + 1] = Action::Drop;
                            j += 2;
                        } else if w(j, "key") && w(j + 1, "share") {
                            act[j] = Action::Drop;
                            j += 1;
                        }
                        if w(j + 1, "of") {
                            let mut k = j + 1;
                            act[k] = Action::Drop;
                            k += 1;
                            while let Some(n) = toks.get(k) {
                                let name_part = matches!(n.kind, Kind::Word | Kind::Ident { .. })
                                    && !["nowait", "skip", "for"]
                                        .iter()
                                        .any(|kw| n.is_word(src, kw));
                                if name_part || n.is_punct(src, ".") || n.is_punct(src, ",") {
                                    act[k] = Action::Drop;
                                    k += 1;
                                } else {
                                    break;
                                }
                            }
                        }
                    }
                    "symmetric" | "asymmetric" if prev.is_some_and(|p| w(p, "between")) => {
                        act[i] = Action::Drop;
                    }
                    // Window frame exclusion.
                    "exclude"
                        if (w(i + 1, "current") && w(i + 2, "row"))
                            || w(i + 1, "group")
                            || w(i + 1, "ties")
                            || (w(i + 1, "no") && w(i + 2, "others")) =>
                    {
                        let n = if w(i + 1, "group") || w(i + 1, "ties") {
                            2
                        } else {
                            3
                        };
                        for a in act.iter_mut().skip(i).take(n) {
                            *a = Action::Drop;
                        }
                    }
                    "overriding"
                        if (w(i + 1, "system") || w(i + 1, "user")) && w(i + 2, "value") =>
                    {
                        for a in act.iter_mut().skip(i).take(3) {
                            *a = Action::Drop;
                        }
                    }
                    // `ON CONFLICT (a) WHERE pred DO ...`: the predicate only
                    // picks the arbiter index; it is never evaluated.
                    "conflict" if prev.is_some_and(|p| w(p, "on")) => {
                        if let Some(range) = arbiter_predicate(src, toks, i) {
                            for a in &mut act[range] {
                                *a = Action::Drop;
                            }
                        }
                    }
                    // PostgreSQL 17 `x AT LOCAL` is `timezone(<TimeZone>, x)`.
                    "at" if w(i + 1, "local") => {
                        act[i] = Action::Replace("AT TIME ZONE 'UTC'");
                        act[i + 1] = Action::Drop;
                    }
                    _ => {}
                }
            }
            // sqlparser's `op ANY (...)` accepts only a few operators.
            Kind::Op if w(i + 1, "any") || w(i + 1, "all") || w(i + 1, "some") => {
                act[i] = Action::Replace("=");
            }
            // Which operator it is never changes what a statement reads or
            // calls, but sqlparser knows only some of PostgreSQL's (and none
            // of the extensions': PostGIS, pg_trgm, ltree, ...). `+` parses in
            // both infix and prefix position.
            Kind::Op if !CORE_OPS.contains(&t.text(src)) => act[i] = Action::Replace("+"),
            _ => {}
        }
        if act[i] != Action::Drop {
            prev = Some(i);
        }
        i += 1;
    }
    act
}

/// In `ON CONFLICT (cols) WHERE pred DO`, the tokens of `WHERE pred`.
fn arbiter_predicate(src: &str, toks: &[Token], conflict: usize) -> Option<Range<usize>> {
    if !toks.get(conflict + 1)?.is_punct(src, "(") {
        return None;
    }
    let start = matching_paren(src, toks, conflict + 1)? + 1;
    if !word_is(toks.get(start), src, "where") {
        return None;
    }
    let mut depth = 0i64;
    let mut k = start;
    while k < toks.len() && !(depth == 0 && toks[k].is_word(src, "do")) {
        if toks[k].is_punct(src, "(") {
            depth += 1;
        } else if toks[k].is_punct(src, ")") {
            depth -= 1;
        }
        k += 1;
    }
    Some(start..k)
}

/// For `( name [. name]* )` starting at `open`, the index of the `)`.
fn simple_name_in_parens(src: &str, toks: &[Token], open: usize) -> Option<usize> {
    let mut k = open + 1;
    loop {
        let t = toks.get(k)?;
        if !matches!(t.kind, Kind::Word | Kind::Ident { .. }) {
            return None;
        }
        k += 1;
        if !toks.get(k)?.is_punct(src, ".") {
            break;
        }
        k += 1;
    }
    toks.get(k)?.is_punct(src, ")").then_some(k)
}

fn emit(src: &str, toks: &[Token], out: &mut String, quote: bool) -> Result<(), String> {
    let actions = plan(src, toks);
    for (i, (t, action)) in toks.iter().zip(actions).enumerate() {
        let raw = t.text(src);
        if action == Action::Drop {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        if let Action::Replace(with) = action {
            out.push_str(with);
            continue;
        }
        match t.kind {
            Kind::Word if quote && quotable(src, toks, i) => {
                push_ident(out, &fold_ident(raw, false))
            }
            Kind::Word if raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                out.push_str(raw)
            }
            Kind::Word => push_ident(out, &fold_ident(raw, false)),
            Kind::Ident { .. } => push_ident(out, &fold_ident(&lexer::ident_value(src, t), true)),
            Kind::Str { .. } => {
                out.push('\'');
                out.push_str(&lexer::string_value(src, t).replace('\'', "''"));
                out.push('\'');
            }
            Kind::BitStr => out.push_str("'0'"),
            Kind::Number => push_number(out, raw),
            Kind::Param | Kind::Op | Kind::Punct => out.push_str(raw),
            Kind::Error => return Err(format!("invalid token {raw:?}")),
        }
    }
    Ok(())
}

/// Operators passed through: `*` (also the wildcard), `=` (also assignment),
/// `=>` (named arguments), and the common arithmetic and comparison ones.
const CORE_OPS: &[&str] = &[
    "*", "=", "=>", "<", ">", "<=", ">=", "<>", "!=", "+", "-", "/", "%", "^", "||",
];

/// Whether a `TABLE` keyword after `prev` starts a query (`TABLE t`) rather
/// than naming an object kind.
fn starts_query(src: &str, prev: Option<&Token>) -> bool {
    match prev {
        None => true,
        Some(p) if p.is_punct(src, "(") => true,
        Some(p) => ["union", "intersect", "except", "all", "distinct"]
            .iter()
            .any(|k| p.is_word(src, k)),
    }
}

fn push_ident(out: &mut String, name: &str) {
    out.push('"');
    out.push_str(&name.replace('"', "\"\""));
    out.push('"');
}

fn push_number(out: &mut String, raw: &str) {
    let digits: String = raw.chars().filter(|&c| c != '_').collect();
    let lower = digits.to_ascii_lowercase();
    let radix = if lower.starts_with("0x") {
        16
    } else if lower.starts_with("0o") {
        8
    } else if lower.starts_with("0b") {
        2
    } else {
        out.push_str(&digits);
        return;
    };
    match u128::from_str_radix(lower.get(2..).unwrap_or(""), radix) {
        Ok(v) => out.push_str(&v.to_string()),
        Err(_) => out.push('1'),
    }
}

/// An upper bound on how deep the left-deep operator chains of a statement
/// can nest: for each parenthesized frame, its chain operators plus the
/// deepest frame inside it.
fn chain_depth(src: &str, toks: &[Token]) -> u64 {
    // (operators in this frame, deepest child frame)
    let mut stack: Vec<(u64, u64)> = vec![(0, 0)];
    let mut prev: Option<&Token> = None;
    for t in toks {
        let raw = t.text(src);
        let op = match t.kind {
            Kind::Op if raw == "+" || raw == "-" => prev.is_some_and(|p| {
                matches!(
                    p.kind,
                    Kind::Word
                        | Kind::Ident { .. }
                        | Kind::Str { .. }
                        | Kind::BitStr
                        | Kind::Number
                        | Kind::Param
                ) || p.is_punct(src, ")")
                    || p.is_punct(src, "]")
            }),
            Kind::Op => true,
            Kind::Punct => matches!(raw, "::" | "["),
            Kind::Word => CHAIN_WORDS.iter().any(|k| raw.eq_ignore_ascii_case(k)),
            _ => false,
        };
        if op {
            if let Some(top) = stack.last_mut() {
                top.0 += 1;
            }
        }
        if t.kind == Kind::Punct {
            match raw {
                "(" | "[" => stack.push((0, 0)),
                ")" | "]" if stack.len() > 1 => close_frame(&mut stack),
                _ => {}
            }
        }
        prev = Some(t);
    }
    while stack.len() > 1 {
        close_frame(&mut stack);
    }
    stack.last().map_or(0, |&(ops, child)| ops + child)
}

fn close_frame(stack: &mut Vec<(u64, u64)>) {
    if let Some((ops, child)) = stack.pop() {
        if let Some(parent) = stack.last_mut() {
            parent.1 = parent.1.max(ops + child + 1);
        }
    }
}

/// Keywords that chain expressions or queries the way binary operators do.
const CHAIN_WORDS: &[&str] = &[
    "and",
    "at",
    "between",
    "collate",
    "escape",
    "except",
    "ilike",
    "in",
    "intersect",
    "is",
    "isnull",
    "like",
    "not",
    "notnull",
    "operator",
    "or",
    "overlaps",
    "similar",
    "union",
];
