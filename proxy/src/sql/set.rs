//! SET and RESET, read from tokens following PostgreSQL's `gram.y`
//! (`VariableSetStmt`, `VariableResetStmt`).
//!
//! The value is rendered the way the server stores it
//! (`flatten_set_variable_args`), because the proxy keys cached results by the
//! session's settings: two SETs that mean different things must never render
//! the same. That is why list items of name-valued settings are quoted like
//! `quote_ident` (`'a, b'` is one schema, `a, b` two).

use super::analysis::{Isolation, SetCommand, SetValue, StatementKind, TxCommand};
use super::cursor::{tx_modes, unknown, Classified, Cur};
use super::keywords::quote_ident;
use super::lexer::{self, Kind, Token};

/// Settings whose list items are names, flagged `GUC_LIST_QUOTE` in the server.
const LIST_QUOTE: &[&str] = &[
    "local_preload_libraries",
    "search_path",
    "session_preload_libraries",
    "shared_preload_libraries",
    "temp_tablespaces",
    "unix_socket_directories",
];

fn classified(kind: StatementKind) -> Classified {
    // SET values are literals, so a SET's analysis is never shared by shape.
    Classified {
        kind,
        error: None,
        shareable: false,
    }
}

fn finish(cur: &Cur<'_>, kind: StatementKind) -> Classified {
    if cur.at_end() {
        classified(kind)
    } else {
        unknown("unexpected tokens in SET/RESET")
    }
}

fn set(name: &str, value: SetValue, local: bool) -> StatementKind {
    StatementKind::Set(SetCommand::Set {
        name: name.to_owned(),
        value,
        local,
    })
}

/// `NonReservedWord_or_Sconst`: a role or user name.
fn word_or_string(cur: &mut Cur<'_>) -> Option<String> {
    if let Some(s) = cur.string() {
        return Some(s);
    }
    cur.name()
}

pub(crate) fn set_stmt(src: &str, toks: &[Token]) -> Classified {
    let mut cur = Cur::new(src, toks);
    cur.bump();
    if cur.is("session") && (cur.is_at(1, "characteristics") || cur.is_at(1, "authorization")) {
        return set_rest(&mut cur, false);
    }
    let local = if cur.eat("local") {
        true
    } else {
        cur.eat("session");
        false
    };
    set_rest(&mut cur, local)
}

fn set_rest(cur: &mut Cur<'_>, local: bool) -> Classified {
    if cur.eat("transaction") {
        if cur.eat("snapshot") {
            return match cur.string() {
                Some(_) => finish(
                    cur,
                    StatementKind::Transaction(TxCommand::SetTransaction { isolation: None }),
                ),
                None => unknown("SET TRANSACTION SNAPSHOT without an id"),
            };
        }
        return match tx_modes(cur) {
            Some((isolation, _)) => {
                classified(StatementKind::Transaction(TxCommand::SetTransaction {
                    isolation,
                }))
            }
            None => unknown("unrecognized transaction mode"),
        };
    }
    if cur.eat_seq(&["session", "characteristics", "as", "transaction"]) {
        return match tx_modes(cur) {
            Some((isolation, _)) => {
                classified(StatementKind::Set(SetCommand::SessionCharacteristics {
                    isolation,
                }))
            }
            None => unknown("unrecognized transaction mode"),
        };
    }
    if cur.eat_seq(&["session", "authorization"]) {
        let user = if cur.eat("default") {
            None
        } else {
            match word_or_string(cur) {
                Some(u) => Some(u),
                None => return unknown("SET SESSION AUTHORIZATION without a user"),
            }
        };
        return finish(
            cur,
            StatementKind::Set(SetCommand::SetSessionAuthorization { user, local }),
        );
    }
    if cur.is("role") && !is_assign(cur, 1) {
        cur.bump();
        return match word_or_string(cur) {
            Some(r) => finish(cur, set_role(Some(r), local)),
            None => unknown("SET ROLE without a role"),
        };
    }
    if cur.eat_seq(&["time", "zone"]) {
        return match zone_value(cur) {
            Some(v) => finish(cur, set("timezone", v, local)),
            None => unknown("unrecognized time zone value"),
        };
    }
    if cur.is("schema") && !is_assign(cur, 1) {
        cur.bump();
        return match cur.string() {
            Some(s) => finish(
                cur,
                set("search_path", SetValue::Value(quote_ident(&s)), local),
            ),
            None => unknown("SET SCHEMA without a string"),
        };
    }
    if cur.is("names") && !is_assign(cur, 1) {
        cur.bump();
        let value = if cur.at_end() || cur.eat("default") {
            SetValue::Default
        } else {
            match word_or_string(cur) {
                Some(v) => SetValue::Value(v),
                None => return unknown("unrecognized SET NAMES value"),
            }
        };
        return finish(cur, set("client_encoding", value, local));
    }
    if cur.is("xml") && cur.is_at(1, "option") {
        cur.pos += 2;
        let v = if cur.eat("document") {
            "document"
        } else if cur.eat("content") {
            "content"
        } else {
            return unknown("unrecognized XML OPTION value");
        };
        return finish(cur, set("xmloption", SetValue::Value(v.to_owned()), local));
    }
    if cur.is("constraints") && !is_assign(cur, 1) {
        // Only moves constraint checks within the transaction.
        return classified(StatementKind::Harmless);
    }
    if cur.is("catalog") && !is_assign(cur, 1) {
        return unknown("SET CATALOG is not supported by the server");
    }
    generic_set(cur, local)
}

