//! Utility statements read straight from tokens: transaction control,
//! EXPLAIN, PREPARE/EXECUTE/DEALLOCATE, CALL, DECLARE, COPY, TRUNCATE,
//! REFRESH MATERIALIZED VIEW, DISCARD.
//!
//! Their grammar is small and fixed, sqlparser supports some of them only
//! partly (no `ABORT`, `PREPARE TRANSACTION`, `REFRESH`, `FOR NO KEY UPDATE`
//! in cursors...), and several embed another statement (EXPLAIN, PREPARE,
//! DECLARE, COPY (query)) that goes back through the classifier: they are
//! handed it as a [`Body`] rather than importing it, so `classify` stays the
//! only module above them. Anything that does not match the grammar exactly
//! is Unknown.

use super::analysis::{
    FuncName, Read, RelName, SetCommand, Statement, StatementKind, TxCommand, Write,
};
use super::collect;
use super::cursor::{
    creates_temp, done, matching_paren, ok, tx_modes, unknown, Body, Classified, Cur,
};
use super::lexer::{self, Kind, Token};
use super::parse;
use crate::bypass::Bypass;

// ---- transactions -------------------------------------------------------

fn and_chain(cur: &mut Cur<'_>) {
    if !cur.eat_seq(&["and", "chain"]) {
        cur.eat_seq(&["and", "no", "chain"]);
    }
}

/// BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, ABORT, SAVEPOINT, RELEASE,
/// COMMIT/ROLLBACK PREPARED. `first` is the leading keyword, lower-cased.
pub(crate) fn transaction(src: &str, toks: &[Token], first: &str) -> Classified {
    let mut cur = Cur::new(src, toks);
    cur.bump();
    let tx = |c: TxCommand| StatementKind::Transaction(c);
    match first {
        "begin" | "start" => {
            if first == "start" && !cur.eat("transaction") {
                return unknown("START without TRANSACTION");
            }
            if first == "begin" && !cur.eat("work") {
                cur.eat("transaction");
            }
            match tx_modes(&mut cur) {
                Some((isolation, read_only)) => ok(tx(TxCommand::Begin {
                    isolation,
                    read_only,
                })),
                None => unknown("unrecognized transaction mode"),
            }
        }
        "commit" | "end" => {
            if first == "commit" && cur.eat("prepared") {
                return match cur.string() {
                    Some(_) => done(&cur, tx(TxCommand::CommitPrepared), "COMMIT PREPARED"),
                    None => unknown("COMMIT PREPARED without a transaction id"),
                };
            }
            if !cur.eat("work") {
                cur.eat("transaction");
            }
            and_chain(&mut cur);
            done(&cur, tx(TxCommand::Commit), "COMMIT")
        }
        "rollback" | "abort" => {
            if first == "rollback" && cur.eat("prepared") {
                return match cur.string() {
                    Some(_) => done(&cur, tx(TxCommand::RollbackPrepared), "ROLLBACK PREPARED"),
                    None => unknown("ROLLBACK PREPARED without a transaction id"),
                };
            }
            if !cur.eat("work") {
                cur.eat("transaction");
            }
            if first == "rollback" && cur.eat("to") {
                cur.eat("savepoint");
                return match cur.name() {
                    Some(_) => done(&cur, tx(TxCommand::RollbackToSavepoint), "ROLLBACK TO"),
                    None => unknown("ROLLBACK TO without a savepoint name"),
                };
            }
            and_chain(&mut cur);
            done(&cur, tx(TxCommand::Rollback), "ROLLBACK")
        }
        "savepoint" => match cur.name() {
            Some(_) => done(&cur, tx(TxCommand::Savepoint), "SAVEPOINT"),
            None => unknown("SAVEPOINT without a name"),
        },
        "release" => {
            cur.eat("savepoint");
            match cur.name() {
                Some(_) => done(&cur, tx(TxCommand::Release), "RELEASE"),
                None => unknown("RELEASE without a savepoint name"),
            }
        }
        _ => unknown("unrecognized transaction statement"),
    }
}

// ---- statements that embed another -------------------------------------

