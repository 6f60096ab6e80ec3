//! A hand-written lexer that follows PostgreSQL's `scan.l`.
//!
//! Everything else in this module trusts its token boundaries: the fingerprint,
//! the statement split, and the text handed to sqlparser (which only ever sees
//! plain `'...'` strings and `"..."` identifiers re-emitted from these tokens).
//! So where PostgreSQL's lexer has a rule (nested comments, string continuation
//! across newlines, `U&` escapes with `UESCAPE`, dollar quotes, operator
//! truncation before `--`/`/*` and trailing `+`/`-`), this one has it too.
//!
//! It assumes `standard_conforming_strings = on` (the default since 9.1): a
//! backslash in a plain `'...'` string is an ordinary character. Sessions that
//! turn it off must not rely on these analyses (see the module docs).
//!
//! It never panics: it works on bytes, and every token boundary falls on an
//! ASCII byte or the end of the text, so slicing the `&str` there is sound; the
//! slicing helpers still go through `str::get` to make that a non-issue.

use std::borrow::Cow;

/// What a token is. Literal kinds carry what their decoders need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Unquoted identifier or keyword (PostgreSQL does not distinguish them
    /// lexically; neither does the fingerprint).
    Word,
    /// `"quoted"` or `U&"quoted"` identifier.
    Ident {
        unicode: bool,
    },
    /// A character-string literal, possibly continued over newlines.
    Str {
        form: StrForm,
        continued: bool,
    },
    /// `B'0101'` or `X'1F'`.
    BitStr,
    Number,
    /// `$1`.
    Param,
    /// An operator: one or more of `~!@#^&|`?+-*/%<>=`.
    Op,
    /// `( ) [ ] , ; . .. : :: :=`.
    Punct,
    /// Something PostgreSQL's lexer rejects: an unterminated literal, comment
    /// or identifier, a stray character. The server fails the whole text.
    Error,
}

/// The spelling of a string literal, which decides its escape rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StrForm {
    /// `'...'` and `N'...'`: only `''` is special.
    Standard,
    /// `E'...'`: backslash escapes.
    Escape,
    /// `U&'...'` with an optional `UESCAPE 'c'` (included in the token).
    Unicode,
    /// `$tag$...$tag$`: nothing is special.
    Dollar,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

impl Token {
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        src.get(self.start..self.end).unwrap_or("")
    }

    /// True for an unquoted word equal (ASCII case-insensitively) to `kw`.
    pub fn is_word(&self, src: &str, kw: &str) -> bool {
        self.kind == Kind::Word && self.text(src).eq_ignore_ascii_case(kw)
    }

    pub fn is_punct(&self, src: &str, p: &str) -> bool {
        self.kind == Kind::Punct && self.text(src) == p
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

fn is_dollar_tag_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

fn is_op_char(b: u8) -> bool {
    matches!(
        b,
        b'~' | b'!'
            | b'@'
            | b'#'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
            | b'+'
            | b'-'
            | b'*'
            | b'/'
            | b'%'
            | b'<'
            | b'>'
            | b'='
    )
}

/// Split `src` into tokens, dropping whitespace and comments.
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let mut lx = Lexer {
        s: src.as_bytes(),
        src,
        toks: Vec::new(),
    };
    lx.run();
    lx.toks
}

struct Lexer<'a> {
    s: &'a [u8],
    src: &'a str,
    toks: Vec<Token>,
}

