//! Hand-edited input must never panic, and canonical forms must be stable.

use proptest::prelude::*;

use policies::{
    canonical_fingerprint, format_duration, format_size, parse_duration, parse_size, Policy,
    QualifiedName,
};

/// Lines that look like a policy file, to reach validation rather than stop
/// at TOML syntax.
fn policy_like() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        Just("[cache]".to_owned()),
        Just("[defaults]".to_owned()),
        Just("[tables]".to_owned()),
        Just("[queries]".to_owned()),
        Just("[functions]".to_owned()),
        "[a-z]{1,8}".prop_map(|s| format!("[{s}]")),
        "[tables.\"[a-zA-Z_.*\" ]{0,12}\"]",
        "[tables.'[a-zA-Z_.*\" ]{0,12}']",
        "[queries.\"[a-zA-Z_$1 ;'\"*]{0,20}\"]",
        "[functions.\"[a-zA-Z_.*]{0,10}\"]",
    ];
    let key = prop_oneof![
        Just("enabled"),
        Just("max_memory"),
        Just("cache"),
        Just("ttl"),
        Just("max_entry_size"),
        Just("trigger_writes"),
        Just("writes"),
        Just("cacheable"),
        Just("x"),
    ];
    let value = prop_oneof![
        Just("true".to_owned()),
        Just("false".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        "\"[0-9]{0,22}(ms|s|m|h|B|KiB|MiB|GiB|TiB|kB|MB|GB|TB|x|)\"",
        "\"[ -~]{0,12}\"",
        "\\[(\"[a-zA-Z_.*\" ]{0,8}\", ?){0,3}\\]",
        Just("{ ttl = \"5s\" }".to_owned()),
        Just("1.5".to_owned()),
        Just("1979-05-27".to_owned()),
    ];
    let line = prop_oneof![
        header,
        (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        Just(String::new()),
    ];
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

fn check_errors_are_well_formed(text: &str) {
    if let Err(errors) = Policy::parse(text, None) {
        assert!(!errors.is_empty());
        let lines = text.split('\n').count();
        for e in &errors {
            assert!(
                e.line >= 1 && e.line <= lines,
                "line {} of {lines}: {e}",
                e.line
            );
            assert!(e.column >= 1, "{e}");
            assert!(!e.message.is_empty());
        }
        // One error per line: nothing in a message may break the line.
        assert_eq!(errors.to_string().split('\n').count(), errors.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_string_parses_or_errs_without_panicking(text in any::<String>()) {
        check_errors_are_well_formed(&text);
    }

    #[test]
    fn policy_like_text_parses_or_errs_without_panicking(text in policy_like()) {
        check_errors_are_well_formed(&text);
    }

    #[test]
    fn units_never_panic(s in any::<String>()) {
        let _ = parse_duration(&s);
        let _ = parse_size(&s);
    }

    #[test]
    fn sizes_round_trip(n in any::<u64>()) {
        prop_assert_eq!(parse_size(&format_size(n)), Ok(n));
    }

    #[test]
    fn durations_round_trip(ms in 0u64..u64::MAX / 1000) {
        let d = std::time::Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }

    #[test]
    fn canonical_fingerprint_is_idempotent(s in any::<String>()) {
        let once = canonical_fingerprint(&s).into_owned();
        let twice = canonical_fingerprint(&once);
        prop_assert_eq!(&once, twice.as_ref());
        prop_assert!(matches!(twice, std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn qualified_names_display_and_parse_back(schema in "[^\0]{1,20}", name in "[^\0]{1,20}") {
        prop_assume!(schema.len() <= 63 && name.len() <= 63);
        let q = QualifiedName::new(schema, name);
        prop_assert_eq!(QualifiedName::parse(&q.to_string()), Ok(q));
    }
}
