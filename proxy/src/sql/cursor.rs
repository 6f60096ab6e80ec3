//! What the statement readers (`classify`, `utility`, `set`) share, below all
//! of them: what a reader returns ([`Classified`] and its constructors), the
//! cursor they read tokens with ([`Cur`], [`matching_paren`]), the grammar
//! piece two statements share ([`tx_modes`]), and [`creates_temp`].
//!
//! It imports nothing above the tokenizer and the name helpers, so a reader
//! that embeds another statement (EXPLAIN, PREPARE, DECLARE, COPY) gets the
//! classifier as a [`Body`] argument instead of importing it.

use super::analysis::{Isolation, StatementKind};
use super::collect::fold_ident;
use super::keywords;
use super::lexer::{self, Kind, Token};
use super::normalize::literal_contains;

/// The classification of one statement.
pub(crate) struct Classified {
    pub kind: StatementKind,
    pub error: Option<String>,
    /// Whether the result holds for every text with the same fingerprint, i.e.
    /// does not depend on literal values (SET values and EXPLAIN options do).
    pub shareable: bool,
}

/// Unknown, saying why: the safe reading of anything not fully understood.
pub(crate) fn unknown(why: impl Into<String>) -> Classified {
    Classified {
        kind: StatementKind::Unknown,
        error: Some(why.into()),
        shareable: false,
    }
}

/// Understood, and the same for every text of this shape.
pub(crate) fn ok(kind: StatementKind) -> Classified {
    Classified {
        kind,
        error: None,
        shareable: true,
    }
}

/// `kind` if the cursor used every token, else Unknown.
pub(crate) fn done(cur: &Cur<'_>, kind: StatementKind, what: &str) -> Classified {
    if cur.at_end() {
        ok(kind)
    } else {
        unknown(format!("unexpected tokens after {what}"))
    }
}

/// The classifier of an embedded statement, with the embedding depth: the
/// readers of EXPLAIN, PREPARE, DECLARE and COPY (query) take it from
/// `classify`, which passes itself.
pub(crate) type Body = fn(&str, &[Token], u8) -> Classified;

/// A cursor over one statement's tokens.
pub(crate) struct Cur<'a> {
    pub src: &'a str,
    pub toks: &'a [Token],
    pub pos: usize,
}

