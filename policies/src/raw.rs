//! Typed access to the spanned TOML tree, collecting errors instead of stopping.
//!
//! The file is not deserialized with `#[derive(Deserialize)]`: serde stops at
//! the first problem, and the operator would fix a file one error per reload.
//! Instead toml's span-preserving tree (`toml::de::DeTable`) is walked by hand;
//! each accessor checks one value, records a precise error when it is wrong,
//! and returns `None` so the walk carries on with the rest of the file.

use std::path::Path;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::{Collector, KeyPath, PolicyErrors};
use crate::units;

pub(crate) type Node<'i> = Spanned<DeValue<'i>>;

pub(crate) struct Reader<'s> {
    errors: Collector<'s>,
}

impl<'s> Reader<'s> {
    pub(crate) fn new(src: &'s str, path: Option<&Path>) -> Self {
        Reader {
            errors: Collector::new(src, path.map(Path::to_path_buf)),
        }
    }

    pub(crate) fn error(&mut self, offset: usize, key: &KeyPath, message: impl Into<String>) {
        self.errors.push(offset, key, message);
    }

    pub(crate) fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// The 1-based line of a byte offset, to point from one error at another place.
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.errors.line(offset)
    }

    pub(crate) fn into_errors(self) -> PolicyErrors {
        self.errors.into_errors()
    }

    fn wrong_type(&mut self, node: &Node<'_>, key: &KeyPath, expected: &str) {
        let found = describe(node.get_ref());
        self.error(
            node.span().start,
            key,
            format!("expected {expected}, found {found}"),
        );
    }

    /// The value as a table, or an error naming what was found.
    pub(crate) fn table<'a, 'i>(
        &mut self,
        node: &'a Node<'i>,
        key: &KeyPath,
    ) -> Option<&'a DeTable<'i>> {
        match node.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(node, key, "a table");
                None
            }
        }
    }

    /// Reports every key of `table` not in `allowed`, pointing at the key
    /// itself. `hint` may add a sentence for a likely mistake (it gets the key
    /// and its value).
    pub(crate) fn unknown_keys(
        &mut self,
        table: &DeTable<'_>,
        key: &KeyPath,
        allowed: &[&str],
        hint: impl Fn(&str, &DeValue<'_>) -> Option<String>,
    ) {
        for (k, v) in table.iter() {
            let name: &str = k.get_ref();
            if allowed.contains(&name) {
                continue;
            }
            let mut msg = match nearest(name, allowed) {
                Some(near) => format!("unknown key {name:?} (did you mean {near:?}?)"),
                None => format!("unknown key {name:?}"),
            };
            msg.push_str("; expected one of: ");
            msg.push_str(&allowed.join(", "));
            if let Some(h) = hint(name, v.get_ref()) {
                msg.push_str("; ");
                msg.push_str(&h);
            }
            self.error(k.span().start, &key.child(name), msg);
        }
    }

    pub(crate) fn boolean(&mut self, node: &Node<'_>, key: &KeyPath) -> Option<bool> {
        match node.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(node, key, "true or false");
                None
            }
        }
    }

    /// A duration string such as "5s"; a bare integer is refused with the fix
    /// spelled out, since "ttl = 5" is the most likely slip.
    pub(crate) fn duration(&mut self, node: &Node<'_>, key: &KeyPath) -> Option<Duration> {
        match node.get_ref() {
            DeValue::String(s) => match units::parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.error(node.span().start, key, e.to_string());
                    None
                }
            },
            DeValue::Integer(i) => {
                let n = i.as_str().trim_start_matches('+');
                self.error(
                    node.span().start,
                    key,
                    format!("expected a duration string such as \"5s\", found integer {n}; durations need a unit: write \"{n}s\" for {n} seconds"),
                );
                None
            }
            _ => {
                self.wrong_type(node, key, "a duration string such as \"5s\"");
                None
            }
        }
    }

    /// A size string such as "64KiB", or an integer number of bytes.
    pub(crate) fn size(&mut self, node: &Node<'_>, key: &KeyPath) -> Option<u64> {
        let parsed = match node.get_ref() {
            DeValue::String(s) => units::parse_size(s),
            DeValue::Integer(i) => {
                let text = i.as_str();
                if text.starts_with('-') {
                    Err(units::UnitError::SizeNegative(text.to_owned()))
                } else {
                    u64::from_str_radix(text.trim_start_matches('+'), i.radix())
                        .map_err(|_| units::UnitError::SizeOverflow(i.to_string()))
                }
            }
            _ => {
                self.wrong_type(node, key, "a size such as \"64KiB\" or a number of bytes");
                return None;
            }
        };
        match parsed {
            Ok(n) => Some(n),
            Err(e) => {
                self.error(node.span().start, key, e.to_string());
                None
            }
        }
    }

    /// An array of strings; each element comes back with its offset, so a bad
    /// element can be pointed at on its own.
    pub(crate) fn string_array<'a>(
        &mut self,
        node: &'a Node<'_>,
        key: &KeyPath,
        expected: &str,
    ) -> Option<Vec<(usize, &'a str)>> {
        let DeValue::Array(items) = node.get_ref() else {
            self.wrong_type(node, key, expected);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push((item.span().start, &**s)),
                _ => {
                    self.wrong_type(item, key, "a string");
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

/// How a wrong value is named in an error: its type, and the value itself when short.
fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => {
            let shown: String = s.chars().take(40).collect();
            if shown.len() < s.len() {
                format!("string {shown:?}...")
            } else {
                format!("string {shown:?}")
            }
        }
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(f) => format!("float {f}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

/// The allowed key closest to a misspelt one, if it is close enough to be a typo.
fn nearest<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    allowed
        .iter()
        .map(|a| (edit_distance(&name, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4) && *d < a.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["ttl", "cache", "max_entry_size", "trigger_writes"];
        assert_eq!(nearest("tll", &keys), Some("ttl"));
        assert_eq!(nearest("TTL", &keys), Some("ttl"));
        assert_eq!(nearest("max_entry_sise", &keys), Some("max_entry_size"));
        assert_eq!(nearest("trigger_write", &keys), Some("trigger_writes"));
        assert_eq!(nearest("orders", &keys), None);
        assert_eq!(nearest("x", &keys), None);
    }
}
