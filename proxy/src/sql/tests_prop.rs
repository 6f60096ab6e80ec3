//! Property tests: fingerprints ignore exactly literal values, whitespace,
//! comments and keyword/identifier case; analysis never panics.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;

/// A tiny deterministic generator, so one proptest seed builds one structure
/// (shrinking then works on the seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

/// One structural element of a query.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Kw(&'static str),
    Ident(String),
    Op(&'static str),
    Punct(&'static str),
    /// A literal slot: 0 number, 1 string, 2 bit string. The category is part
    /// of the structure (the grammar can tell them apart); the spelling and
    /// value are not.
    Lit(u8),
}

const IDENTS: &[&str] = &[
    "users",
    "orders",
    "id",
    "name",
    "total",
    "t",
    "created_at",
    "x1",
];
const OPS: &[&str] = &["=", "<", ">", "<=", ">=", "<>", "@>", "||"];
const FUNCS: &[&str] = &["lower", "coalesce", "abs", "f"];

fn lit_cat(r: &mut Rng) -> u8 {
    [0, 0, 1, 1, 1, 2][r.below(6)]
}

fn ident(r: &mut Rng) -> Piece {
    if r.below(6) == 0 {
        Piece::Ident(format!(
            "\"{}\"",
            r.pick(&["Users", "Mixed Case", "a\"\"b", "id"])
        ))
    } else {
        Piece::Ident(r.pick(IDENTS).to_owned())
    }
}

fn condition(r: &mut Rng, out: &mut Vec<Piece>, depth: usize) {
    out.push(ident(r));
    match r.below(4) {
        0 => {
            out.push(Piece::Kw(r.pick(&["like", "ilike"])));
            out.push(Piece::Lit(lit_cat(r)));
        }
        1 => {
            out.extend([Piece::Kw("in"), Piece::Punct("("), Piece::Lit(lit_cat(r))]);
            for _ in 0..r.below(3) {
                out.extend([Piece::Punct(","), Piece::Lit(lit_cat(r))]);
            }
            out.push(Piece::Punct(")"));
        }
        _ => {
            out.push(Piece::Op(r.pick(OPS)));
            if r.below(3) == 0 {
                out.push(Piece::Op("-"));
            }
            out.push(Piece::Lit(lit_cat(r)));
        }
    }
    if depth < 2 && r.below(2) == 0 {
        out.push(Piece::Kw(r.pick(&["and", "or"])));
        condition(r, out, depth + 1);
    }
}

fn structure(seed: u64) -> Vec<Piece> {
    let mut r = Rng(seed | 1);
    let mut out = Vec::new();
    match r.below(3) {
        0 => {
            out.push(Piece::Kw("select"));
            for i in 0..=r.below(3) {
                if i > 0 {
                    out.push(Piece::Punct(","));
                }
                match r.below(3) {
                    0 => out.push(ident(&mut r)),
                    1 => out.push(Piece::Lit(lit_cat(&mut r))),
                    _ => out.extend([
                        Piece::Ident(r.pick(FUNCS).to_owned()),
                        Piece::Punct("("),
                        ident(&mut r),
                        Piece::Punct(")"),
                    ]),
                }
            }
            out.extend([Piece::Kw("from"), ident(&mut r)]);
            if r.below(2) == 0 {
                out.push(Piece::Kw("where"));
                condition(&mut r, &mut out, 0);
            }
            if r.below(2) == 0 {
                out.extend([Piece::Kw("order"), Piece::Kw("by"), ident(&mut r)]);
                out.push(Piece::Kw(r.pick(&["asc", "desc"])));
            }
            if r.below(2) == 0 {
                out.extend([Piece::Kw("limit"), Piece::Lit(lit_cat(&mut r))]);
            }
        }
        1 => {
            out.extend([Piece::Kw("insert"), Piece::Kw("into"), ident(&mut r)]);
            out.extend([
                Piece::Kw("values"),
                Piece::Punct("("),
                Piece::Lit(lit_cat(&mut r)),
            ]);
            for _ in 0..r.below(3) {
                out.extend([Piece::Punct(","), Piece::Lit(lit_cat(&mut r))]);
            }
            out.push(Piece::Punct(")"));
        }
        _ => {
            out.extend([
                Piece::Kw("update"),
                ident(&mut r),
                Piece::Kw("set"),
                ident(&mut r),
            ]);
            out.extend([
                Piece::Op("="),
                Piece::Lit(lit_cat(&mut r)),
                Piece::Kw("where"),
            ]);
            condition(&mut r, &mut out, 0);
        }
    }
    out
}

/// A literal of the given category in a random spelling, never a date/time
/// word.
fn literal(r: &mut Rng, cat: u8) -> String {
    let content: String = (0..r.below(8))
        .map(|_| {
            r.pick(&[
                "a", "b", "Z", "1", " ", ";", "--", "/*", "é", "$", "\"", "x",
            ])
        })
        .collect();
    match (cat, r.below(5)) {
        (0, 0 | 1) => r.below(100_000).to_string(),
        (0, 2) => format!("{}.{}", r.below(1000), r.below(1000)),
        (0, 3) => format!("0x{:X}", r.below(4096)),
        (0, _) => format!("{}e{}", r.below(10), r.below(10)),
        (1, 0) => format!("'{}'", content.replace('\'', "''") + "''"),
        (1, 1) => format!("E'{}\\n\\''", content.replace('\\', "\\\\")),
        (1, 2) => format!("$q${}$q$", content.replace('$', "")),
        (1, 3) => format!("'{content}'\n'{content}'"),
        (1, _) => format!("U&'{}\\0041'", content.replace('\\', "")),
        (_, n) if n % 2 == 0 => "B'0101'".to_owned(),
        _ => format!("X'{:X}'", r.below(4096)),
    }
}

fn separator(r: &mut Rng) -> &'static str {
    r.pick(&[
        " ",
        "  ",
        "\n",
        "\t",
        " /* c */ ",
        " /* a /* b */ c */ ",
        " -- x\n",
        "\r\n ",
    ])
}