impl<'a> Cur<'a> {
    pub fn new(src: &'a str, toks: &'a [Token]) -> Cur<'a> {
        Cur { src, toks, pos: 0 }
    }

    pub fn peek(&self) -> Option<&'a Token> {
        self.toks.get(self.pos)
    }

    pub fn peek_at(&self, k: usize) -> Option<&'a Token> {
        self.toks.get(self.pos + k)
    }

    pub fn bump(&mut self) -> Option<&'a Token> {
        let t = self.toks.get(self.pos);
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    pub fn rest(&self) -> &'a [Token] {
        self.toks.get(self.pos..).unwrap_or(&[])
    }

    pub fn is(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.is_word(self.src, kw))
    }

    pub fn is_at(&self, k: usize, kw: &str) -> bool {
        self.peek_at(k).is_some_and(|t| t.is_word(self.src, kw))
    }

    pub fn eat(&mut self, kw: &str) -> bool {
        if self.is(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consume the words `kws` if all of them come next.
    pub fn eat_seq(&mut self, kws: &[&str]) -> bool {
        if kws.iter().enumerate().all(|(k, kw)| self.is_at(k, kw)) {
            self.pos += kws.len();
            true
        } else {
            false
        }
    }

    pub fn eat_punct(&mut self, p: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_punct(self.src, p)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn eat_op(&mut self, op: &str) -> bool {
        if self
            .peek()
            .is_some_and(|t| t.kind == Kind::Op && t.text(self.src) == op)
        {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// A name: an unquoted word (folded) or a quoted identifier.
    pub fn name(&mut self) -> Option<String> {
        let t = self.peek()?;
        let n = match t.kind {
            Kind::Word => fold_ident(t.text(self.src), false),
            Kind::Ident { .. } => fold_ident(&lexer::ident_value(self.src, t), true),
            _ => return None,
        };
        self.pos += 1;
        Some(n)
    }

    /// A name that may start a qualified name: an unquoted reserved word is
    /// not one.
    fn col_id(&mut self) -> Option<String> {
        let t = self.peek()?;
        if t.kind == Kind::Word && keywords::is_reserved(t.text(self.src)) {
            return None;
        }
        self.name()
    }

    /// `[catalog.][schema.]name` as folded parts (catalog dropped).
    pub fn qualified(&mut self) -> Option<(Option<String>, String)> {
        let mut parts = vec![self.col_id()?];
        while self.eat_punct(".") {
            parts.push(self.name()?);
        }
        let n = parts.len();
        match n {
            1 => parts.pop().map(|p| (None, p)),
            2 | 3 => {
                let name = parts.pop()?;
                let schema = parts.pop()?;
                Some((Some(schema), name))
            }
            _ => None,
        }
    }

    /// Skip a balanced `( ... )` if one comes next; `None` if unbalanced.
    pub fn skip_parens(&mut self) -> Option<bool> {
        if !self.peek().is_some_and(|t| t.is_punct(self.src, "(")) {
            return Some(false);
        }
        let end = matching_paren(self.src, self.toks, self.pos)?;
        self.pos = end + 1;
        Some(true)
    }

    /// The value of a string-literal token, if one comes next.
    pub fn string(&mut self) -> Option<String> {
        let t = self.peek()?;
        if !matches!(t.kind, Kind::Str { .. }) {
            return None;
        }
        self.pos += 1;
        Some(lexer::string_value(self.src, t).into_owned())
    }
}

/// Index of the `)` matching the `(` at `open`.
pub(crate) fn matching_paren(src: &str, toks: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.is_punct(src, "(") {
            depth += 1;
        } else if t.is_punct(src, ")") {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// `ISOLATION LEVEL ...`, `READ WRITE|ONLY`, `[NOT] DEFERRABLE`, separated by
/// commas or spaces. Returns (isolation, read_only) or `None` on anything else.
pub(crate) fn tx_modes(cur: &mut Cur<'_>) -> Option<(Option<Isolation>, bool)> {
    let mut iso = None;
    let mut read_only = false;
    let mut first = true;
    while !cur.at_end() {
        if !first {
            cur.eat_punct(",");
        }
        first = false;
        if cur.eat_seq(&["isolation", "level"]) {
            iso = Some(if cur.eat("serializable") {
                Isolation::Serializable
            } else if cur.eat_seq(&["repeatable", "read"]) {
                Isolation::RepeatableRead
            } else if cur.eat_seq(&["read", "committed"]) {
                Isolation::ReadCommitted
            } else if cur.eat_seq(&["read", "uncommitted"]) {
                Isolation::ReadUncommitted
            } else {
                return None;
            });
        } else if cur.eat_seq(&["read", "only"]) {
            read_only = true;
        } else if cur.eat_seq(&["read", "write"]) {
            read_only = false;
        } else if cur.eat("deferrable") || cur.eat_seq(&["not", "deferrable"]) {
        } else {
            return None;
        }
    }
    Some((iso, read_only))
}

/// Whether a statement may leave temporary objects behind or point name
/// resolution at `pg_temp`. Deliberately generous: a false positive only
/// makes the proxy treat the session as private.
pub(crate) fn creates_temp(src: &str, toks: &[Token], kind: &StatementKind) -> bool {
    let ddl_or_unknown = matches!(kind, StatementKind::Ddl | StatementKind::Unknown);
    let unknown = matches!(kind, StatementKind::Unknown);
    toks.iter().any(|t| match t.kind {
        Kind::Word => {
            let w = t.text(src);
            lexer::contains_ci(w, "pg_temp")
                || (ddl_or_unknown
                    && (w.eq_ignore_ascii_case("temp") || w.eq_ignore_ascii_case("temporary")))
                || (unknown && lexer::contains_ci(w, "temp"))
        }
        Kind::Ident { .. } => {
            let v = lexer::ident_value(src, t);
            lexer::contains_ci(&v, "pg_temp") || (unknown && lexer::contains_ci(&v, "temp"))
        }
        Kind::Str { .. } => {
            literal_contains(src, t, "pg_temp") || (unknown && literal_contains(src, t, "temp"))
        }
        _ => false,
    })
}