/// Whether the token `k` ahead is `TO` or `=`, i.e. this is the generic
/// `name TO value` form even if the name is also a special keyword.
fn is_assign(cur: &Cur<'_>, k: usize) -> bool {
    cur.peek_at(k)
        .is_some_and(|t| t.is_word(cur.src, "to") || (t.kind == Kind::Op && t.text(cur.src) == "="))
}

fn set_role(role: Option<String>, local: bool) -> StatementKind {
    // The server treats the name "none" as SET ROLE NONE.
    let role = role.filter(|r| r != "none");
    StatementKind::Set(SetCommand::SetRole { role, local })
}

/// `var_name` (dotted, any case): GUC names compare case-insensitively.
fn var_name(cur: &mut Cur<'_>) -> Option<String> {
    let mut name = cur.name()?;
    while cur.eat_punct(".") {
        name.push('.');
        name.push_str(&cur.name()?);
    }
    Some(name.to_ascii_lowercase())
}

fn generic_set(cur: &mut Cur<'_>, local: bool) -> Classified {
    let Some(name) = var_name(cur) else {
        return unknown("SET without a setting name");
    };
    if cur.eat_seq(&["from", "current"]) {
        // Sets the value it already has.
        return finish(cur, StatementKind::Harmless);
    }
    if !(cur.eat("to") || cur.eat_op("=")) {
        return unknown("SET without TO or =");
    }
    let value = if cur.eat("default") {
        SetValue::Default
    } else {
        match var_list(cur, LIST_QUOTE.contains(&name.as_str())) {
            Some(v) => SetValue::Value(v),
            None => return unknown("unrecognized SET value"),
        }
    };
    let kind = match (name.as_str(), value) {
        ("role", SetValue::Default) => set_role(None, local),
        ("role", SetValue::Value(v)) => set_role(Some(v), local),
        ("session_authorization", SetValue::Default) => {
            StatementKind::Set(SetCommand::SetSessionAuthorization { user: None, local })
        }
        ("session_authorization", SetValue::Value(v)) => {
            StatementKind::Set(SetCommand::SetSessionAuthorization {
                user: Some(v),
                local,
            })
        }
        ("transaction_isolation", SetValue::Value(v)) => {
            let isolation = match v.to_ascii_lowercase().as_str() {
                "serializable" => Some(Isolation::Serializable),
                "repeatable read" => Some(Isolation::RepeatableRead),
                "read committed" => Some(Isolation::ReadCommitted),
                "read uncommitted" => Some(Isolation::ReadUncommitted),
                _ => return unknown("unrecognized transaction_isolation value"),
            };
            StatementKind::Transaction(TxCommand::SetTransaction { isolation })
        }
        (_, value) => set(&name, value, local),
    };
    finish(cur, kind)
}

