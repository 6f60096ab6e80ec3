//! The schema of the policy file: which keys exist where, what each must hold,
//! and how the checked values become a [`Policy`].
//!
//! The whole file is always checked; a policy is built only if nothing was
//! wrong, so a half-valid file can never become live.

use std::collections::btree_map::Entry;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use crate::error::{KeyPath, PolicyError, PolicyErrors};
use crate::fingerprint::canonical_fingerprint;
use crate::model::{
    hash_hex, FunctionEntry, FunctionRule, Policy, QueryRule, TableEntry, TableRuleSpec,
    MAX_MAX_LAG, MAX_TTL,
};
use crate::names::{parse_pattern, QualifiedName, TablePattern};
use crate::raw::{Node, Reader};

const TOP_KEYS: &[&str] = &["cache", "defaults", "tables", "queries", "functions"];
const CACHE_KEYS: &[&str] = &["enabled", "max_memory", "max_lag"];
const DEFAULTS_KEYS: &[&str] = &["cache", "ttl", "max_entry_size"];
const TABLE_KEYS: &[&str] = &["cache", "ttl", "max_entry_size", "trigger_writes"];
const QUERY_KEYS: &[&str] = &["cache", "ttl"];
const FUNCTION_KEYS: &[&str] = &["writes", "cacheable"];

const TABLE_NAMES: &str = "an array of table names such as [\"public.audit_log\"]";

