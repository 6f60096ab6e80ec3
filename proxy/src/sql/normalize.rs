//! Tokenizer-level normalization: the fingerprint, the statement split, and
//! the literal-dependent flags that decide how an analysis may be shared.
//!
//! This runs on every query, hit or miss, so it is one lexer pass plus one
//! pass over the tokens, and never parses.

use std::ops::Range;

use super::lexer::{self, Kind, StrForm, Token};

/// What the tokenizer pass learns about a text.
pub(crate) struct Normalized {
    pub tokens: Vec<Token>,
    /// The query shape: literals as `$n`, unquoted words lower-cased,
    /// canonical spacing, no comments.
    pub fingerprint: String,
    /// Some literal may be read as the current date/time (`'now'`, ...).
    pub time_literal: bool,
    /// Some literal's value contains "temp": `creates_temp` of a DO block or
    /// of `set_config('search_path', 'pg_temp', ..)` depends on literal values,
    /// so such texts must not share an analysis by shape.
    pub literal_mentions_temp: bool,
    /// The category of each literal in order (`s` string, `n` number, `b` bit
    /// string). The fingerprint writes all of them as `$n`, but the grammar
    /// can tell them apart (`PREPARE TRANSACTION 'x'` vs `... 1`), so texts
    /// share an analysis only when these agree too.
    pub literal_kinds: Vec<u8>,
    /// The lexer met something the server rejects outright (unterminated
    /// literal or comment, stray character): the server fails the whole text.
    pub lex_error: bool,
    /// Some statement may carry a secret (see [`carries_secrets`]): its
    /// fingerprint hides more than literals, so two such texts of one
    /// fingerprint may differ in more than literal values and must not
    /// share an analysis.
    pub secret: bool,
}

/// What a fingerprint shows instead of something it must not show: the
/// rest of an unterminated literal, identifier or comment, and in a
/// statement that may carry a secret, quoted identifiers and the word
/// after PASSWORD.
const HIDDEN: &str = "$?";

pub(crate) fn normalize(text: &str) -> Normalized {
    let tokens = lexer::tokenize(text);
    let mut max_param: u64 = 0;
    for t in &tokens {
        if t.kind == Kind::Param {
            max_param = max_param.max(param_number(t.text(text)).unwrap_or(0));
        }
    }
    let mut fp = String::with_capacity(text.len().min(1 << 16));
    let mut next_literal = max_param;
    let mut time_literal = false;
    let mut literal_mentions_temp = false;
    let mut lex_error = false;
    let mut literal_kinds = Vec::new();
    let hidden = hidden_tokens(text, &tokens);
    let secret = hidden.is_some();
    let mut prev: Option<&Token> = None;
    for (i, t) in tokens.iter().enumerate() {
        let raw = t.text(text);
        if needs_space(text, prev, t) {
            fp.push(' ');
        }
        if hidden.as_ref().is_some_and(|h| h[i]) {
            fp.push_str(HIDDEN);
            prev = Some(t);
            continue;
        }
        match t.kind {
            Kind::Word => fp.extend(raw.chars().map(|c| c.to_ascii_lowercase())),
            Kind::Ident { unicode: false } => fp.push_str(raw),
            Kind::Ident { unicode: true } => {
                push_quoted_ident(&mut fp, &lexer::ident_value(text, t))
            }
            Kind::Str { .. } | Kind::BitStr | Kind::Number => {
                next_literal = next_literal.saturating_add(1);
                literal_kinds.push(match t.kind {
                    Kind::Str { .. } => b's',
                    Kind::Number => b'n',
                    _ => b'b',
                });
                fp.push('$');
                fp.push_str(&next_literal.to_string());
                if matches!(t.kind, Kind::Str { .. }) {
                    time_literal = time_literal || lexer::token_is_time_literal(text, t);
                    literal_mentions_temp =
                        literal_mentions_temp || literal_contains(text, t, "temp");
                }
            }
            Kind::Param => match param_number(raw) {
                Some(n) => {
                    fp.push('$');
                    fp.push_str(&n.to_string());
                }
                None => fp.push_str(raw),
            },
            Kind::Op | Kind::Punct => fp.push_str(raw),
            Kind::Error => {
                lex_error = true;
                // A stray character shows; the rest of an unterminated
                // literal may be a password.
                if raw.chars().nth(1).is_some() {
                    fp.push_str(HIDDEN);
                } else {
                    fp.push_str(raw);
                }
            }
        }
        prev = Some(t);
    }
    Normalized {
        tokens,
        fingerprint: fp,
        time_literal,
        literal_mentions_temp,
        literal_kinds,
        lex_error,
        secret,
    }
}

