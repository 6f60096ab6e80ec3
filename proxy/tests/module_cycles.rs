//! No two modules of `proxy/src` or `policies/src` depend on each other,
//! directly or through a longer loop.
//!
//! The graph is drawn from the crates' own source files: an edge goes from a
//! file to the module a path names whenever the file writes a path starting
//! with `crate::`, `super::`, `self::` or one of its own child modules (in a
//! `use` or inline, macros included). A path into an inline module (`mod x {`)
//! counts as a path to the file holding it. A `mod x;` declaration is not an
//! edge. Comments and string literals are skipped, so a doc comment naming a
//! path draws nothing.
//!
//! Circles make a module impossible to read, test or move on its own, so the
//! test names every circle it finds and the path that closes it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module: its path from the crate root (`["session", "protocol"]`).
type ModPath = Vec<String>;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

/// The tokens of `src` that matter for paths, each with its line; comments,
/// strings, characters and lifetimes are dropped.
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some(end) = raw_string_end(&c, i) {
            line += c[i..end].iter().filter(|&&x| x == '\n').count();
            i = end;
        } else if ch == '"' || (ch == 'b' && at(i + 1) == '"') {
            i += if ch == 'b' { 2 } else { 1 };
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                if at(i) == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
        } else if ch == '\'' || (ch == 'b' && at(i + 1) == '\'') {
            i += if ch == 'b' { 2 } else { 1 };
            if at(i) == '\\' {
                // An escaped character: up to the closing quote.
                i += 1;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 1) == '\'' {
                i += 2;
            } else {
                // A lifetime or label: its name is no path.
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
            }
        } else if ch.is_alphabetic() || ch == '_' {
            if ch == 'r' && at(i + 1) == '#' {
                i += 2;
            }
            let start = i;
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if ch.is_ascii_digit() {
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
        } else if ch == ':' && at(i + 1) == ':' {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// Where a raw string (`r"..."`, `br#"..."#`) starting at `i` ends.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if c.get(j) == Some(&'b') {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = c[j..].iter().take_while(|&&x| x == '#').count();
    j += hashes;
    if c.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < c.len() {
        if c[j] == '"'
            && c[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&x| x == '#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(c.len())
}

/// One source file of a crate.
struct File {
    rel: PathBuf,
    module: ModPath,
    toks: Vec<(Tok, usize)>,
}

fn module_of(rel: &Path) -> ModPath {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

fn rust_files(dir: &Path, root: &Path, out: &mut Vec<File>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, root, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let rel = path
                .strip_prefix(root)
                .expect("under the root")
                .to_path_buf();
            // main.rs is a crate of its own that reaches the library by name.
            if rel == Path::new("main.rs") {
                continue;
            }
            let text = fs::read_to_string(&path).expect("a readable source file");
            out.push(File {
                module: module_of(&rel),
                rel,
                toks: tokens(&text),
            });
        }
    }
}

/// The inline modules (`mod x { ... }`) of a file, with the token range
/// each covers.
fn inline_modules(f: &File) -> Vec<(ModPath, usize, usize)> {
    let t = &f.toks;
    let mut found = Vec::new();
    // (module, brace depth at which it closes)
    let mut stack: Vec<(ModPath, usize, usize)> = Vec::new();
    let mut depth = 0usize;
    for i in 0..t.len() {
        match &t[i].0 {
            Tok::Ident(m) if m == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Punct('{'), _))) =
                    (t.get(i + 1), t.get(i + 2))
                {
                    let mut module = stack
                        .last()
                        .map_or_else(|| f.module.clone(), |s| s.0.clone());
                    module.push(name.clone());
                    stack.push((module, depth + 1, i + 2));
                }
            }
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                if stack.last().is_some_and(|s| s.1 == depth) {
                    let (module, _, start) = stack.pop().expect("just checked");
                    found.push((module, start, i));
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    found
}

/// Every path the tokens write, expanded from `use` trees, with its line.
fn paths(t: &[(Tok, usize)]) -> Vec<(usize, Vec<String>, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if t[i].0 == Tok::Ident("use".into()) {
            let mut j = i + 1;
            use_tree(t, &mut j, Vec::new(), i, &mut out);
            i = j;
            continue;
        }
        let starts = matches!(t[i].0, Tok::Ident(_))
            && t.get(i + 1).is_some_and(|n| n.0 == Tok::PathSep)
            && !(i > 0 && t[i - 1].0 == Tok::PathSep);
        if starts {
            let mut segs = Vec::new();
            let mut j = i;
            while let Some((Tok::Ident(s), _)) = t.get(j) {
                segs.push(s.clone());
                if t.get(j + 1).is_some_and(|n| n.0 == Tok::PathSep) {
                    j += 2;
                } else {
                    break;
                }
            }
            out.push((i, segs, t[i].1));
            i = j + 1;
            continue;
        }
        i += 1;
    }
    out
}