/// Reads a policy file, turning I/O and encoding failures into [`PolicyErrors`].
pub(crate) fn read(path: &Path) -> Result<String, PolicyErrors> {
    let whole_file = |message: String| PolicyError {
        path: Some(path.to_path_buf()),
        line: 0,
        column: 0,
        key: String::new(),
        message,
    };
    let bytes =
        std::fs::read(path).map_err(|e| whole_file(format!("cannot read policy file: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        // Point at the first bad byte: an editor saved it in another encoding.
        let good = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let text = std::str::from_utf8(&bytes[..good]).unwrap_or_default();
        let (line, column) = crate::error::Locator::new(text).locate(good);
        PolicyError {
            line,
            column,
            ..whole_file("policy file is not valid UTF-8; save it as UTF-8".to_owned())
        }
        .into()
    })
}

/// Parses and validates policy text.
pub(crate) fn parse(text: &str, path: Option<&Path>) -> Result<Policy, PolicyErrors> {
    let mut r = Reader::new(text, path);
    let (doc, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // The tree after a syntax error is a guess; checking it would add
        // errors about keys the operator never wrote.
        for e in &syntax_errors {
            let offset = e.span().map_or(0, |s| s.start);
            r.error(offset, &KeyPath::root(), e.message().trim_end());
        }
        return Err(r.into_errors());
    }

    let mut policy = Policy {
        hash_hex: hash_hex(text),
        ..Policy::default()
    };
    let root = KeyPath::root();
    let top = doc.get_ref();
    r.unknown_keys(top, &root, TOP_KEYS, |name, _| {
        let section = if DEFAULTS_KEYS.contains(&name) {
            "defaults"
        } else if CACHE_KEYS.contains(&name) {
            "cache"
        } else {
            return None;
        };
        Some(format!("{name} belongs in the [{section}] section"))
    });
    for (k, v) in top.iter() {
        let key = root.child(k.get_ref());
        match k.get_ref().as_ref() {
            "cache" => cache_section(&mut r, v, &key, &mut policy),
            "defaults" => defaults_section(&mut r, v, &key, &mut policy),
            "tables" => tables_section(&mut r, v, &key, &mut policy),
            "queries" => queries_section(&mut r, v, &key, &mut policy),
            "functions" => functions_section(&mut r, v, &key, &mut policy),
            _ => {}
        }
    }
    if r.error_count() > 0 {
        Err(r.into_errors())
    } else {
        Ok(policy)
    }
}

fn cache_section(r: &mut Reader<'_>, node: &Node<'_>, key: &KeyPath, policy: &mut Policy) {
    let Some(t) = r.table(node, key) else { return };
    r.unknown_keys(t, key, CACHE_KEYS, |_, _| None);
    for (k, v) in t.iter() {
        let key = key.child(k.get_ref());
        match k.get_ref().as_ref() {
            "enabled" => {
                if let Some(b) = r.boolean(v, &key) {
                    policy.enabled = b;
                }
            }
            "max_memory" => {
                if let Some(n) =
                    positive_size(r, v, &key, "to turn caching off, set enabled = false")
                {
                    policy.max_memory = n;
                }
            }
            "max_lag" => {
                if let Some(d) = max_lag(r, v, &key) {
                    policy.max_lag = d;
                }
            }
            _ => {}
        }
    }
}

fn defaults_section(r: &mut Reader<'_>, node: &Node<'_>, key: &KeyPath, policy: &mut Policy) {
    let Some(t) = r.table(node, key) else { return };
    r.unknown_keys(t, key, DEFAULTS_KEYS, |name, _| {
        (name == "trigger_writes").then(|| {
            "trigger_writes is declared per table, in [tables.\"schema.table\"]".to_owned()
        })
    });
    for (k, v) in t.iter() {
        let key = key.child(k.get_ref());
        match k.get_ref().as_ref() {
            "cache" => {
                if let Some(b) = r.boolean(v, &key) {
                    policy.default_cache = b;
                }
            }
            "ttl" => {
                if let Some(d) = ttl(r, v, &key) {
                    policy.default_ttl = d;
                }
            }
            "max_entry_size" => {
                if let Some(n) = positive_size(r, v, &key, "to stop caching, set cache = false") {
                    policy.default_max_entry_size = n;
                }
            }
            _ => {}
        }
    }
}

/// A ttl: a duration, more than zero (an entry that expires at once is a
/// cache that never serves; `cache = false` says that plainly) and at most
/// [`MAX_TTL`].
fn ttl(r: &mut Reader<'_>, node: &Node<'_>, key: &KeyPath) -> Option<Duration> {
    let d = r.duration(node, key)?;
    let written = node.get_ref().as_str().unwrap_or_default();
    if d.is_zero() {
        r.error(
            node.span().start,
            key,
            format!("invalid ttl {written:?}: ttl must be greater than 0; to stop caching, set cache = false"),
        );
        return None;
    }
    if d > MAX_TTL {
        r.error(
            node.span().start,
            key,
            format!("invalid ttl {written:?}: ttl must be at most 87600h (10 years)"),
        );
        return None;
    }
    Some(d)
}

fn max_lag(r: &mut Reader<'_>, node: &Node<'_>, key: &KeyPath) -> Option<Duration> {
    let d = r.duration(node, key)?;
    let written = node.get_ref().as_str().unwrap_or_default();
    if d.is_zero() || d > MAX_MAX_LAG {
        r.error(
            node.span().start,
            key,
            format!("invalid max_lag {written:?}: max_lag must be greater than 0 and at most 1h"),
        );
        return None;
    }
    Some(d)
}

fn positive_size(r: &mut Reader<'_>, node: &Node<'_>, key: &KeyPath, instead: &str) -> Option<u64> {
    let n = r.size(node, key)?;
    if n == 0 {
        r.error(
            node.span().start,
            key,
            format!("must be greater than 0; {instead}"),
        );
        return None;
    }
    Some(n)
}

/// A list of table names (`trigger_writes`, `writes`): each parsed and folded;
/// repeats are dropped, since naming a table twice means the same as once.
fn table_names(r: &mut Reader<'_>, node: &Node<'_>, key: &KeyPath) -> Option<Vec<QualifiedName>> {
    let items = r.string_array(node, key, TABLE_NAMES)?;
    let mut out: Vec<QualifiedName> = Vec::with_capacity(items.len());
    let mut ok = true;
    for (offset, s) in items {
        match QualifiedName::parse(s) {
            Ok(q) if !out.contains(&q) => out.push(q),
            Ok(_) => {}
            Err(e) => {
                r.error(offset, key, e.to_string());
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// A keyed rule as found in the file, kept until duplicates are checked in
/// file order (the tree is sorted by key text, not by position).
struct Found<'a, T> {
    offset: usize,
    written: &'a str,
    target: T,
}

/// Sorts rules into file order and reports each one that folds to the same
/// target as an earlier one, at the later one.
fn without_duplicates<'a, T: Ord + Clone, R>(
    r: &mut Reader<'_>,
    key: &KeyPath,
    mut found: Vec<(Found<'a, T>, R)>,
    why: &str,
) -> Vec<(T, R)> {
    found.sort_by_key(|(f, _)| f.offset);
    let mut seen: std::collections::BTreeMap<T, (usize, &'a str)> = Default::default();
    let mut out = Vec::with_capacity(found.len());
    for (f, rule) in found {
        match seen.entry(f.target.clone()) {
            Entry::Occupied(first) => {
                let (offset, written) = *first.get();
                let line = r.line(offset);
                r.error(
                    f.offset,
                    &key.child(f.written),
                    format!(
                        "duplicate rule: {:?} means the same as {written:?} on line {line} ({why})",
                        f.written
                    ),
                );
            }
            Entry::Vacant(slot) => {
                slot.insert((f.offset, f.written));
                out.push((f.target, rule));
            }
        }
    }
    out
}

fn tables_section(r: &mut Reader<'_>, node: &Node<'_>, key: &KeyPath, policy: &mut Policy) {
    let Some(t) = r.table(node, key) else { return };
    let mut found = Vec::new();
    for (k, v) in t.iter() {
        let written: &str = k.get_ref();
        let rule_key = key.child(written);
        let pattern = match parse_pattern(written) {
            Ok(p) => Some(p),
            Err(e) => {
                r.error(k.span().start, &rule_key, e.to_string());
                None
            }
        };
        let Some(rule) = r.table(v, &rule_key) else {
            continue;
        };
        let before = r.error_count();
        let spec = table_rule(r, rule, &rule_key);
        if let (Some(target), true) = (pattern, r.error_count() == before) {
            found.push((
                Found {
                    offset: k.span().start,
                    written,
                    target: PatternKey(target),
                },
                spec,
            ));
        }
    }
    let why = "table names fold like PostgreSQL identifiers, and an unqualified name means public";
    for (PatternKey(target), spec) in without_duplicates(r, key, found, why) {
        match target {
            TablePattern::Exact(name) => {
                let schema = policy.schemas.entry(name.schema.clone()).or_default();
                schema
                    .tables
                    .insert(name.name.clone(), TableEntry { name, spec });
            }
            TablePattern::Schema(schema) => {
                policy.schemas.entry(schema).or_default().wildcard = Some(spec);
            }
        }
    }
}

/// [`TablePattern`] ordered, for duplicate detection only.
#[derive(Clone, PartialEq, Eq)]
struct PatternKey(TablePattern);

impl PatternKey {
    fn sort_key(&self) -> (&str, Option<&str>) {
        match &self.0 {
            TablePattern::Exact(q) => (&q.schema, Some(&q.name)),
            TablePattern::Schema(s) => (s, None),
        }
    }
}

impl Ord for PatternKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl PartialOrd for PatternKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

fn table_rule(r: &mut Reader<'_>, t: &DeTable<'_>, key: &KeyPath) -> TableRuleSpec {
    r.unknown_keys(t, key, TABLE_KEYS, |_, value| {
        // `[tables.public.orders]` nests a table "orders" in a rule for "public".
        matches!(value, DeValue::Table(_)).then(|| {
            "a table name with a dot must be quoted: [tables.\"public.orders\"]".to_owned()
        })
    });
    let mut spec = TableRuleSpec::default();
    for (k, v) in t.iter() {
        let key = key.child(k.get_ref());
        match k.get_ref().as_ref() {
            "cache" => spec.cache = r.boolean(v, &key),
            "ttl" => spec.ttl = ttl(r, v, &key),
            "max_entry_size" => {
                spec.max_entry_size =
                    positive_size(r, v, &key, "to stop caching, set cache = false")
            }
            "trigger_writes" => spec.trigger_writes = table_names(r, v, &key).map(Arc::from),
            _ => {}
        }
    }
    spec
}

fn queries_section(r: &mut Reader<'_>, node: &Node<'_>, key: &KeyPath, policy: &mut Policy) {
    let Some(t) = r.table(node, key) else { return };
    let mut found = Vec::new();
    for (k, v) in t.iter() {
        let written: &str = k.get_ref();
        let rule_key = key.child(written);
        let canonical = canonical_fingerprint(written).into_owned();
        if canonical.is_empty() {
            r.error(
                k.span().start,
                &rule_key,
                "empty query fingerprint; copy the fingerprint from the admin listing",
            );
        }
        let Some(t) = r.table(v, &rule_key) else {
            continue;
        };
        r.unknown_keys(t, &rule_key, QUERY_KEYS, |_, _| None);
        let before = r.error_count();
        let mut rule = QueryRule::default();
        for (k, v) in t.iter() {
            let key = rule_key.child(k.get_ref());
            match k.get_ref().as_ref() {
                "cache" => rule.cache = r.boolean(v, &key),
                "ttl" => rule.ttl = ttl(r, v, &key),
                _ => {}
            }
        }
        if !canonical.is_empty() && r.error_count() == before {
            found.push((
                Found {
                    offset: k.span().start,
                    written,
                    target: canonical,
                },
                rule,
            ));
        }
    }
    let why = "fingerprints are compared after trimming, collapsing whitespace and lower-casing outside quotes";
    policy
        .queries
        .extend(without_duplicates(r, key, found, why));
}

fn functions_section(r: &mut Reader<'_>, node: &Node<'_>, key: &KeyPath, policy: &mut Policy) {
    let Some(t) = r.table(node, key) else { return };
    let mut found = Vec::new();
    for (k, v) in t.iter() {
        let written: &str = k.get_ref();
        let rule_key = key.child(written);
        let name = match QualifiedName::parse(written) {
            Ok(q) => Some(q),
            Err(e) => {
                r.error(k.span().start, &rule_key, e.to_string());
                None
            }
        };
        let Some(t) = r.table(v, &rule_key) else {
            continue;
        };
        let before = r.error_count();
        r.unknown_keys(t, &rule_key, FUNCTION_KEYS, |_, _| None);
        let mut writes: Option<(usize, Vec<QualifiedName>)> = None;
        let mut cacheable = None;
        for (k, v) in t.iter() {
            let key = rule_key.child(k.get_ref());
            match k.get_ref().as_ref() {
                "writes" => writes = table_names(r, v, &key).map(|w| (v.span().start, w)),
                "cacheable" => cacheable = r.boolean(v, &key),
                _ => {}
            }
        }
        if r.error_count() != before {
            continue;
        }
        let cacheable = cacheable.unwrap_or(false);
        let writes = match writes {
            // Caching a call would skip the writes it makes: never sound.
            Some((offset, w)) if cacheable && !w.is_empty() => {
                r.error(
                    offset,
                    &rule_key.child("writes"),
                    "a function that writes tables cannot be cacheable: a cached result would skip its writes; remove cacheable = true or the writes",
                );
                continue;
            }
            Some((_, w)) => w,
            // cacheable = true alone says the function has no side effects.
            None if cacheable => Vec::new(),
            None => {
                r.error(
                    k.span().start,
                    &rule_key,
                    "declares nothing: list the tables the function writes with writes = [\"schema.table\"] (writes = [] if it writes none), or set cacheable = true",
                );
                continue;
            }
        };
        if let Some(name) = name {
            found.push((
                Found {
                    offset: k.span().start,
                    written,
                    target: name,
                },
                FunctionRule { writes, cacheable },
            ));
        }
    }
    let why =
        "function names fold like PostgreSQL identifiers, and an unqualified name means public";
    for (name, rule) in without_duplicates(r, key, found, why) {
        policy
            .functions
            .entry(name.schema.clone())
            .or_default()
            .insert(name.name.clone(), FunctionEntry { name, rule });
    }
}
