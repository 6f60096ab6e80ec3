//! Statement kinds: dispatch on the leading keyword, then either read the
//! statement from tokens (utility statements, SET) or parse it with sqlparser
//! (queries and DML) and classify the AST.
//!
//! Dispatching on our own tokens first means a statement is only ever parsed
//! by sqlparser when its kind is one sqlparser's PostgreSQL support covers
//! well, and DDL is recognized as DDL even when sqlparser cannot parse it.

use crate::bypass::Bypass;
use sqlparser::ast::Statement as Ast;

use super::analysis::{Read, StatementKind, Write};
use super::collect;
use super::cursor::{unknown, Classified};
use super::lexer::{Kind, Token};
use super::parse;
use super::set;
use super::utility;

/// How deep statements may embed statements (EXPLAIN ANALYZE, PREPARE,
/// DECLARE, COPY (query)); the server allows one level.
const MAX_EMBEDDING: u8 = 3;

/// Classify the statement made of `toks` (no top-level semicolon).
pub(crate) fn classify(src: &str, toks: &[Token], depth: u8) -> Classified {
    if depth > MAX_EMBEDDING {
        return unknown("statements nested too deeply");
    }
    let Some(first) = toks.first() else {
        return unknown("empty statement");
    };
    if first.is_punct(src, "(") {
        return sql(src, toks);
    }
    if first.kind != Kind::Word {
        return unknown("unrecognized statement");
    }
    let kw = first.text(src).to_ascii_lowercase();
    match kw.as_str() {
        "select" | "values" | "table" | "with" | "insert" | "update" | "delete" | "merge" => {
            sql(src, toks)
        }
        "explain" => utility::explain(src, toks, depth, classify),
        "prepare" => utility::prepare(src, toks, depth, classify),
        "execute" => utility::execute(src, toks),
        "deallocate" => utility::deallocate(src, toks),
        "call" => utility::call(src, toks),
        "declare" => utility::declare(src, toks, depth, classify),
        "copy" => utility::copy(src, toks, depth, classify),
        "truncate" => utility::truncate(src, toks),
        "refresh" => utility::refresh(src, toks),
        "discard" => utility::discard(src, toks),
        "set" => set::set_stmt(src, toks),
        "reset" => set::reset_stmt(src, toks),
        "begin" | "start" | "commit" | "end" | "rollback" | "abort" | "savepoint" | "release" => {
            utility::transaction(src, toks, &kw)
        }
        "show" | "fetch" | "move" | "close" | "listen" | "unlisten" | "notify" | "lock"
        | "vacuum" | "analyze" | "analyse" | "checkpoint" | "load" | "cluster" | "reindex" => {
            Classified {
                kind: StatementKind::Harmless,
                error: None,
                shareable: true,
            }
        }
        "create" | "alter" | "drop" | "grant" | "revoke" | "comment" | "security" | "import"
        | "reassign" => Classified {
            kind: StatementKind::Ddl,
            error: None,
            shareable: true,
        },
        "do" => unknown("DO blocks are not analyzed"),
        _ => unknown(format!("unrecognized statement {kw}")),
    }
}

/// Queries and DML, through sqlparser.
fn sql(src: &str, toks: &[Token]) -> Classified {
    let result = parse::parse_one(src, toks, "").and_then(|ast| {
        let kind = classify_ast(&ast);
        // Dropped here, inside the depth bound `parse_one` enforced.
        drop(ast);
        kind
    });
    match result {
        Ok(kind) => Classified {
            kind,
            error: None,
            shareable: true,
        },
        Err(e) => unknown(e),
    }
}

fn classify_ast(ast: &Ast) -> Result<StatementKind, String> {
    let c = collect::collect(ast)?;
    match ast {
        Ast::Query(_) if c.select_into => Ok(StatementKind::Ddl),
        Ast::Query(_) if !c.has_dml => Ok(StatementKind::Read(c.read())),
        Ast::Query(_) | Ast::Insert(_) | Ast::Update(_) | Ast::Delete(_) | Ast::Merge(_) => {
            if c.select_into {
                return Err("SELECT INTO inside a data-modifying statement".into());
            }
            Ok(StatementKind::Write(Write {
                targets: c.targets.items.clone(),
                reads: c.read(),
                cascade: false,
            }))
        }
        _ => Err("unexpected statement kind".into()),
    }
}

/// Mark every read in `kind` uncacheable for a time literal, unless it already
/// has a reason.
pub(crate) fn mark_time_literal(kind: &mut StatementKind) {
    fn mark(r: &mut Read) {
        if r.uncacheable.is_none() {
            r.uncacheable = Some(Bypass::TimeLiteral);
        }
    }
    match kind {
        StatementKind::Read(r) => mark(r),
        StatementKind::Write(w) => mark(&mut w.reads),
        StatementKind::Prepare { inner, .. } => mark_time_literal(&mut inner.kind),
        _ => {}
    }
}