/// One `use` tree from `*j`; each leaf path joins `out`.
fn use_tree(
    t: &[(Tok, usize)],
    j: &mut usize,
    prefix: Vec<String>,
    at: usize,
    out: &mut Vec<(usize, Vec<String>, usize)>,
) {
    let mut path = prefix;
    loop {
        match t.get(*j).map(|x| &x.0) {
            Some(Tok::Ident(s)) if s == "self" && !path.is_empty() => *j += 1,
            Some(Tok::Ident(s)) if s == "as" => {
                *j += 2;
            }
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                *j += 1;
            }
            Some(Tok::PathSep) => *j += 1,
            Some(Tok::Punct('*')) => *j += 1,
            Some(Tok::Punct('{')) => {
                *j += 1;
                loop {
                    match t.get(*j).map(|x| &x.0) {
                        Some(Tok::Punct('}')) => {
                            *j += 1;
                            break;
                        }
                        Some(Tok::Punct(',')) => *j += 1,
                        None => return,
                        _ => use_tree(t, j, path.clone(), at, out),
                    }
                }
                return;
            }
            _ => {
                if !path.is_empty() {
                    out.push((at, path, t[at].1));
                }
                return;
            }
        }
    }
}

/// The edges of one crate: (from, to) -> where the first such path is written.
fn edges(files: &[File]) -> BTreeMap<(ModPath, ModPath), String> {
    // Every module, mapped to the file module that holds it.
    let mut holder: BTreeMap<ModPath, ModPath> = BTreeMap::new();
    let mut inline: Vec<Vec<(ModPath, usize, usize)>> = Vec::new();
    for f in files {
        holder.insert(f.module.clone(), f.module.clone());
        let found = inline_modules(f);
        for (m, _, _) in &found {
            holder.insert(m.clone(), f.module.clone());
        }
        inline.push(found);
    }
    let mut out = BTreeMap::new();
    for (f, inline) in files.iter().zip(&inline) {
        for (at, segs, line) in paths(&f.toks) {
            // The innermost inline module around the path, else the file's.
            let here = inline
                .iter()
                .filter(|(_, s, e)| *s < at && at < *e)
                .max_by_key(|(m, _, _)| m.len())
                .map_or_else(|| f.module.clone(), |(m, _, _)| m.clone());
            let Some(target) = resolve(&here, &segs, &holder) else {
                continue;
            };
            let to = holder[&target].clone();
            if to != f.module {
                out.entry((f.module.clone(), to))
                    .or_insert_with(|| format!("{}:{line} `{}`", f.rel.display(), segs.join("::")));
            }
        }
    }
    out
}

/// The module a path written in `here` names (the longest prefix that is a
/// module), if it names one of this crate's.
fn resolve(
    here: &ModPath,
    segs: &[String],
    modules: &BTreeMap<ModPath, ModPath>,
) -> Option<ModPath> {
    let mut base = here.clone();
    let mut rest = segs;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        Some(first) => {
            let mut child = here.clone();
            child.push(first.to_owned());
            if !modules.contains_key(&child) {
                return None;
            }
        }
        None => return None,
    }
    let mut best = base.clone();
    let mut cur = base;
    for s in rest {
        cur.push(s.clone());
        if modules.contains_key(&cur) {
            best = cur.clone();
        } else {
            break;
        }
    }
    Some(best)
}