/// `EXPLAIN [ANALYZE] [VERBOSE] stmt` or `EXPLAIN (option [value], ...) stmt`.
/// Without ANALYZE nothing runs; with it the inner statement runs, so it is
/// classified as that statement (a read becomes uncacheable).
pub(crate) fn explain(src: &str, toks: &[Token], depth: u8, classify: Body) -> Classified {
    let mut cur = Cur::new(src, toks);
    cur.bump();
    let mut analyze = false;
    if cur.eat_punct("(") {
        loop {
            let Some(opt) = cur.name() else {
                return unknown("malformed EXPLAIN option list");
            };
            let start = cur.pos;
            while let Some(t) = cur.peek() {
                if t.is_punct(src, ",") || t.is_punct(src, ")") {
                    break;
                }
                cur.bump();
            }
            // The server lets the last ANALYZE option win; any true one is
            // the safe reading.
            if opt.eq_ignore_ascii_case("analyze") || opt.eq_ignore_ascii_case("analyse") {
                analyze = analyze || explain_bool(src, &toks[start..cur.pos]);
            }
            if cur.eat_punct(",") {
                continue;
            }
            if cur.eat_punct(")") {
                break;
            }
            return unknown("malformed EXPLAIN option list");
        }
    } else {
        loop {
            if cur.eat("analyze") || cur.eat("analyse") {
                analyze = true;
            } else if !cur.eat("verbose") {
                break;
            }
        }
    }
    if cur.at_end() {
        return unknown("EXPLAIN without a statement");
    }
    // The kind depends on an option's literal value (`ANALYZE 'off'`), so an
    // EXPLAIN never shares its analysis by shape.
    if !analyze {
        return Classified {
            kind: StatementKind::Harmless,
            error: None,
            shareable: false,
        };
    }
    let mut inner = classify(src, cur.rest(), depth + 1);
    inner.shareable = false;
    if let StatementKind::Read(r) = &mut inner.kind {
        r.uncacheable = Some(Bypass::Explain);
    }
    inner
}

/// The server's `defGetBoolean`: no value, or anything but `false`/`off`/`0`,
/// is true (values it rejects count as true too: the safe side).
fn explain_bool(src: &str, value: &[Token]) -> bool {
    let [t] = value else {
        return true;
    };
    let v = match t.kind {
        Kind::Str { .. } => lexer::string_value(src, t).into_owned(),
        _ => t.text(src).to_owned(),
    };
    !["false", "off", "0"]
        .iter()
        .any(|f| v.eq_ignore_ascii_case(f))
}

/// `PREPARE name [(types)] AS stmt`, or `PREPARE TRANSACTION 'gid'`.
pub(crate) fn prepare(src: &str, toks: &[Token], depth: u8, classify: Body) -> Classified {
    let mut cur = Cur::new(src, toks);
    cur.bump();
    if cur.is("transaction")
        && cur
            .peek_at(1)
            .is_some_and(|t| matches!(t.kind, Kind::Str { .. }))
    {
        cur.pos += 2;
        return done(
            &cur,
            StatementKind::Transaction(TxCommand::PrepareTransaction),
            "PREPARE TRANSACTION",
        );
    }
    let Some(name) = cur.name() else {
        return unknown("PREPARE without a name");
    };
    if cur.skip_parens().is_none() {
        return unknown("unbalanced parentheses in PREPARE");
    }
    if !cur.eat("as") || cur.at_end() {
        return unknown("PREPARE without AS statement");
    }
    let inner = classify(src, cur.rest(), depth + 1);
    let creates_temp = creates_temp(src, cur.rest(), &inner.kind);
    Classified {
        kind: StatementKind::Prepare {
            name,
            inner: Box::new(Statement {
                kind: inner.kind,
                creates_temp,
            }),
        },
        error: inner.error,
        shareable: inner.shareable,
    }
}

/// `EXECUTE name [(args)]`.
pub(crate) fn execute(src: &str, toks: &[Token]) -> Classified {
    let mut cur = Cur::new(src, toks);
    cur.bump();
    let Some(name) = cur.name() else {
        return unknown("EXECUTE without a name");
    };
    if cur.skip_parens().is_none() {
        return unknown("unbalanced parentheses in EXECUTE");
    }
    done(&cur, StatementKind::Execute { name }, "EXECUTE")
}