impl Lexer<'_> {
    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    fn push(&mut self, kind: Kind, start: usize, end: usize) {
        self.toks.push(Token { kind, start, end });
    }

    fn run(&mut self) {
        let n = self.s.len();
        let mut i = 0;
        while i < n {
            let b = self.s[i];
            if is_space(b) {
                i += 1;
                continue;
            }
            if b == b'-' && self.at(i + 1) == b'-' {
                i = self.skip_line_comment(i);
                continue;
            }
            if b == b'/' && self.at(i + 1) == b'*' {
                match self.skip_block_comment(i) {
                    Some(end) => i = end,
                    None => {
                        self.push(Kind::Error, i, n);
                        return;
                    }
                }
                continue;
            }
            let next = self.at(i + 1);
            i = match b {
                b'\'' => self.string(i, i, StrForm::Standard),
                b'e' | b'E' if next == b'\'' => self.string(i, i + 1, StrForm::Escape),
                b'n' | b'N' if next == b'\'' => self.string(i, i + 1, StrForm::Standard),
                b'b' | b'B' | b'x' | b'X' if next == b'\'' => self.bit_string(i),
                b'u' | b'U' if next == b'&' && self.at(i + 2) == b'\'' => {
                    self.string(i, i + 2, StrForm::Unicode)
                }
                b'u' | b'U' if next == b'&' && self.at(i + 2) == b'"' => {
                    self.quoted_ident(i, i + 2, true)
                }
                b'"' => self.quoted_ident(i, i, false),
                b'$' => self.dollar(i),
                b'0'..=b'9' => self.number(i),
                b'.' if next.is_ascii_digit() => self.number(i),
                b'.' if next == b'.' => self.single(Kind::Punct, i, 2),
                b':' if next == b':' || next == b'=' => self.single(Kind::Punct, i, 2),
                b'.' | b':' | b',' | b'(' | b')' | b'[' | b']' | b';' => {
                    self.single(Kind::Punct, i, 1)
                }
                _ if is_ident_start(b) => {
                    let mut j = i + 1;
                    while j < n && is_ident_cont(self.s[j]) {
                        j += 1;
                    }
                    self.push(Kind::Word, i, j);
                    j
                }
                _ if is_op_char(b) => self.operator(i),
                _ => self.single(Kind::Error, i, 1),
            };
        }
    }

    fn single(&mut self, kind: Kind, i: usize, len: usize) -> usize {
        self.push(kind, i, i + len);
        i + len
    }

    /// `--` to the end of the line (the newline itself is whitespace).
    fn skip_line_comment(&self, i: usize) -> usize {
        let mut j = i + 2;
        while j < self.s.len() && self.s[j] != b'\n' && self.s[j] != b'\r' {
            j += 1;
        }
        j
    }

    /// Nested `/* ... */`; `None` when unterminated.
    fn skip_block_comment(&self, i: usize) -> Option<usize> {
        let mut depth = 0usize;
        let mut j = i;
        while j < self.s.len() {
            if self.s[j] == b'/' && self.at(j + 1) == b'*' {
                depth += 1;
                j += 2;
            } else if self.s[j] == b'*' && self.at(j + 1) == b'/' {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    return Some(j);
                }
            } else {
                j += 1;
            }
        }
        None
    }

    /// One quoted piece starting at the quote `q`; returns the index after the
    /// closing quote, or `None` when unterminated.
    fn quoted_piece(&self, q: usize, backslash: bool) -> Option<usize> {
        let mut j = q + 1;
        while j < self.s.len() {
            match self.s[j] {
                b'\\' if backslash => j += 2,
                b'\'' if self.at(j + 1) == b'\'' => j += 2,
                b'\'' => return Some(j + 1),
                _ => j += 1,
            }
        }
        None
    }

    /// PostgreSQL glues `'a'` and `'b'` into one literal when only whitespace
    /// containing a newline (and `--` comments) separates them. Returns the
    /// position of the next piece's quote if there is one.
    fn continuation(&self, mut j: usize) -> Option<usize> {
        let mut newline = false;
        while j < self.s.len() {
            match self.s[j] {
                b'\n' | b'\r' => {
                    newline = true;
                    j += 1;
                }
                b' ' | b'\t' | b'\x0b' | b'\x0c' => j += 1,
                b'-' if self.at(j + 1) == b'-' => j = self.skip_line_comment(j),
                b'\'' if newline => return Some(j),
                _ => return None,
            }
        }
        None
    }

    /// A string literal whose token starts at `start` and whose first quote is
    /// at `q`.
    fn string(&mut self, start: usize, q: usize, form: StrForm) -> usize {
        let backslash = form == StrForm::Escape;
        let Some(mut end) = self.quoted_piece(q, backslash) else {
            self.push(Kind::Error, start, self.s.len());
            return self.s.len();
        };
        let mut continued = false;
        while let Some(nq) = self.continuation(end) {
            match self.quoted_piece(nq, backslash) {
                Some(e) => {
                    end = e;
                    continued = true;
                }
                None => {
                    self.push(Kind::Error, start, self.s.len());
                    return self.s.len();
                }
            }
        }
        if form == StrForm::Unicode {
            match self.uescape(end) {
                Ok(Some(e)) => end = e,
                Ok(None) => {}
                Err(()) => {
                    self.push(Kind::Error, start, self.s.len());
                    return self.s.len();
                }
            }
        }
        self.push(Kind::Str { form, continued }, start, end);
        end
    }

    /// After a `U&` literal or identifier: an optional `UESCAPE 'c'`.
    /// `Ok(Some(end))` when present, `Err` when malformed.
    fn uescape(&self, from: usize) -> Result<Option<usize>, ()> {
        let j = self.skip_ws_and_comments(from);
        let word_end = j + 7;
        let is_kw = self
            .s
            .get(j..word_end)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"uescape"))
            && !is_ident_cont(self.at(word_end));
        if !is_kw {
            return Ok(None);
        }
        let q = self.skip_ws_and_comments(word_end);
        if self.at(q) != b'\'' {
            return Err(());
        }
        let end = self.quoted_piece(q, false).ok_or(())?;
        match uescape_char(self.src.get(q..end).unwrap_or("")) {
            Some(_) => Ok(Some(end)),
            None => Err(()),
        }
    }

    fn skip_ws_and_comments(&self, mut j: usize) -> usize {
        loop {
            if j < self.s.len() && is_space(self.s[j]) {
                j += 1;
            } else if self.at(j) == b'-' && self.at(j + 1) == b'-' {
                j = self.skip_line_comment(j);
            } else if self.at(j) == b'/' && self.at(j + 1) == b'*' {
                match self.skip_block_comment(j) {
                    Some(e) => j = e,
                    None => return self.s.len(),
                }
            } else {
                return j;
            }
        }
    }

    fn bit_string(&mut self, start: usize) -> usize {
        let Some(mut end) = self.quoted_piece(start + 1, false) else {
            self.push(Kind::Error, start, self.s.len());
            return self.s.len();
        };
        while let Some(nq) = self.continuation(end) {
            match self.quoted_piece(nq, false) {
                Some(e) => end = e,
                None => {
                    self.push(Kind::Error, start, self.s.len());
                    return self.s.len();
                }
            }
        }
        self.push(Kind::BitStr, start, end);
        end
    }

    fn quoted_ident(&mut self, start: usize, q: usize, unicode: bool) -> usize {
        let mut j = q + 1;
        let n = self.s.len();
        let close = loop {
            if j >= n {
                break None;
            }
            if self.s[j] == b'"' {
                if self.at(j + 1) == b'"' {
                    j += 2;
                    continue;
                }
                break Some(j + 1);
            }
            j += 1;
        };
        let Some(mut end) = close else {
            self.push(Kind::Error, start, n);
            return n;
        };
        // `""` is a zero-length identifier, which PostgreSQL rejects.
        if end == q + 2 {
            self.push(Kind::Error, start, end);
            return end;
        }
        if unicode {
            match self.uescape(end) {
                Ok(Some(e)) => end = e,
                Ok(None) => {}
                Err(()) => {
                    self.push(Kind::Error, start, n);
                    return n;
                }
            }
        }
        self.push(Kind::Ident { unicode }, start, end);
        end
    }

    /// `$1`, `$tag$...$tag$`, or a stray `$`.
    fn dollar(&mut self, i: usize) -> usize {
        let n = self.s.len();
        if self.at(i + 1).is_ascii_digit() {
            let mut j = i + 1;
            while j < n && self.s[j].is_ascii_digit() {
                j += 1;
            }
            self.push(Kind::Param, i, j);
            return j;
        }
        let mut j = i + 1;
        if j < n && is_ident_start(self.s[j]) {
            j += 1;
            while j < n && is_dollar_tag_cont(self.s[j]) {
                j += 1;
            }
        }
        if self.at(j) != b'$' {
            return self.single(Kind::Error, i, 1);
        }
        let delim_end = j + 1;
        let delim = self.src.get(i..delim_end).unwrap_or("$$");
        match self.src.get(delim_end..).and_then(|rest| rest.find(delim)) {
            Some(off) => {
                let end = delim_end + off + delim.len();
                self.push(
                    Kind::Str {
                        form: StrForm::Dollar,
                        continued: false,
                    },
                    i,
                    end,
                );
                end
            }
            None => {
                self.push(Kind::Error, i, n);
                n
            }
        }
    }

    /// Numeric literals as PostgreSQL 16 reads them (`1_000`, `0x1F`, `.5`,
    /// `1.`, `1e10`). Trailing letters become a separate word, as in older
    /// servers (newer ones reject them, which is just as harmless).
    fn number(&mut self, i: usize) -> usize {
        let n = self.s.len();
        let radix_digits = |b: u8, r: u8| match r {
            b'x' => b.is_ascii_hexdigit(),
            b'o' => (b'0'..=b'7').contains(&b),
            _ => b == b'0' || b == b'1',
        };
        if self.s[i] == b'0' {
            let r = self.at(i + 1).to_ascii_lowercase();
            if matches!(r, b'x' | b'o' | b'b') {
                let mut j = i + 2;
                let mut any = false;
                loop {
                    let c = self.at(j);
                    if radix_digits(c, r) {
                        any = true;
                        j += 1;
                    } else if c == b'_' && radix_digits(self.at(j + 1), r) {
                        j += 2;
                        any = true;
                    } else {
                        break;
                    }
                }
                if any {
                    self.push(Kind::Number, i, j);
                    return j;
                }
            }
        }
        // `_` may only separate digits.
        let digits = |from: usize| -> usize {
            let mut j = from;
            while j < n {
                if self.s[j].is_ascii_digit() {
                    j += 1;
                } else if self.s[j] == b'_' && j > from && self.at(j + 1).is_ascii_digit() {
                    j += 2;
                } else {
                    break;
                }
            }
            j
        };
        let mut j = digits(i);
        if self.at(j) == b'.' && self.at(j + 1) != b'.' {
            j = digits(j + 1);
        }
        if matches!(self.at(j), b'e' | b'E') {
            let mut k = j + 1;
            if matches!(self.at(k), b'+' | b'-') {
                k += 1;
            }
            if self.at(k).is_ascii_digit() {
                j = digits(k);
            }
        }
        self.push(Kind::Number, i, j);
        j
    }

    /// PostgreSQL's `{operator}` rule: a run of operator characters, cut
    /// before an embedded comment start, and without trailing `+`/`-` unless
    /// the run holds a character that no SQL-standard operator has (so `=-1`
    /// is `=` and `-`, but `?-` stays one operator).
    fn operator(&mut self, i: usize) -> usize {
        let n = self.s.len();
        let mut j = i;
        while j < n && is_op_char(self.s[j]) {
            j += 1;
        }
        let run = &self.s[i..j];
        let mut len = run.len();
        for k in 1..run.len() {
            let pair = &run[k..(k + 2).min(run.len())];
            if pair == b"/*" || pair == b"--" {
                len = k;
                break;
            }
        }
        if len > 1 && matches!(run[len - 1], b'+' | b'-') {
            let special = run[..len - 1].iter().any(|c| {
                matches!(
                    c,
                    b'~' | b'!' | b'@' | b'#' | b'^' | b'&' | b'|' | b'`' | b'?' | b'%'
                )
            });
            if !special {
                while len > 1 && matches!(run[len - 1], b'+' | b'-') {
                    len -= 1;
                }
            }
        }
        self.push(Kind::Op, i, i + len);
        i + len
    }
}