fn name(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// Every circle of the graph (one per strongly connected component), each
/// as the modules around it with the path that draws each edge.
fn circles(edges: &BTreeMap<(ModPath, ModPath), String>) -> Vec<String> {
    let mut next: BTreeMap<&ModPath, Vec<&ModPath>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
    }
    let reach = |from: &ModPath| -> BTreeMap<ModPath, ModPath> {
        // Breadth first, remembering each module's predecessor.
        let mut prev = BTreeMap::new();
        let mut queue = vec![from.clone()];
        let mut k = 0;
        while k < queue.len() {
            let m = queue[k].clone();
            k += 1;
            for &n in next.get(&m).into_iter().flatten() {
                if !prev.contains_key(n) {
                    prev.insert(n.clone(), m.clone());
                    queue.push(n.clone());
                }
            }
        }
        prev
    };
    let mut seen: BTreeSet<ModPath> = BTreeSet::new();
    let mut out = Vec::new();
    for m in next.keys() {
        if seen.contains(*m) {
            continue;
        }
        let prev = reach(m);
        let Some(mut back) = prev.get(*m).cloned() else {
            continue;
        };
        // Walk the predecessors from `m` back to `m`: the shortest circle.
        let mut ring = vec![(*m).clone()];
        while &back != *m {
            ring.push(back.clone());
            back = prev[&back].clone();
        }
        ring.push((*m).clone());
        ring.reverse();
        let mut text = String::new();
        for w in ring.windows(2) {
            seen.insert(w[0].clone());
            text.push_str(&format!(
                "\n    {} -> {}   ({})",
                name(&w[0]),
                name(&w[1]),
                edges[&(w[0].clone(), w[1].clone())]
            ));
        }
        out.push(text);
    }
    out
}

/// Edges allowed to close a circle, each with what would fix it: none
/// today. An entry must still exist, so a fixed one has to leave the list.
const KNOWN: &[(&str, &str, &str)] = &[];

fn crate_circles(src: &Path, known: &[(&str, &str, &str)]) -> (usize, Vec<String>) {
    let mut files = Vec::new();
    rust_files(src, src, &mut files);
    assert!(files.len() > 5, "no sources found under {}", src.display());
    let mut e = edges(&files);
    let count = e.len();
    for (from, to, why) in known {
        let key = |m: &str| m.split("::").map(str::to_owned).collect::<ModPath>();
        assert!(
            e.remove(&(key(from), key(to))).is_some(),
            "{from} -> {to} is gone ({why}): take it off KNOWN"
        );
    }
    (count, circles(&e))
}

fn check(krate: &str, src: PathBuf, known: &[(&str, &str, &str)]) {
    let (edges, found) = crate_circles(&src, known);
    // A scanner that sees no edges would pass vacuously.
    assert!(edges > 10, "{krate}: only {edges} edges found");
    assert!(
        found.is_empty(),
        "{krate}: {} import circle(s):{}",
        found.len(),
        found.join("\n  and")
    );
}

#[test]
fn proxy_modules_have_no_circles() {
    check(
        "proxy",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        KNOWN,
    );
}

#[test]
fn policies_modules_have_no_circles() {
    check(
        "policies",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/src"),
        &[],
    );
}

/// The scanner itself: the circles it must see, and what it must not
/// mistake for a path.
#[test]
fn scanner_sees_circles_and_skips_comments() {
    let file = |rel: &str, text: &str| File {
        rel: rel.into(),
        module: module_of(Path::new(rel)),
        toks: tokens(text),
    };
    let files = vec![
        file("lib.rs", "mod a; mod b; mod c; mod d;"),
        file(
            "a.rs",
            "use crate::b::{self, X};\n// crate::d::Y\nconst S: &str = \"crate::d\";",
        ),
        file("b.rs", "fn f<'a>(x: &'a str) { let _ = super::c::g(); }"),
        file(
            "c.rs",
            "use super::{a::Z as W, d};\nmod tests { use super::*; }",
        ),
        file("d.rs", "mod inner { pub fn h() {} }"),
    ];
    let e = edges(&files);
    let m = |s: &str| vec![s.to_owned()];
    let keys: BTreeSet<_> = e.keys().cloned().collect();
    let want: BTreeSet<_> = [
        (m("a"), m("b")),
        (m("b"), m("c")),
        (m("c"), m("a")),
        (m("c"), m("d")),
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, want);
    let found = circles(&e);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("c -> a"), "{}", found[0]);
}