/// `DEALLOCATE [PREPARE] {name | ALL}`.
pub(crate) fn deallocate(src: &str, toks: &[Token]) -> Classified {
    let mut cur = Cur::new(src, toks);
    cur.bump();
    cur.eat("prepare");
    if cur.eat("all") {
        return done(
            &cur,
            StatementKind::Deallocate { name: None },
            "DEALLOCATE ALL",
        );
    }
    match cur.name() {
        Some(n) => done(
            &cur,
            StatementKind::Deallocate { name: Some(n) },
            "DEALLOCATE",
        ),
        None => unknown("DEALLOCATE without a name"),
    }
}

/// `CALL name(args)`.
pub(crate) fn call(src: &str, toks: &[Token]) -> Classified {
    let mut cur = Cur::new(src, toks);
    cur.bump();
    let Some((schema, name)) = cur.qualified() else {
        return unknown("CALL without a procedure name");
    };
    match cur.skip_parens() {
        Some(true) => done(
            &cur,
            StatementKind::Call {
                procedure: FuncName { schema, name },
            },
            "CALL",
        ),
        _ => unknown("CALL without an argument list"),
    }
}

/// `DECLARE name [BINARY] [ASENSITIVE|INSENSITIVE] [[NO] SCROLL] CURSOR
/// [{WITH|WITHOUT} HOLD] FOR query`: a read whose rows are fetched later.
pub(crate) fn declare(src: &str, toks: &[Token], depth: u8, classify: Body) -> Classified {
    let mut cur = Cur::new(src, toks);
    cur.bump();
    if cur.name().is_none() {
        return unknown("DECLARE without a name");
    }
    while !cur.eat("cursor") {
        let option = ["binary", "asensitive", "insensitive", "no", "scroll"]
            .iter()
            .any(|k| cur.eat(k));
        if !option {
            return unknown("malformed DECLARE");
        }
    }
    if !cur.eat_seq(&["with", "hold"]) {
        cur.eat_seq(&["without", "hold"]);
    }
    if !cur.eat("for") || cur.at_end() {
        return unknown("DECLARE without FOR query");
    }
    let mut inner = classify(src, cur.rest(), depth + 1);
    match &mut inner.kind {
        StatementKind::Read(r) => {
            r.uncacheable = Some(Bypass::Cursor);
            inner
        }
        StatementKind::Unknown => inner,
        _ => unknown("DECLARE of something other than a query"),
    }
}

// ---- writes read from tokens -------------------------------------------

fn rel((schema, name): (Option<String>, String)) -> RelName {
    RelName { schema, name }
}