/// The character of a `UESCAPE 'c'` clause: one character that is not a hex
/// digit, `+`, `'`, `"` or whitespace.
fn uescape_char(quoted: &str) -> Option<char> {
    let inner = quoted.strip_prefix('\'')?.strip_suffix('\'')?;
    let inner = if inner == "''" { "'" } else { inner };
    let mut chars = inner.chars();
    let c = chars.next()?;
    if chars.next().is_some()
        || c.is_ascii_hexdigit()
        || matches!(c, '+' | '\'' | '"')
        || c.is_whitespace()
    {
        return None;
    }
    Some(c)
}

/// The pieces of a (possibly continued) quoted literal, each as the text
/// between its quotes, still escaped.
fn quoted_pieces(tok_text: &str, first_quote: usize, backslash: bool) -> Vec<&str> {
    let s = tok_text.as_bytes();
    let mut pieces = Vec::new();
    let mut j = first_quote;
    while j < s.len() && s[j] == b'\'' {
        let body = j + 1;
        let mut k = body;
        while k < s.len() {
            match s[k] {
                b'\\' if backslash => k += 2,
                b'\'' if s.get(k + 1) == Some(&b'\'') => k += 2,
                b'\'' => break,
                _ => k += 1,
            }
        }
        pieces.push(tok_text.get(body..k.min(s.len())).unwrap_or(""));
        j = k + 1;
        // Skip the whitespace/comments between continued pieces.
        while j < s.len() && s[j] != b'\'' {
            if s[j] == b'-' && s.get(j + 1) == Some(&b'-') {
                while j < s.len() && s[j] != b'\n' && s[j] != b'\r' {
                    j += 1;
                }
            } else if is_space(s[j]) {
                j += 1;
            } else {
                // The start of `UESCAPE`: the literal itself has ended.
                return pieces;
            }
        }
    }
    pieces
}