fn random_case(r: &mut Rng, s: &str) -> String {
    s.chars()
        .map(|c| {
            if r.below(2) == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn render(pieces: &[Piece], r: &mut Rng) -> String {
    let mut out = String::new();
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            out.push_str(separator(r));
        }
        match p {
            Piece::Kw(k) => out.push_str(&random_case(r, k)),
            Piece::Ident(id) if id.starts_with('"') => out.push_str(id),
            Piece::Ident(id) => out.push_str(&random_case(r, id)),
            Piece::Op(o) | Piece::Punct(o) => out.push_str(o),
            Piece::Lit(cat) => out.push_str(&literal(r, *cat)),
        }
    }
    out
}

/// Change one identifier, operator or keyword into a different one.
fn mutate(pieces: &[Piece], pick: usize) -> Option<Vec<Piece>> {
    let candidates: Vec<usize> = pieces
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p, Piece::Kw(_) | Piece::Ident(_) | Piece::Op(_)))
        .map(|(i, _)| i)
        .collect();
    let i = *candidates.get(pick % candidates.len().max(1))?;
    let mut out = pieces.to_vec();
    out[i] = match &pieces[i] {
        Piece::Ident(id) => Piece::Ident(format!("{}_2", id.trim_matches('"'))),
        Piece::Op(o) => Piece::Op(if *o == "=" { "<>" } else { "=" }),
        Piece::Kw(k) => Piece::Kw(match *k {
            "and" => "or",
            "asc" => "desc",
            "like" => "ilike",
            "select" => "values",
            "limit" => "offset",
            "where" => "having",
            _ => "not",
        }),
        _ => return None,
    };
    Some(out)
}

proptest! {
    // No failure persistence: it would write files outside this module.
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn same_structure_same_fingerprint(seed in any::<u64>(), s1 in any::<u64>(), s2 in any::<u64>()) {
        let pieces = structure(seed);
        let a = render(&pieces, &mut Rng(s1 | 1));
        let b = render(&pieces, &mut Rng(s2 | 1));
        let (fa, ida) = fingerprint(&a);
        let (fb, idb) = fingerprint(&b);
        prop_assert_eq!(&fa, &fb, "texts:\n{}\n{}", a, b);
        prop_assert_eq!(ida, idb);
        // And the analyses agree; the cache parses the shape once.
        let an = Analyzer::new(8);
        let x = an.analyze(&a);
        let y = an.analyze(&b);
        prop_assert!(Arc::ptr_eq(&x, &y), "{:?}\n{:?}", x, y);
        prop_assert_eq!(an.parse_count(), 1);
        prop_assert_eq!(&analyze(&a).statements, &analyze(&b).statements);
        prop_assert!(x.error.is_none(), "{}: {:?}", a, x.error);
    }

    #[test]
    fn different_structure_different_fingerprint(seed in any::<u64>(), s1 in any::<u64>(), pick in any::<usize>()) {
        let pieces = structure(seed);
        if let Some(changed) = mutate(&pieces, pick) {
            let a = render(&pieces, &mut Rng(s1 | 1));
            let b = render(&changed, &mut Rng(s1 | 1));
            prop_assert_ne!(fingerprint(&a).0, fingerprint(&b).0, "texts:\n{}\n{}", a, b);
        }
    }

    #[test]
    fn fingerprint_is_a_fixpoint(seed in any::<u64>(), s1 in any::<u64>()) {
        let text = render(&structure(seed), &mut Rng(s1 | 1));
        let once = fingerprint(&text).0;
        prop_assert_eq!(fingerprint(&once).0, once);
    }

    #[test]
    fn analyze_never_panics_on_any_string(s in any::<String>()) {
        let _ = analyze(&s);
        let _ = fingerprint(&s);
    }

    #[test]
    fn analyze_never_panics_on_sqlish_strings(
        s in "[a-zA-Z0-9 '\"$;()\\\\/*.,:=<>!@#%^&|`?+\n\t_-]{0,120}",
        prefix in prop::sample::select(vec![
            "", "SELECT ", "SET ", "EXPLAIN (", "COPY ", "PREPARE p AS ", "U&'", "E'",
            "BEGIN ", "WITH x AS (", "CREATE FUNCTION f() BEGIN ATOMIC ", "TRUNCATE ",
            "DECLARE c CURSOR FOR ", "RESET ", "CALL ", "$a$",
        ]),
    ) {
        let text = format!("{prefix}{s}");
        let an = Analyzer::new(4);
        let a = an.analyze(&text);
        let b = an.analyze(&text);
        prop_assert_eq!(&a.statements, &b.statements);
        prop_assert_eq!(&a.statements, &analyze(&text).statements);
    }
}