/// `COPY table [(cols)] FROM ... [WHERE cond]` is a write of the table;
/// `COPY table|(query) TO ...` a read that is never cached; `PROGRAM` runs a
/// shell command on the server, which could do anything.
pub(crate) fn copy(src: &str, toks: &[Token], depth: u8, classify: Body) -> Classified {
    let mut cur = Cur::new(src, toks);
    cur.bump();
    cur.eat("binary");
    if cur.peek().is_some_and(|t| t.is_punct(src, "(")) {
        let Some(close) = matching_paren(src, toks, cur.pos) else {
            return unknown("unbalanced parentheses in COPY");
        };
        let inner_toks = &toks[cur.pos + 1..close];
        cur.pos = close + 1;
        if !cur.eat("to") {
            return unknown("COPY (query) without TO");
        }
        if cur.is("program") {
            return unknown("COPY ... PROGRAM runs a server-side command");
        }
        let mut inner = classify(src, inner_toks, depth + 1);
        return match &mut inner.kind {
            StatementKind::Read(r) => {
                r.uncacheable = Some(Bypass::Copy);
                inner
            }
            StatementKind::Write(_) | StatementKind::Unknown => inner,
            _ => unknown("COPY of something other than a query"),
        };
    }
    let Some(table) = cur.qualified() else {
        return unknown("COPY without a table name");
    };
    if cur.skip_parens().is_none() {
        return unknown("unbalanced parentheses in COPY");
    }
    let from = if cur.eat("from") {
        true
    } else if cur.eat("to") {
        false
    } else {
        return unknown("COPY without FROM or TO");
    };
    if cur.is("program") {
        return unknown("COPY ... PROGRAM runs a server-side command");
    }
    if !from {
        return ok(StatementKind::Read(Read {
            relations: vec![rel(table)],
            uncacheable: Some(Bypass::Copy),
            ..Read::default()
        }));
    }
    // Options hold no expressions; a WHERE condition may call functions.
    let mut reads = Read::default();
    let mut depth_parens = 0usize;
    for (i, t) in cur.rest().iter().enumerate() {
        if t.is_punct(src, "(") {
            depth_parens += 1;
        } else if t.is_punct(src, ")") {
            depth_parens = depth_parens.saturating_sub(1);
        } else if depth_parens == 0 && t.is_word(src, "where") {
            let cond = &cur.rest()[i + 1..];
            let parsed = parse::parse_one(src, cond, "SELECT 1 WHERE ")
                .and_then(|ast| collect::collect(&ast));
            match parsed {
                Ok(c) => reads = c.read(),
                Err(e) => return unknown(e),
            }
            break;
        }
    }
    ok(StatementKind::Write(Write {
        targets: vec![rel(table)],
        reads,
        cascade: false,
    }))
}

/// `TRUNCATE [TABLE] [ONLY] name [*] [, ...] [RESTART|CONTINUE IDENTITY]
/// [CASCADE|RESTRICT]`.
pub(crate) fn truncate(src: &str, toks: &[Token]) -> Classified {
    let mut cur = Cur::new(src, toks);
    cur.bump();
    cur.eat("table");
    let mut targets = Vec::new();
    loop {
        cur.eat("only");
        let Some(t) = cur.qualified() else {
            return unknown("TRUNCATE without a table name");
        };
        let t = rel(t);
        if !targets.contains(&t) {
            targets.push(t);
        }
        cur.eat_op("*");
        if !cur.eat_punct(",") {
            break;
        }
    }
    if !cur.eat_seq(&["restart", "identity"]) {
        cur.eat_seq(&["continue", "identity"]);
    }
    let cascade = cur.eat("cascade");
    if !cascade {
        cur.eat("restrict");
    }
    done(
        &cur,
        StatementKind::Write(Write {
            targets,
            reads: Read::default(),
            cascade,
        }),
        "TRUNCATE",
    )
}

/// `REFRESH MATERIALIZED VIEW [CONCURRENTLY] name [WITH [NO] DATA]`.
pub(crate) fn refresh(src: &str, toks: &[Token]) -> Classified {
    let mut cur = Cur::new(src, toks);
    cur.bump();
    if !cur.eat_seq(&["materialized", "view"]) {
        return unknown("unrecognized REFRESH");
    }
    cur.eat("concurrently");
    let Some(view) = cur.qualified() else {
        return unknown("REFRESH without a view name");
    };
    if !cur.eat_seq(&["with", "data"]) {
        cur.eat_seq(&["with", "no", "data"]);
    }
    done(
        &cur,
        StatementKind::Write(Write {
            targets: vec![rel(view)],
            reads: Read::default(),
            cascade: false,
        }),
        "REFRESH MATERIALIZED VIEW",
    )
}

/// `DISCARD ALL` resets the session; the other forms change nothing the
/// proxy tracks.
pub(crate) fn discard(src: &str, toks: &[Token]) -> Classified {
    let mut cur = Cur::new(src, toks);
    cur.bump();
    if cur.eat("all") {
        return done(
            &cur,
            StatementKind::Set(SetCommand::DiscardAll),
            "DISCARD ALL",
        );
    }
    if ["plans", "sequences", "temp", "temporary"]
        .iter()
        .any(|k| cur.eat(k))
    {
        return done(&cur, StatementKind::Harmless, "DISCARD");
    }
    unknown("unrecognized DISCARD")
}