/// Which tokens the fingerprint hides because their statement may carry a
/// secret (see [`carries_secrets`]); `None` when no statement may. Linear:
/// one pass over the tokens, and one more over each statement.
fn hidden_tokens(src: &str, toks: &[Token]) -> Option<Vec<bool>> {
    let worth_splitting = toks.iter().any(|t| {
        ["password", "create", "alter", "import"]
            .iter()
            .any(|kw| t.is_word(src, kw))
    });
    if !worth_splitting {
        return None;
    }
    let mut hidden = vec![false; toks.len()];
    let mut secret = false;
    for range in split_statements(src, toks) {
        if carries_secrets(src, &toks[range.clone()]) {
            secret = true;
            for i in range {
                hidden[i] = hidden_in_secret(src, toks, i);
            }
        }
    }
    secret.then_some(hidden)
}

/// A statement that may hold a password or connection options, well-formed
/// or not: any mention of PASSWORD; CREATE/ALTER USER, ROLE or GROUP
/// (also USER MAPPING); CREATE/ALTER SERVER and FOREIGN DATA WRAPPER; and
/// IMPORT FOREIGN SCHEMA (their OPTIONS).
pub(crate) fn carries_secrets(src: &str, toks: &[Token]) -> bool {
    if toks.iter().any(|t| t.is_word(src, "password")) {
        return true;
    }
    let mut words = toks.iter().filter(|t| t.kind == Kind::Word);
    let first = words.next();
    let second = words.next();
    let is = |t: Option<&Token>, kw: &str| t.is_some_and(|t| t.is_word(src, kw));
    if is(first, "import") {
        return true;
    }
    (is(first, "create") || is(first, "alter"))
        && ["user", "role", "group", "server", "foreign"]
            .iter()
            .any(|kw| is(second, kw))
}

/// Whether token `i` of a statement that may carry a secret is hidden:
/// literals are placeholders anyway; quoted identifiers (a password written
/// in double quotes by mistake) and whatever follows PASSWORD are hidden too.
fn hidden_in_secret(src: &str, toks: &[Token], i: usize) -> bool {
    let t = &toks[i];
    match t.kind {
        Kind::Ident { .. } => true,
        Kind::Word | Kind::Op => i > 0 && toks[i - 1].is_word(src, "password"),
        _ => false,
    }
}