/// The `UESCAPE` character of a `U&` token, `\` by default. When present,
/// the clause's one-character string closes the token (comments between the
/// literal and `UESCAPE` may hold quotes, so it is found from the end).
fn token_uescape(tok_text: &str, body_end: usize) -> char {
    if body_end >= tok_text.len() {
        return '\\';
    }
    let last = tok_text.len() - 1;
    tok_text
        .get(..last)
        .and_then(|head| head.rfind('\''))
        .and_then(|open| tok_text.get(open..))
        .and_then(uescape_char)
        .unwrap_or('\\')
}

/// The value of a string-literal token, with escapes applied.
pub(crate) fn string_value<'a>(src: &'a str, tok: &Token) -> Cow<'a, str> {
    let t = tok.text(src);
    let Kind::Str { form, continued } = tok.kind else {
        return Cow::Borrowed(t);
    };
    match form {
        StrForm::Dollar => {
            let open = t
                .get(1..)
                .and_then(|r| r.find('$'))
                .map_or(t.len(), |p| p + 2);
            let close = t.len().saturating_sub(open);
            Cow::Borrowed(t.get(open..close.max(open)).unwrap_or(""))
        }
        StrForm::Standard => {
            let q = t.find('\'').unwrap_or(0);
            let pieces = quoted_pieces(t, q, false);
            if !continued && pieces.len() == 1 && !pieces[0].contains("''") {
                return Cow::Borrowed(pieces[0]);
            }
            Cow::Owned(pieces.iter().map(|p| p.replace("''", "'")).collect())
        }
        StrForm::Escape => {
            let q = t.find('\'').unwrap_or(0);
            let mut out = Vec::new();
            for p in quoted_pieces(t, q, true) {
                unescape_e(p, &mut out);
            }
            Cow::Owned(String::from_utf8_lossy(&out).into_owned())
        }
        StrForm::Unicode => {
            let q = t.find('\'').unwrap_or(0);
            let pieces = quoted_pieces(t, q, false);
            let body_end = pieces.last().map_or(t.len(), |p| {
                p.as_ptr() as usize - t.as_ptr() as usize + p.len() + 1
            });
            let esc = token_uescape(t, body_end);
            let joined: String = pieces.iter().map(|p| p.replace("''", "'")).collect();
            Cow::Owned(unescape_unicode(&joined, esc))
        }
    }
}