/// `var_value [, ...]`: each a string, a word (`on`, `true`, a name), or a
/// signed number.
fn var_list(cur: &mut Cur<'_>, list_quote: bool) -> Option<String> {
    let mut items: Vec<String> = Vec::new();
    loop {
        let item = if let Some(s) = cur.string() {
            s
        } else if let Some(n) = signed_number(cur) {
            // Numbers are never quoted.
            items.push(n);
            if cur.eat_punct(",") {
                continue;
            }
            break;
        } else if cur.is("default") {
            return None;
        } else {
            cur.name()?
        };
        items.push(if list_quote { quote_ident(&item) } else { item });
        if !cur.eat_punct(",") {
            break;
        }
    }
    Some(items.join(", "))
}

/// `NumericOnly`: `[+|-]` number. Integers are normalized to decimal (the
/// server stores them as integers); other numbers keep their spelling.
fn signed_number(cur: &mut Cur<'_>) -> Option<String> {
    let start = cur.pos;
    let neg = if cur.eat_op("-") {
        true
    } else {
        cur.eat_op("+");
        false
    };
    let Some(t) = cur.peek().filter(|t| t.kind == Kind::Number) else {
        cur.pos = start;
        return None;
    };
    cur.bump();
    let raw: String = t.text(cur.src).chars().filter(|&c| c != '_').collect();
    let lower = raw.to_ascii_lowercase();
    let int = match lower.get(..2) {
        Some("0x") => i64::from_str_radix(&lower[2..], 16).ok(),
        Some("0o") => i64::from_str_radix(&lower[2..], 8).ok(),
        Some("0b") => i64::from_str_radix(&lower[2..], 2).ok(),
        _ => lower.parse::<i64>().ok(),
    };
    Some(match int {
        Some(v) if neg => (-(v as i128)).to_string(),
        Some(v) => v.to_string(),
        None if neg => format!("-{raw}"),
        None => raw,
    })
}

/// `zone_value`: a string, a word, a number, `INTERVAL '...' [qualifier]`,
/// `DEFAULT` or `LOCAL` (both mean the default).
fn zone_value(cur: &mut Cur<'_>) -> Option<SetValue> {
    if cur.eat("default") || cur.eat("local") {
        return Some(SetValue::Default);
    }
    if cur.eat("interval") {
        // Rare; render the rest canonically so equal inputs compare equal.
        let mut out = String::from("interval");
        while let Some(t) = cur.bump() {
            out.push(' ');
            match t.kind {
                Kind::Str { .. } => {
                    out.push('\'');
                    out.push_str(&lexer::string_value(cur.src, t).replace('\'', "''"));
                    out.push('\'');
                }
                _ => out.push_str(&t.text(cur.src).to_ascii_lowercase()),
            }
        }
        return Some(SetValue::Value(out));
    }
    if let Some(s) = cur.string() {
        return Some(SetValue::Value(s));
    }
    if let Some(n) = signed_number(cur) {
        return Some(SetValue::Value(n));
    }
    cur.name().map(SetValue::Value)
}

pub(crate) fn reset_stmt(src: &str, toks: &[Token]) -> Classified {
    let mut cur = Cur::new(src, toks);
    cur.bump();
    if cur.eat("all") {
        return finish(&cur, StatementKind::Set(SetCommand::ResetAll));
    }
    if cur.eat_seq(&["time", "zone"]) {
        return finish(
            &cur,
            StatementKind::Set(SetCommand::Reset {
                name: "timezone".into(),
            }),
        );
    }
    if cur.eat_seq(&["transaction", "isolation", "level"]) {
        return finish(
            &cur,
            StatementKind::Set(SetCommand::Reset {
                name: "transaction_isolation".into(),
            }),
        );
    }
    if cur.eat_seq(&["session", "authorization"]) {
        return finish(
            &cur,
            StatementKind::Set(SetCommand::SetSessionAuthorization {
                user: None,
                local: false,
            }),
        );
    }
    let Some(name) = var_name(&mut cur) else {
        return unknown("RESET without a setting name");
    };
    let kind = match name.as_str() {
        "role" => set_role(None, false),
        "session_authorization" => StatementKind::Set(SetCommand::SetSessionAuthorization {
            user: None,
            local: false,
        }),
        _ => StatementKind::Set(SetCommand::Reset { name }),
    };
    finish(&cur, kind)
}
