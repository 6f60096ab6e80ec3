//! Parsing, validation and resolution of whole policy files.

use std::path::Path;
use std::time::Duration;

use crate::*;

fn parse(src: &str) -> Policy {
    match Policy::parse(src, None) {
        Ok(p) => p,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

fn errors(src: &str) -> Vec<PolicyError> {
    match Policy::parse(src, Some(Path::new("policy.toml"))) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => {
            assert!(!e.is_empty());
            e.0
        }
    }
}

/// Exactly one error, returned as its Display line.
fn error(src: &str) -> String {
    let e = errors(src);
    assert_eq!(
        e.len(),
        1,
        "expected one error, got:\n{}",
        PolicyErrors(e.clone())
    );
    e[0].to_string()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn q(schema: &str, name: &str) -> QualifiedName {
    QualifiedName::new(schema, name)
}

#[test]
fn empty_file_is_the_default_policy() {
    let p = parse("");
    assert_eq!(p, Policy::default());
    assert!(p.enabled());
    assert_eq!(p.max_memory(), 256 << 20);
    assert_eq!(p.default_ttl(), secs(60));
    assert_eq!(p.max_entry_size(), 1 << 20);
    assert!(p.default_cache());
    assert_eq!(p.hash_hex(), blake3::hash(b"").to_hex().as_str());
    let t = p.table("public", "anything");
    assert_eq!(
        t,
        TableRule {
            cache: true,
            ttl: secs(60),
            max_entry_size: 1 << 20,
            trigger_writes: None,
            source: RuleSource::Default,
        }
    );
    assert_eq!(p.query("select 1"), None);
    assert_eq!(p.function("public", "f"), None);
}

#[test]
fn the_documented_example_parses() {
    let src = r#"
[cache]
max_memory = "256MiB"        # byte budget of the store

[defaults]
ttl = "60s"                  # every entry expires after this, even if no write is seen
max_entry_size = "1MiB"      # larger results pass through uncached

[tables."public.orders"]
ttl = "5s"

[tables."public.audit_log"]
cache = false
"#;
    let p = parse(src);
    assert_eq!(p.max_memory(), 256 << 20);
    assert_eq!(p.table("public", "orders").ttl, secs(5));
    assert!(p.table("public", "orders").cache);
    assert!(!p.table("public", "audit_log").cache);
    assert_eq!(p.table("public", "audit_log").ttl, secs(60));
    assert_eq!(p.hash_hex(), blake3::hash(src.as_bytes()).to_hex().as_str());
    assert_eq!(p.hash_hex().len(), 64);
}

#[test]
fn cache_section_keys() {
    let p = parse("[cache]\nenabled = false\nmax_memory = \"1GiB\"\n");
    assert!(!p.enabled());
    assert_eq!(p.max_memory(), 1 << 30);
    assert_eq!(parse("[cache]\nmax_memory = 4096\n").max_memory(), 4096);
    assert_eq!(
        parse("[cache]\nmax_memory = \"10MB\"\n").max_memory(),
        10_000_000
    );
    assert_eq!(parse("cache.max_memory = \"2KiB\"\n").max_memory(), 2048);
}

#[test]
fn max_lag_defaults_to_250ms_and_must_be_positive_and_bounded() {
    assert_eq!(parse("").max_lag(), Duration::from_millis(250));
    assert_eq!(
        parse("[cache]\nmax_lag = \"2s\"\n").max_lag(),
        Duration::from_secs(2)
    );
    for bad in ["\"0s\"", "\"2h\"", "\"soon\"", "true"] {
        let err = Policy::parse(&format!("[cache]\nmax_lag = {bad}\n"), None)
            .expect_err(bad)
            .to_string();
        assert!(err.contains("max_lag"), "{bad}: {err}");
    }
}

#[test]
fn defaults_section_keys() {
    let p = parse("[defaults]\ncache = false\nttl = \"2m\"\nmax_entry_size = \"64KiB\"\n");
    assert!(!p.default_cache());
    assert_eq!(p.default_ttl(), secs(120));
    assert_eq!(p.max_entry_size(), 64 << 10);
    let t = p.table("public", "x");
    assert!(!t.cache);
    assert_eq!(t.ttl, secs(120));
    assert_eq!(t.max_entry_size, 64 << 10);
}

#[test]
fn table_keys() {
    let p = parse(
        r#"
[tables."public.orders"]
ttl = "500ms"
cache = true
max_entry_size = "4MiB"
trigger_writes = ["public.order_totals", "audit_log", "public.audit_log"]
"#,
    );
    let t = p.table("public", "orders");
    assert!(t.cache);
    assert_eq!(t.ttl, Duration::from_millis(500));
    assert_eq!(t.max_entry_size, 4 << 20);
    assert_eq!(t.source, RuleSource::Exact);
    // "audit_log" and "public.audit_log" are one table: listed once.
    assert_eq!(
        t.trigger_writes.as_deref(),
        Some(&[q("public", "order_totals"), q("public", "audit_log")][..])
    );
    let empty = parse("[tables.t]\ntrigger_writes = []\n");
    assert_eq!(
        empty.table("public", "t").trigger_writes.as_deref(),
        Some(&[][..])
    );
    let listed: Vec<_> = p.tables().map(|(n, s)| (n.clone(), s.ttl)).collect();
    assert_eq!(
        listed,
        vec![(q("public", "orders"), Some(Duration::from_millis(500)))]
    );
}

#[test]
fn unqualified_names_mean_public() {
    let p = parse("[tables.orders]\nttl = \"5s\"\n[functions.bump]\nwrites = [\"counters\"]\n");
    assert_eq!(p.table("public", "orders").source, RuleSource::Exact);
    assert_eq!(p.table("other", "orders").source, RuleSource::Default);
    assert_eq!(
        p.function("public", "bump"),
        Some(FunctionRule {
            writes: vec![q("public", "counters")],
            cacheable: false
        })
    );
}

#[test]
fn names_fold_like_postgres_identifiers() {
    let p = parse(
        r#"
[tables."Public.ORDERS"]
ttl = "1s"

[tables.'"Sales"."Orders"']
ttl = "2s"

[tables.'sales."Mixed"']
ttl = "3s"
"#,
    );
    assert_eq!(p.table("public", "orders").ttl, secs(1));
    assert_eq!(p.table("Sales", "Orders").ttl, secs(2));
    assert_eq!(p.table("sales", "orders").source, RuleSource::Default);
    assert_eq!(p.table("sales", "Mixed").ttl, secs(3));
    assert_eq!(p.table("sales", "mixed").source, RuleSource::Default);
    let names: Vec<String> = p.tables().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        names,
        ["\"Sales\".\"Orders\"", "public.orders", "sales.\"Mixed\""]
    );
}

#[test]
fn exact_rule_beats_wildcard_beats_defaults_key_by_key() {
    let p = parse(
        r#"
[defaults]
ttl = "60s"
max_entry_size = "1MiB"

[tables."analytics.*"]
ttl = "10m"
cache = false
trigger_writes = ["analytics.log"]

[tables."analytics.live"]
ttl = "2s"
cache = true
"#,
    );
    let live = p.table("analytics", "live");
    assert_eq!(live.source, RuleSource::Exact);
    assert_eq!(live.ttl, secs(2));
    assert!(live.cache);
    // Keys the exact rule leaves out come from the wildcard, then the defaults.
    assert_eq!(
        live.trigger_writes.as_deref(),
        Some(&[q("analytics", "log")][..])
    );
    assert_eq!(live.max_entry_size, 1 << 20);

    let other = p.table("analytics", "daily");
    assert_eq!(other.source, RuleSource::Schema);
    assert_eq!(other.ttl, secs(600));
    assert!(!other.cache);

    let elsewhere = p.table("public", "daily");
    assert_eq!(elsewhere.source, RuleSource::Default);
    assert_eq!(elsewhere.ttl, secs(60));
    assert!(elsewhere.cache);

    let schemas: Vec<_> = p.schemas().map(|(s, r)| (s.to_owned(), r.ttl)).collect();
    assert_eq!(schemas, vec![("analytics".to_owned(), Some(secs(600)))]);
}

#[test]
fn query_rules_match_canonical_fingerprints() {
    let p = parse(
        r#"
[queries."SELECT *   FROM users\n          WHERE id = $1;"]
ttl = "1s"

[queries."select count(*) from audit_log"]
cache = false
"#,
    );
    let rule = QueryRule {
        cache: None,
        ttl: Some(secs(1)),
    };
    assert_eq!(p.query("select * from users where id = $1"), Some(rule));
    assert_eq!(p.query("  SELECT * FROM users WHERE id = $1 "), Some(rule));
    assert_eq!(p.query("select * from users where id=$1"), None);
    assert_eq!(
        p.query("select count(*) from audit_log"),
        Some(QueryRule {
            cache: Some(false),
            ttl: None
        })
    );
    let listed: Vec<&str> = p.queries().map(|(f, _)| f).collect();
    assert_eq!(
        listed,
        [
            "select * from users where id = $1",
            "select count(*) from audit_log"
        ]
    );
}

#[test]
fn function_declarations() {
    let p = parse(
        r#"
[functions."public.bump_counter"]
writes = ["public.counters", "stats.totals"]

[functions."public.slugify"]
cacheable = true

[functions.noop]
writes = []
"#,
    );
    assert_eq!(
        p.function("public", "bump_counter"),
        Some(FunctionRule {
            writes: vec![q("public", "counters"), q("stats", "totals")],
            cacheable: false
        })
    );
    assert_eq!(
        p.function("public", "slugify"),
        Some(FunctionRule {
            writes: vec![],
            cacheable: true
        })
    );
    assert_eq!(
        p.function("public", "noop").map(|f| f.writes.len()),
        Some(0)
    );
    assert_eq!(p.function("other", "slugify"), None);
    assert_eq!(p.functions().count(), 3);
}

#[test]
fn function_declarations_must_make_sense() {
    assert_eq!(
        error("[functions.f]\ncacheable = false\n"),
        "policy.toml:1:12: functions.f: declares nothing: list the tables the function writes with writes = [\"schema.table\"] (writes = [] if it writes none), or set cacheable = true"
    );
    assert_eq!(
        error("[functions.f]\ncacheable = true\nwrites = [\"t\"]\n"),
        "policy.toml:3:10: functions.f.writes: a function that writes tables cannot be cacheable: a cached result would skip its writes; remove cacheable = true or the writes"
    );
    assert!(error("[functions.\"public.*\"]\nwrites = []\n")
        .starts_with("policy.toml:1:12: functions.\"public.*\": invalid name \"public.*\": wildcards are allowed only in [tables]"));
}

#[test]
fn brief_error_format() {
    let src = "\n\n\n\n\n\n\n\n\n\n[tables.\"public.orders\"]\nttl = \"5 seconds\"\n";
    assert_eq!(
        error(src),
        r#"policy.toml:12:7: tables."public.orders".ttl: invalid duration "5 seconds": expected a number followed by ms, s, m or h"#
    );
    let e = &errors(src)[0];
    assert_eq!(e.path.as_deref(), Some(Path::new("policy.toml")));
    assert_eq!((e.line, e.column), (12, 7));
    assert_eq!(e.key, r#"tables."public.orders".ttl"#);
}

#[test]
fn unknown_key_at_top_level() {
    assert_eq!(
        error("[cache]\nenabled = true\n\n[defualts]\nttl = \"5s\"\n"),
        "policy.toml:4:2: defualts: unknown key \"defualts\" (did you mean \"defaults\"?); expected one of: cache, defaults, tables, queries, functions"
    );
    assert_eq!(
        error("# comment\nttl = \"5s\"\n"),
        "policy.toml:2:1: ttl: unknown key \"ttl\"; expected one of: cache, defaults, tables, queries, functions; ttl belongs in the [defaults] section"
    );
}

#[test]
fn unknown_key_in_cache_section() {
    assert_eq!(
        error("[cache]\nenabled = true\n  max_mem = \"1GiB\"\n"),
        "policy.toml:3:3: cache.max_mem: unknown key \"max_mem\"; expected one of: enabled, max_memory, max_lag"
    );
}

#[test]
fn unknown_key_inside_a_table_rule() {
    assert_eq!(
        error("[tables.\"public.orders\"]\nttl = \"5s\"\ntll = \"5s\"\n"),
        "policy.toml:3:1: tables.\"public.orders\".tll: unknown key \"tll\" (did you mean \"ttl\"?); expected one of: cache, ttl, max_entry_size, trigger_writes"
    );
    // The classic: a dotted table name without quotes nests tables.
    let e = error("[tables.public.orders]\nttl = \"5s\"\n");
    assert!(
        e.starts_with("policy.toml:1:16: tables.public.orders: unknown key \"orders\""),
        "{e}"
    );
    assert!(
        e.ends_with("a table name with a dot must be quoted: [tables.\"public.orders\"]"),
        "{e}"
    );
    assert!(error("[queries.\"select 1\"]\nttl = \"1s\"\nfoo = 1\n")
        .starts_with("policy.toml:3:1: queries.\"select 1\".foo: unknown key"));
    assert!(
        error("[functions.f]\nwrites = []\nwrite = []\n").starts_with(
            "policy.toml:3:1: functions.f.write: unknown key \"write\" (did you mean \"writes\"?)"
        )
    );
    assert!(
        error("[defaults]\ntrigger_writes = []\n").contains("trigger_writes is declared per table")
    );
}

#[test]
fn toml_syntax_errors_have_positions() {
    let e = errors("[cache]\nenabled = true\nmax_memory = \n");
    assert_eq!((e[0].line, e[0].column), (3, 14), "{}", e[0]);
    assert!(e[0].key.is_empty());
    assert_eq!(
        error("[tables.\"public.orders\"\nttl = \"5s\"\n"),
        "policy.toml:1:24: unclosed table, expected `]`"
    );
    assert_eq!(
        error("[cache]\nenabled = true\nenabled = false\n"),
        "policy.toml:3:1: duplicate key"
    );
    assert_eq!(
        error("[defaults]\nttl = \"5s\n"),
        "policy.toml:2:10: invalid basic string, expected `\"`"
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        error("[cache]\nenabled = \"yes\"\n"),
        "policy.toml:2:11: cache.enabled: expected true or false, found string \"yes\""
    );
    assert_eq!(
        error("[defaults]\nttl = 5\n"),
        "policy.toml:2:7: defaults.ttl: expected a duration string such as \"5s\", found integer 5; durations need a unit: write \"5s\" for 5 seconds"
    );
    assert_eq!(
        error("[defaults]\nmax_entry_size = true\n"),
        "policy.toml:2:18: defaults.max_entry_size: expected a size such as \"64KiB\" or a number of bytes, found boolean true"
    );
    assert_eq!(
        error("cache = 5\n"),
        "policy.toml:1:9: cache: expected a table, found integer 5"
    );
    assert_eq!(
        error("[tables]\n\"public.orders\" = \"5s\"\n"),
        "policy.toml:2:19: tables.\"public.orders\": expected a table, found string \"5s\""
    );
    assert_eq!(
        error("[tables.t]\ntrigger_writes = \"public.log\"\n"),
        "policy.toml:2:18: tables.t.trigger_writes: expected an array of table names such as [\"public.audit_log\"], found string \"public.log\""
    );
    assert_eq!(
        error("[tables.t]\ntrigger_writes = [\"a\", 3]\n"),
        "policy.toml:2:24: tables.t.trigger_writes: expected a string, found integer 3"
    );
    assert_eq!(
        error("[queries.\"select 1\"]\ncache = 1.5\n"),
        "policy.toml:2:9: queries.\"select 1\".cache: expected true or false, found float 1.5"
    );
    assert!(error("[defaults]\nttl = 1979-05-27\n").contains("found datetime 1979-05-27"));
    assert!(error("[defaults]\nttl = [\"5s\"]\n").contains("found an array"));
    assert!(error("[cache]\nmax_memory = -1\n")
        .ends_with("invalid size \"-1\": sizes cannot be negative"));
}

#[test]
fn zero_and_huge_values_are_refused() {
    assert_eq!(
        error("[defaults]\nttl = \"0s\"\n"),
        "policy.toml:2:7: defaults.ttl: invalid ttl \"0s\": ttl must be greater than 0; to stop caching, set cache = false"
    );
    assert!(error("[tables.t]\nttl = \"0ms\"\n").contains("ttl must be greater than 0"));
    assert!(error("[queries.\"select 1\"]\nttl = \"0h\"\n").contains("ttl must be greater than 0"));
    assert!(error("[defaults]\nttl = \"87601h\"\n").contains("at most 87600h"));
    assert!(parse("[defaults]\nttl = \"87600h\"\n").default_ttl() == MAX_TTL);
    assert_eq!(
        error("[cache]\nmax_memory = \"0B\"\n"),
        "policy.toml:2:14: cache.max_memory: must be greater than 0; to turn caching off, set enabled = false"
    );
    assert!(error("[defaults]\nmax_entry_size = 0\n")
        .contains("must be greater than 0; to stop caching, set cache = false"));
    assert!(error("[cache]\nmax_memory = \"20000000TiB\"\n").contains("larger than the maximum"));
}

#[test]
fn hex_integers_are_sizes_too() {
    assert_eq!(parse("[cache]\nmax_memory = 0x1000\n").max_memory(), 4096);
    assert_eq!(
        parse("[cache]\nmax_memory = 0x7fffffffffffffff\n").max_memory(),
        i64::MAX as u64
    );
}

#[test]
fn bad_names_point_at_the_key() {
    assert_eq!(
        error("[tables.\"public.my-table\"]\nttl = \"5s\"\n"),
        "policy.toml:1:9: tables.\"public.my-table\": invalid name \"public.my-table\": \"my-table\" is not a valid unquoted name (letters, digits, _ and $, not starting with a digit or $); double-quote it as in SQL: 'public.\"my-table\"'"
    );
    assert!(error("[tables.\"db.public.orders\"]\n").contains("at most two parts"));
    assert!(error("[tables.\"*\"]\n").contains("for every table use [defaults]"));
    assert_eq!(
        error("[tables.t]\ntrigger_writes = [\"ok\", \"a..b\"]\n"),
        "policy.toml:2:25: tables.t.trigger_writes: invalid name \"a..b\": empty part; expected table or schema.table"
    );
    assert!(error("[tables.t]\ntrigger_writes = [\"s.*\"]\n")
        .contains("wildcards are allowed only in [tables] keys"));
    assert!(error("[queries.\"  ; \"]\ncache = true\n").contains("empty query fingerprint"));
}

#[test]
fn rules_that_fold_to_the_same_target_are_duplicates() {
    let src =
        "[tables.\"public.orders\"]\nttl = \"1s\"\n\n[tables.\"Public.Orders\"]\nttl = \"2s\"\n";
    assert_eq!(
        error(src),
        "policy.toml:4:9: tables.\"Public.Orders\": duplicate rule: \"Public.Orders\" means the same as \"public.orders\" on line 1 (table names fold like PostgreSQL identifiers, and an unqualified name means public)"
    );
    assert!(error("[tables.orders]\n[tables.\"public.orders\"]\n").contains("duplicate rule"));
    assert!(error("[tables.\"s.*\"]\n[tables.'\"s\".*']\n").contains("duplicate rule"));
    assert!(error("[queries.\"select 1\"]\n[queries.\"SELECT  1;\"]\n")
        .starts_with("policy.toml:2:10: queries.\"SELECT  1;\": duplicate rule"));
    assert!(
        error("[functions.f]\nwrites = []\n[functions.\"public.F\"]\nwrites = []\n")
            .contains("duplicate rule")
    );
    // Same name, different case in quotes: different tables.
    parse("[tables.'\"Orders\"']\n[tables.orders]\n");
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let src = r#"[cache]
enabled = "yes"
max_memory = "lots"

[defaults]
ttl = "0s"

[tables."public.orders"]
ttl = "5 seconds"
colour = "blue"

[tables."analytics.*"]
max_entry_size = "1.5GiB"

[functions.f]
writes = "x"
"#;
    let e = errors(src);
    let got: Vec<(usize, usize, &str)> = e
        .iter()
        .map(|e| (e.line, e.column, e.key.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, 11, "cache.enabled"),
            (3, 14, "cache.max_memory"),
            (6, 7, "defaults.ttl"),
            (9, 7, "tables.\"public.orders\".ttl"),
            (10, 1, "tables.\"public.orders\".colour"),
            (13, 18, "tables.\"analytics.*\".max_entry_size"),
            (16, 10, "functions.f.writes"),
        ]
    );
    // Display: one error per line.
    let shown = PolicyErrors(e).to_string();
    assert_eq!(shown.lines().count(), 7);
    assert!(shown.lines().all(|l| l.starts_with("policy.toml:")));
}

#[test]
fn columns_count_characters_not_bytes() {
    let e = errors("[tables.\"é\"]\n\"ü\" = 1\n");
    assert_eq!((e[0].line, e[0].column), (2, 1));
    let e = errors("[tables.'\"Bücher\"']\nttl = \"x\"\n");
    assert_eq!((e[0].line, e[0].column), (2, 7));
    let e = errors("[tables.t] # é\nx = 1\n");
    assert_eq!((e[0].line, e[0].column), (2, 1));
    let e = errors("ab = 1 # é\n[tables.'é'] \n  tll = 1\n");
    assert_eq!((e[1].line, e[1].column), (3, 3));
}

#[test]
fn crlf_and_bom_are_fine() {
    let p = parse("\u{feff}[defaults]\r\nttl = \"5s\"\r\n");
    assert_eq!(p.default_ttl(), secs(5));
    let e = errors("\u{feff}[defaults]\r\nttl = \"5x\"\r\n");
    assert_eq!((e[0].line, e[0].column), (2, 7));
}

#[test]
fn resolve_combines_query_and_table_rules() {
    let p = parse(
        r#"
[defaults]
ttl = "60s"
max_entry_size = "1MiB"

[tables.orders]
ttl = "5s"
max_entry_size = "4MiB"

[tables.items]
ttl = "30s"
max_entry_size = "512KiB"

[tables.audit_log]
cache = false

[queries."select * from audit_log"]
cache = true
ttl = "1s"

[queries."select * from orders"]
cache = false
"#,
    );
    let r = p.resolve(
        Some("select 1 from orders join items"),
        [("public", "orders"), ("public", "items")],
    );
    assert_eq!(
        r,
        Resolution {
            cache: true,
            ttl: secs(5),
            max_entry_size: 512 << 10,
            decided_by: DecidedBy::Tables
        }
    );
    let r = p.resolve(None, [("public", "orders"), ("public", "audit_log")]);
    assert!(!r.cache);
    assert_eq!(
        r.decided_by,
        DecidedBy::Table(q("public", "audit_log"), RuleSource::Exact)
    );
    let r = p.resolve(Some("SELECT * FROM audit_log"), [("public", "audit_log")]);
    assert!(r.cache);
    assert_eq!(r.ttl, secs(1));
    assert_eq!(r.decided_by, DecidedBy::QueryRule);
    let r = p.resolve(Some("select * from orders"), [("public", "orders")]);
    assert!(!r.cache);
    assert_eq!(r.decided_by, DecidedBy::QueryRule);
    let r = p.resolve(None, []);
    assert_eq!(
        (r.cache, r.ttl, r.max_entry_size),
        (true, secs(60), 1 << 20)
    );

    let off = parse("[cache]\nenabled = false\n[queries.\"select 1\"]\ncache = true\n");
    assert_eq!(
        off.resolve(Some("select 1"), []).decided_by,
        DecidedBy::Disabled
    );
    assert!(!off.resolve(Some("select 1"), []).cache);

    let opt_in = parse("[defaults]\ncache = false\n[tables.t]\ncache = true\n");
    assert!(opt_in.resolve(None, [("public", "t")]).cache);
    let r = opt_in.resolve(None, [("public", "u")]);
    assert_eq!(
        r.decided_by,
        DecidedBy::Table(q("public", "u"), RuleSource::Default)
    );
    assert_eq!(opt_in.resolve(None, []).decided_by, DecidedBy::Defaults);
}

#[test]
fn load_reports_unreadable_files() {
    let missing = Path::new("/nonexistent/pgcache/policy.toml");
    let e = Policy::load(missing).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e.0[0].line, 0);
    let shown = e.to_string();
    assert!(
        shown.starts_with("/nonexistent/pgcache/policy.toml: cannot read policy file: "),
        "{shown}"
    );
}

#[test]
fn load_points_at_bytes_that_are_not_utf8() {
    let path = std::env::temp_dir().join(format!(
        "pgcache-policies-{}-latin1.toml",
        std::process::id()
    ));
    std::fs::write(&path, b"[tables.orders]\nttl = \"5s\" # caf\xe9\n").unwrap();
    let e = Policy::load(&path).unwrap_err();
    let _ = std::fs::remove_file(&path);
    assert_eq!((e.0[0].line, e.0[0].column), (2, 17));
    assert!(e
        .to_string()
        .ends_with("policy file is not valid UTF-8; save it as UTF-8"));
}

#[test]
fn listings_serialize_with_units() {
    let p = parse(
        "[tables.orders]\nttl = \"5s\"\nmax_entry_size = \"4MiB\"\ntrigger_writes = ['\"Log\"']\n",
    );
    let (name, spec) = p.tables().next().unwrap();
    assert_eq!(
        toml::to_string(&spec).unwrap(),
        "ttl = \"5s\"\nmax_entry_size = \"4MiB\"\ntrigger_writes = ['public.\"Log\"']\n"
    );
    assert_eq!(name.to_string(), "public.orders");
}