/// The name a quoted-identifier token denotes.
pub(crate) fn ident_value(src: &str, tok: &Token) -> String {
    let t = tok.text(src);
    let unicode = matches!(tok.kind, Kind::Ident { unicode: true });
    let q = if unicode { 2 } else { 0 };
    let bytes = t.as_bytes();
    let mut k = q + 1;
    while k < bytes.len() {
        if bytes[k] == b'"' {
            if bytes.get(k + 1) == Some(&b'"') {
                k += 2;
                continue;
            }
            break;
        }
        k += 1;
    }
    let body = t.get(q + 1..k).unwrap_or("").replace("\"\"", "\"");
    if unicode {
        unescape_unicode(&body, token_uescape(t, k + 1))
    } else {
        body
    }
}

/// `E'...'` escapes: `\b \f \n \r \t`, octal, `\xHH`, `\uXXXX`, `\UXXXXXXXX`;
/// any other escaped character stands for itself. Octal and hex escapes are
/// bytes, which is why this builds bytes.
fn unescape_e(p: &str, out: &mut Vec<u8>) {
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' && b.get(i + 1) == Some(&b'\'') {
            out.push(b'\'');
            i += 2;
            continue;
        }
        if c != b'\\' || i + 1 >= b.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let e = b[i + 1];
        i += 2;
        match e {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut k = 0;
                while k < 2 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                    v = v * 8 + u32::from(b[i] - b'0');
                    i += 1;
                    k += 1;
                }
                out.push((v & 0xff) as u8);
            }
            b'x' if i < b.len() && b[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut k = 0;
                while k < 2 && i < b.len() && b[i].is_ascii_hexdigit() {
                    v = v * 16 + (b[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    k += 1;
                }
                out.push(v as u8);
            }
            b'u' | b'U' => {
                let len = if e == b'u' { 4 } else { 8 };
                let hex = p
                    .get(i..i + len)
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
                match hex.and_then(|h| u32::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        i += len;
                        let ch = char::from_u32(v).unwrap_or('\u{fffd}');
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    None => out.push(e),
                }
            }
            other => out.push(other),
        }
    }
}