/// A stable 64-bit id of a fingerprint: the first 8 bytes of its blake3 hash.
pub(crate) fn fingerprint_id(fingerprint: &str) -> u64 {
    let h = blake3::hash(fingerprint.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(b)
}

fn param_number(raw: &str) -> Option<u64> {
    raw.strip_prefix('$')?.parse().ok()
}

pub(crate) fn push_quoted_ident(out: &mut String, name: &str) {
    out.push('"');
    out.push_str(&name.replace('"', "\"\""));
    out.push('"');
}

/// Whether a string literal's value contains `needle` (ASCII
/// case-insensitively), under either reading of backslashes.
pub(crate) fn literal_contains(src: &str, t: &Token, needle: &str) -> bool {
    let raw = t.text(src);
    let simple = match t.kind {
        Kind::Str {
            form: StrForm::Standard | StrForm::Dollar,
            continued: false,
        } => !raw.contains('\\'),
        _ => false,
    };
    if simple {
        return lexer::contains_ci(raw, needle);
    }
    let v = lexer::string_value(src, t);
    lexer::contains_ci(&v, needle) || lexer::contains_ci(&v.replace('\\', ""), needle)
}

/// Canonical spacing. Only cosmetic: `( ) [ ] , ; . ::` are always tokens of
/// their own, so dropping the space next to them cannot merge two different
/// token sequences into one string (`..` and `:` keep their spaces for that
/// reason).
fn needs_space(src: &str, prev: Option<&Token>, t: &Token) -> bool {
    let Some(p) = prev else {
        return false;
    };
    let pt = p.text(src);
    if p.kind == Kind::Punct && matches!(pt, "(" | "[" | "." | "::") {
        return false;
    }
    if t.kind == Kind::Punct {
        match t.text(src) {
            "," | ")" | "]" | ";" | "." | "::" | "[" => return false,
            "(" => {
                // `count(*)` but `in ($1)`.
                return match p.kind {
                    Kind::Word => KEYWORDS_BEFORE_PAREN
                        .iter()
                        .any(|k| pt.eq_ignore_ascii_case(k)),
                    Kind::Ident { .. } => false,
                    _ => true,
                };
            }
            _ => {}
        }
    }
    true
}

/// Keywords after which `(` opens a list or subquery rather than arguments.
const KEYWORDS_BEFORE_PAREN: &[&str] = &[
    "all",
    "and",
    "any",
    "as",
    "by",
    "conflict",
    "copy",
    "do",
    "else",
    "except",
    "exists",
    "explain",
    "filter",
    "from",
    "in",
    "intersect",
    "is",
    "join",
    "lateral",
    "materialized",
    "not",
    "on",
    "or",
    "over",
    "returning",
    "select",
    "set",
    "some",
    "then",
    "union",
    "using",
    "values",
    "when",
    "where",
    "with",
    "within",
];

/// Split a token stream into statements at top-level semicolons, as psql and
/// the server see them. Empty statements are dropped.
///
/// Semicolons inside parentheses do not split (`CREATE RULE ... DO (a; b)`),
/// nor do those inside the `BEGIN ATOMIC ... END` body of a
/// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`, where `CASE ... END` may nest.
/// (psql counts every `BEGIN`; counting only `BEGIN ATOMIC` keeps a function
/// merely named `begin` from swallowing the statements after it.)
pub(crate) fn split_statements(src: &str, toks: &[Token]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut depth: i64 = 0;
    let mut begin_depth: i64 = 0;
    let mut words_seen = 0usize;
    let mut routine = false;
    for (i, t) in toks.iter().enumerate() {
        match t.kind {
            Kind::Punct => match t.text(src) {
                "(" | "[" => depth += 1,
                ")" | "]" => depth = (depth - 1).max(0),
                ";" if depth == 0 && begin_depth == 0 => {
                    if i > start {
                        out.push(start..i);
                    }
                    start = i + 1;
                    words_seen = 0;
                    routine = false;
                    continue;
                }
                _ => {}
            },
            Kind::Word => {
                let w = t.text(src);
                if words_seen < 4 {
                    routine = routine || is_routine_prefix(src, &toks[start..=i]);
                }
                words_seen += 1;
                if routine {
                    let atomic = w.eq_ignore_ascii_case("begin")
                        && toks.get(i + 1).is_some_and(|n| n.is_word(src, "atomic"));
                    if atomic || (begin_depth > 0 && w.eq_ignore_ascii_case("case")) {
                        begin_depth += 1;
                    } else if begin_depth > 0 && w.eq_ignore_ascii_case("end") {
                        begin_depth -= 1;
                    }
                }
            }
            _ => {}
        }
    }
    if toks.len() > start {
        out.push(start..toks.len());
    }
    out
}

fn is_routine_prefix(src: &str, toks: &[Token]) -> bool {
    let words: Vec<&Token> = toks.iter().take(4).collect();
    let w = |i: usize, k: &str| words.get(i).is_some_and(|t| t.is_word(src, k));
    let kind_at = |i: usize| w(i, "function") || w(i, "procedure");
    w(0, "create") && (kind_at(1) || (w(1, "or") && w(2, "replace") && kind_at(3)))
}
