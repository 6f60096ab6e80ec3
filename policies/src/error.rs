//! Errors that point at a line and column of the policy file.
//!
//! The policy file is edited by hand, often under pressure during an incident,
//! so every problem names where it is (`file:line:column`), which key it is
//! about, and what would be accepted instead. All problems found in one pass
//! are reported together, so a broken file is fixed in one edit, not ten.

use std::fmt;
use std::path::PathBuf;

/// One problem with a policy file.
///
/// Displays as `path:line:column: key: message`; parts that are unknown are
/// left out (no `path` when the text did not come from a file, no position
/// when the file could not be read, no `key` for TOML syntax errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file the text came from, if any.
    pub path: Option<PathBuf>,
    /// 1-based line; 0 when the error is about the file as a whole (it could not be read).
    pub line: usize,
    /// 1-based column, counted in characters (not bytes); 0 together with `line`.
    pub column: usize,
    /// TOML key path such as `tables."public.orders".ttl`; empty for syntax errors.
    pub key: String,
    /// What is wrong, and what would be accepted.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut prefix = false;
        if let Some(path) = &self.path {
            write!(f, "{}", path.display())?;
            prefix = true;
        }
        if self.line > 0 {
            if prefix {
                f.write_str(":")?;
            }
            write!(f, "{}:{}", self.line, self.column)?;
            prefix = true;
        }
        if prefix {
            f.write_str(": ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

/// Every problem found in a policy file, sorted by position. Never empty when
/// returned by this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl PolicyErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, PolicyError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<PolicyError> for PolicyErrors {
    fn from(e: PolicyError) -> Self {
        PolicyErrors(vec![e])
    }
}

impl<'a> IntoIterator for &'a PolicyErrors {
    type Item = &'a PolicyError;
    type IntoIter = std::slice::Iter<'a, PolicyError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// One error per line, so a log line or an admin response shows them all.
impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

/// Turns byte offsets (what toml's spans are) into 1-based line and column.
pub(crate) struct Locator<'s> {
    src: &'s str,
    line_starts: Vec<usize>,
}

impl<'s> Locator<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Locator { src, line_starts }
    }

    /// Line and column (both 1-based) of a byte offset. Offsets past the end or
    /// inside a multi-byte character are clamped rather than trusted.
    pub(crate) fn locate(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.src.len());
        while !self.src.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let before = &self.src[start..offset];
        // A byte-order mark is invisible in every editor; do not count it.
        let before = if start == 0 {
            before.strip_prefix('\u{feff}').unwrap_or(before)
        } else {
            before
        };
        (line, before.chars().count() + 1)
    }
}

/// A TOML key path, displayed the way it would be written in the file.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyPath(Vec<String>);

impl KeyPath {
    pub(crate) fn root() -> Self {
        KeyPath(Vec::new())
    }

    pub(crate) fn child(&self, segment: &str) -> Self {
        let mut v = self.0.clone();
        v.push(segment.to_owned());
        KeyPath(v)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write_key_segment(f, seg)?;
        }
        Ok(())
    }
}

/// Writes one key as TOML would accept it: bare when possible, as a literal
/// string when it holds double quotes (so `'"Sales"."Orders"'` reads the way
/// the operator wrote it), else as a basic string with escapes.
fn write_key_segment(f: &mut fmt::Formatter<'_>, seg: &str) -> fmt::Result {
    let bare = !seg.is_empty()
        && seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        return f.write_str(seg);
    }
    let literal_ok = seg.contains('"') && !seg.contains('\'') && !seg.chars().any(char::is_control);
    if literal_ok {
        return write!(f, "'{seg}'");
    }
    f.write_str("\"")?;
    for c in seg.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c.is_control() => write!(f, "\\u{:04X}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// Gathers errors while the whole file is checked, then hands them back sorted.
pub(crate) struct Collector<'s> {
    path: Option<PathBuf>,
    locator: Locator<'s>,
    errors: Vec<PolicyError>,
}

impl<'s> Collector<'s> {
    pub(crate) fn new(src: &'s str, path: Option<PathBuf>) -> Self {
        Collector {
            path,
            locator: Locator::new(src),
            errors: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, offset: usize, key: &KeyPath, message: impl Into<String>) {
        let (line, column) = self.locator.locate(offset);
        self.errors.push(PolicyError {
            path: self.path.clone(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.errors.len()
    }

    pub(crate) fn line(&self, offset: usize) -> usize {
        self.locator.locate(offset).0
    }

    /// The errors in file order. The TOML tree is walked in key order, not
    /// file order, so sorting here is what makes the report read top to bottom.
    pub(crate) fn into_errors(mut self) -> PolicyErrors {
        self.errors.sort_by_key(|e| (e.line, e.column));
        self.errors.dedup();
        PolicyErrors(self.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_lines_and_columns() {
        let src = "a = 1\n  bé = 2\n";
        let loc = Locator::new(src);
        assert_eq!(loc.locate(0), (1, 1));
        assert_eq!(loc.locate(4), (1, 5));
        assert_eq!(loc.locate(6), (2, 1));
        // 'é' is two bytes but one column.
        let eq = src.find("= 2").unwrap();
        assert_eq!(loc.locate(eq), (2, 6));
        assert_eq!(loc.locate(src.len() + 10), (3, 1));
        // Inside a multi-byte character: clamped back to its start.
        let e = src.find('é').unwrap();
        assert_eq!(loc.locate(e + 1), loc.locate(e));
    }

    #[test]
    fn bom_is_not_a_column() {
        let src = "\u{feff}a = 1";
        assert_eq!(Locator::new(src).locate(src.find('=').unwrap()), (1, 3));
    }

    #[test]
    fn key_paths_display_as_toml() {
        let k = KeyPath::root()
            .child("tables")
            .child("public.orders")
            .child("ttl");
        assert_eq!(k.to_string(), r#"tables."public.orders".ttl"#);
        let k = KeyPath::root().child("tables").child(r#""Sales"."Orders""#);
        assert_eq!(k.to_string(), r#"tables.'"Sales"."Orders"'"#);
        let k = KeyPath::root().child("a\"b'c");
        assert_eq!(k.to_string(), r#""a\"b'c""#);
        assert_eq!(KeyPath::root().child("").to_string(), r#""""#);
    }

    #[test]
    fn display_leaves_out_unknown_parts() {
        let mut e = PolicyError {
            path: Some(PathBuf::from("policy.toml")),
            line: 12,
            column: 7,
            key: r#"tables."public.orders".ttl"#.into(),
            message: "bad".into(),
        };
        assert_eq!(
            e.to_string(),
            r#"policy.toml:12:7: tables."public.orders".ttl: bad"#
        );
        e.path = None;
        assert_eq!(e.to_string(), r#"12:7: tables."public.orders".ttl: bad"#);
        e.line = 0;
        e.column = 0;
        e.key.clear();
        assert_eq!(e.to_string(), "bad");
        e.path = Some(PathBuf::from("p.toml"));
        assert_eq!(e.to_string(), "p.toml: bad");
    }
}