/// `U&` escapes: `<esc>XXXX`, `<esc>+XXXXXX`, `<esc><esc>`; surrogate pairs
/// are combined. Malformed escapes (which the server rejects) become U+FFFD.
fn unescape_unicode(s: &str, esc: char) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices().peekable();
    let mut pending_high: Option<u32> = None;
    while let Some((i, c)) = chars.next() {
        if c != esc {
            out.push(c);
            continue;
        }
        if chars.peek().map(|&(_, n)| n) == Some(esc) {
            chars.next();
            out.push(esc);
            continue;
        }
        let at = i + esc.len_utf8();
        let (len, skip) = if s.get(at..at + 1) == Some("+") {
            (6, 1)
        } else {
            (4, 0)
        };
        let hex = s
            .get(at + skip..at + skip + len)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some(v) = hex.and_then(|h| u32::from_str_radix(h, 16).ok()) else {
            out.push('\u{fffd}');
            continue;
        };
        for _ in 0..len + skip {
            chars.next();
        }
        if (0xD800..0xDC00).contains(&v) {
            pending_high = Some(v);
            continue;
        }
        let v = match pending_high.take() {
            Some(h) if (0xDC00..0xE000).contains(&v) => {
                0x10000 + ((h - 0xD800) << 10) + (v - 0xDC00)
            }
            _ => v,
        };
        out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
    }
    out
}

/// Words that turn into the current date or time when a string holding them
/// is read as a date/time value (`'now'::timestamptz`, `date 'today'`).
const TIME_WORDS: [&str; 4] = ["now", "today", "tomorrow", "yesterday"];

/// Whether a literal's value could be read as "the current time".
///
/// PostgreSQL's date/time input splits on anything that is not a letter or a
/// digit and ignores surrounding whitespace, so `' NOW '`, `'Tomorrow 13:00'`
/// and `'%today%'` all count. The check is conservative: any run of letters
/// equal to one of the words matches, unless the value is too long to be
/// date/time input at all (the server's parse buffer holds fewer than 160
/// non-blank characters).
pub(crate) fn is_time_literal(value: &str) -> bool {
    if value.bytes().filter(|b| !is_space(*b)).count() > 256 {
        return false;
    }
    value
        .split(|c: char| !c.is_ascii_alphabetic())
        .any(|run| TIME_WORDS.iter().any(|w| run.eq_ignore_ascii_case(w)))
}

/// Whether a string-literal token may denote the current time. For plain
/// strings it also considers the backslash-escape reading, so a session with
/// `standard_conforming_strings = off` is covered as far as this check goes.
pub(crate) fn token_is_time_literal(src: &str, tok: &Token) -> bool {
    let Kind::Str { form, continued } = tok.kind else {
        return false;
    };
    let raw = tok.text(src);
    // Cheap exit for the common case: no letters of interest and no escapes.
    let lower_hit = contains_ci(raw, "now")
        || contains_ci(raw, "today")
        || contains_ci(raw, "tomorrow")
        || contains_ci(raw, "yesterday");
    let has_escape = raw.contains('\\') || form == StrForm::Unicode;
    // A continued literal may split a word across its pieces ('no'\n'w').
    if !lower_hit && !has_escape && !continued {
        return false;
    }
    let value = string_value(src, tok);
    if is_time_literal(&value) {
        return true;
    }
    form == StrForm::Standard && value.contains('\\') && is_time_literal(&value.replace('\\', ""))
}

/// ASCII case-insensitive substring test without allocating.
pub(crate) fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}
