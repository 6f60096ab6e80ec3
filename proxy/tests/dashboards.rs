//! The Grafana dashboards and Prometheus alert rules in `dashboards/`:
//! - every dashboard validates against Grafana's dashboard JSON schema
//!   (vendored: `dashboards/schema/dashboard.jsonschema.json`);
//! - structure: datasource variable everywhere, refIds, exprs, layout, titles
//!   documented in `dashboards/README.md`;
//! - every metric (and label) an expression uses is one pgcache exports;
//! - promtool accepts `alerts.yml` and its unit tests (`alerts_test.yml`) pass;
//! - a real Prometheus scrapes itself to prove the test helper; the live check
//!   against a running proxy under traffic is in `prometheus.rs`.
//!
//! Needs Debian's `prometheus` package (`prometheus` and `promtool`);
//! scripts/system-deps.sh installs it.

#[path = "common/promql.rs"]
mod promql;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::thread;
use std::time::Duration;

use promql::*;
use serde_json::Value;

/// The metrics pgcache exports on its admin listener's `/metrics`, with their
/// own labels (besides the target labels `instance` and `job`). Histograms
/// are used through their `_bucket` (with `le`), `_sum` and `_count` series.
const METRICS: &[(&str, &[&str])] = &[
    ("pgcache_queries_total", &["result"]),
    ("pgcache_bypass_total", &["reason"]),
    ("pgcache_cache_bytes", &[]),
    ("pgcache_cache_entries", &[]),
    ("pgcache_cache_max_bytes", &[]),
    ("pgcache_evictions_total", &[]),
    ("pgcache_expirations_total", &[]),
    ("pgcache_coalesced_total", &[]),
    ("pgcache_invalidations_total", &["table", "source"]),
    ("pgcache_client_connections", &[]),
    ("pgcache_upstream_connections", &[]),
    ("pgcache_upstream_errors_total", &[]),
    ("pgcache_refused_connections_total", &[]),
    ("pgcache_policy_reloads_total", &["outcome"]),
    ("pgcache_policy_loaded_timestamp_seconds", &[]),
    ("pgcache_build_info", &["version"]),
    ("pgcache_feed_up", &["database"]),
    ("pgcache_feed_lag_seconds", &["database"]),
    ("pgcache_feed_lag_bytes", &["database"]),
    ("pgcache_feed_max_lag_seconds", &[]),
    ("pgcache_feed_gating", &["database"]),
    ("pgcache_feed_transactions_total", &["database"]),
    ("pgcache_feed_restarts_total", &["database", "reason"]),
];
const HISTOGRAMS: &[(&str, &[&str])] = &[("pgcache_query_duration_seconds", &["result"])];
const TARGET_LABELS: &[&str] = &["instance", "job"];
/// Labels whose values are a closed set.
const LABEL_VALUES: &[(&str, &[&str])] = &[
    ("result", &["hit", "miss", "bypass"]),
    ("outcome", &["ok", "error"]),
    (
        "source",
        &[
            "write",
            "ddl",
            "feed",
            "feed_restart",
            "operator",
            "policy",
            "upstream_lost",
            "desync",
        ],
    ),
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn schema_path() -> PathBuf {
    repo_root().join("dashboards/schema/dashboard.jsonschema.json")
}

fn dashboards() -> Vec<(&'static str, Value)> {
    DASHBOARD_FILES
        .iter()
        .map(|f| (*f, load_dashboard(f)))
        .collect()
}

/// The series names an expression may use, with their labels.
fn known_series() -> BTreeMap<String, BTreeSet<&'static str>> {
    let mut out = BTreeMap::new();
    for (name, labels) in METRICS {
        out.insert(name.to_string(), labels.iter().copied().collect());
    }
    for (name, labels) in HISTOGRAMS {
        let mut with_le: BTreeSet<&str> = labels.iter().copied().collect();
        with_le.insert("le");
        out.insert(format!("{name}_bucket"), with_le);
        for suffix in ["_sum", "_count"] {
            out.insert(format!("{name}{suffix}"), labels.iter().copied().collect());
        }
    }
    out.insert("up".to_string(), BTreeSet::new());
    out
}

// ---------------------------------------------------------------------------
// A small PromQL lexer: enough to find metric names, selectors and label lists.

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Punct(char),
    /// A range or subquery window: what is between `[` and `]`.
    Window(String),
    Other(String),
}

fn tokens(expr: &str) -> Vec<Token> {
    let chars: Vec<char> = remove_promql_comments(expr).chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' || c == '`' {
            let mut value = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && c != '`' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(Token::Str(value));
        } else if c == '[' {
            let start = i + 1;
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            out.push(Token::Window(
                chars[start..i.min(chars.len())].iter().collect(),
            ));
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if "(){},".contains(c) {
            out.push(Token::Punct(c));
            i += 1;
        } else {
            let start = i;
            i += 1;
            while i < chars.len() && "=~!<>".contains(chars[i]) && "=~!<>".contains(c) {
                i += 1;
            }
            out.push(Token::Other(chars[start..i].iter().collect()));
        }
    }
    out
}

/// A series selector: the metric name and its matchers (label, op, value).
#[derive(Debug)]
struct Selector {
    metric: String,
    matchers: Vec<(String, String, String)>,
}

/// The selectors of pgcache metrics and `up`, and the label lists of
/// `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`.
fn analyse(expr: &str) -> (Vec<Selector>, Vec<String>) {
    let toks = tokens(expr);
    let mut selectors = Vec::new();
    let mut grouping = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if let Token::Ident(word) = &toks[i] {
            let next_is_paren = toks.get(i + 1) == Some(&Token::Punct('('));
            if matches!(
                word.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) && next_is_paren
            {
                i += 2;
                while i < toks.len() && toks[i] != Token::Punct(')') {
                    if let Token::Ident(label) = &toks[i] {
                        grouping.push(label.clone());
                    }
                    i += 1;
                }
                continue;
            }
            if word.starts_with("pgcache") || word == "up" {
                let mut selector = Selector {
                    metric: word.clone(),
                    matchers: Vec::new(),
                };
                i += 1;
                if toks.get(i) == Some(&Token::Punct('{')) {
                    i += 1;
                    while i < toks.len() && toks[i] != Token::Punct('}') {
                        if let (
                            Some(Token::Ident(l)),
                            Some(Token::Other(op)),
                            Some(Token::Str(v)),
                        ) = (toks.get(i), toks.get(i + 1), toks.get(i + 2))
                        {
                            selector.matchers.push((l.clone(), op.clone(), v.clone()));
                            i += 3;
                        } else {
                            i += 1;
                        }
                    }
                }
                selectors.push(selector);
                continue;
            }
        }
        i += 1;
    }
    (selectors, grouping)
}

/// Every expression to check metric names in: panel targets, annotations,
/// variable queries, alert rules; as written (variables not substituted).
fn every_written_expression() -> Vec<(String, String)> {
    let mut out = raw_dashboard_expressions();
    for (file, dashboard) in dashboards() {
        for annotation in dashboard["annotations"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(expr) = annotation["expr"].as_str() {
                out.push((
                    format!("{file}: annotation {}", annotation["name"]),
                    expr.to_string(),
                ));
            }
        }
        for variable in dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if variable["type"] == "query" {
                let query = variable["query"].as_str().unwrap_or("").to_string();
                out.push((format!("{file}: variable {}", variable["name"]), query));
            }
        }
    }
    out.extend(alert_expressions());
    out
}

// ---------------------------------------------------------------------------

#[test]
fn every_dashboard_exists_with_a_unique_uid_and_title() {
    let mut uids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for (file, dashboard) in dashboards() {
        let uid = dashboard["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: no uid"));
        assert!(
            !uid.is_empty() && uid.len() <= 40,
            "{file}: uid {uid:?} must be 1 to 40 characters"
        );
        assert!(
            uids.insert(uid.to_string()),
            "{file}: uid {uid:?} used twice"
        );
        let title = dashboard["title"].as_str().unwrap_or("");
        assert!(!title.is_empty(), "{file}: no title");
        assert!(
            titles.insert(title.to_string()),
            "{file}: title {title:?} used twice"
        );
        let version = dashboard["schemaVersion"].as_i64().unwrap_or(0);
        assert!(
            version >= 36,
            "{file}: schemaVersion {version} is too old (want >= 36)"
        );
        assert!(
            dashboard["tags"]
                .as_array()
                .is_some_and(|t| t.contains(&"pgcache".into())),
            "{file}: tag it \"pgcache\" (the dashboard links list dashboards by that tag)"
        );
        assert!(!panels(&dashboard).is_empty(), "{file}: no panels");
    }
}

#[test]
fn every_dashboard_validates_against_the_grafana_schema() {
    let path = schema_path();
    let text = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the Grafana dashboard JSON schema is expected at {}: {e}",
            path.display()
        )
    });
    let schema: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    // Only references inside the file: nothing to fetch.
    let external: Vec<&str> = text
        .split("\"$ref\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').nth(1))
        .filter(|r| !r.starts_with('#'))
        .collect();
    assert!(
        external.is_empty(),
        "the schema has external $refs: {external:?}"
    );
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{} is not a usable JSON schema: {e}", path.display()));
    // A panel is `oneOf` Panel or RowPanel, so its errors come out as "not
    // valid under any of the schemas": validate it as a Panel to say why.
    let mut panel_schema = schema.clone();
    panel_schema["$ref"] = "#/definitions/Panel".into();
    let panel_validator = jsonschema::validator_for(&panel_schema).expect("Panel schema");
    let mut problems = Vec::new();
    for (file, dashboard) in dashboards() {
        for error in validator.iter_errors(&dashboard) {
            let at = error.instance_path().to_string();
            let panel = dashboard.pointer(&at).filter(|p| {
                at.starts_with("/panels/") && at.matches('/').count() == 2 && p["type"] != "row"
            });
            match panel {
                Some(panel) => {
                    for e in panel_validator.iter_errors(panel) {
                        problems.push(format!(
                            "{file}: panel {}: at {at}{}: {e}",
                            panel["title"],
                            e.instance_path()
                        ));
                    }
                }
                None => problems.push(format!("{file}: at {at}: {error}")),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "schema violations:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_panel_queries_prometheus_through_the_datasource_variable() {
    let datasource = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    for (file, dashboard) in dashboards() {
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or("(untitled)");
            assert_eq!(
                panel["datasource"], datasource,
                "{file}: panel {title:?}: datasource must be {datasource}"
            );
            let targets = panel["targets"].as_array();
            assert!(
                targets.is_some_and(|t| !t.is_empty()),
                "{file}: panel {title:?} has no targets"
            );
            let mut ref_ids = BTreeSet::new();
            for target in targets.into_iter().flatten() {
                let ref_id = target["refId"].as_str().unwrap_or("");
                assert!(
                    !ref_id.is_empty(),
                    "{file}: panel {title:?}: a target without refId"
                );
                assert!(
                    ref_ids.insert(ref_id),
                    "{file}: panel {title:?}: refId {ref_id} twice"
                );
                let expr = target["expr"].as_str().unwrap_or("");
                assert!(
                    !expr.trim().is_empty(),
                    "{file}: panel {title:?} target {ref_id}: no expr"
                );
                if let Some(ds) = target.get("datasource") {
                    assert_eq!(
                        ds, &datasource,
                        "{file}: panel {title:?} target {ref_id}: datasource must be {datasource}"
                    );
                }
            }
        }
        for annotation in dashboard["annotations"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if annotation.get("expr").is_some() {
                assert_eq!(
                    annotation["datasource"], datasource,
                    "{file}: annotation {}: datasource must be {datasource}",
                    annotation["name"]
                );
            }
        }
    }
}

/// The change feed dashboard shows each feed series per database, restarts
/// by reason, and invalidations by source.
#[test]
fn the_feed_dashboard_shows_every_feed_series_per_database() {
    let dashboard = load_dashboard("pgcache-feed.json");
    let exprs: Vec<String> = panels(&dashboard)
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(String::from))
        .collect();
    let shown = |metric: &str, grouped_by: &[&str]| {
        exprs.iter().any(|expr| {
            let (selectors, grouping) = analyse(expr);
            selectors.iter().any(|s| s.metric == metric)
                && grouped_by.iter().all(|l| grouping.iter().any(|g| g == l))
        })
    };
    for (metric, by) in [
        ("pgcache_feed_up", &["database"][..]),
        ("pgcache_feed_lag_seconds", &["database"]),
        ("pgcache_feed_max_lag_seconds", &["instance"]),
        ("pgcache_feed_lag_bytes", &["database"]),
        ("pgcache_feed_transactions_total", &["database"]),
        ("pgcache_feed_restarts_total", &["database", "reason"]),
        ("pgcache_invalidations_total", &["source"]),
    ] {
        assert!(
            shown(metric, by),
            "pgcache-feed.json: no panel shows {metric} by {by:?}"
        );
    }
    assert!(
        exprs
            .iter()
            .any(|e| e.contains("rate(pgcache_feed_transactions_total")),
        "pgcache-feed.json: transactions are shown as a rate"
    );
}

#[test]
fn every_dashboard_has_the_datasource_and_instance_variables() {
    for (file, dashboard) in dashboards() {
        let variables = dashboard["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let find = |name: &str| variables.iter().find(|v| v["name"] == name).cloned();
        let ds = find("datasource").unwrap_or_else(|| panic!("{file}: no `datasource` variable"));
        assert_eq!(
            ds["type"], "datasource",
            "{file}: `datasource` must be of type datasource"
        );
        assert_eq!(
            ds["query"], "prometheus",
            "{file}: `datasource` must list Prometheus sources"
        );
        let instance = find("instance").unwrap_or_else(|| panic!("{file}: no `instance` variable"));
        assert_eq!(
            instance["datasource"]["uid"], "${datasource}",
            "{file}: `instance` must query the chosen data source"
        );
        assert_eq!(
            instance["allValue"], ".*",
            "{file}: `instance`'s All must be `.*` (it is used as instance=~\"$instance\")"
        );
    }
}

#[test]
fn panels_have_unique_ids_and_titles_and_do_not_overlap() {
    for (file, dashboard) in dashboards() {
        let mut ids = BTreeSet::new();
        let mut titles = BTreeSet::new();
        let mut cells: BTreeMap<(i64, i64), String> = BTreeMap::new();
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or("").to_string();
            assert!(!title.is_empty(), "{file}: a panel without a title");
            assert!(
                titles.insert(title.clone()),
                "{file}: two panels titled {title:?}"
            );
            let id = panel["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("{file}: {title:?} has no id"));
            assert!(ids.insert(id), "{file}: panel id {id} twice");
            assert!(
                panel["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{file}: panel {title:?} has no description"
            );
            let g = &panel["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_i64().unwrap_or(-1),
                g["y"].as_i64().unwrap_or(-1),
                g["w"].as_i64().unwrap_or(0),
                g["h"].as_i64().unwrap_or(0),
            );
            assert!(
                x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24,
                "{file}: panel {title:?} gridPos {g} is outside the 24-column grid"
            );
            for cx in x..x + w {
                for cy in y..y + h {
                    if let Some(other) = cells.insert((cx, cy), title.clone()) {
                        panic!("{file}: panels {other:?} and {title:?} overlap at ({cx}, {cy})");
                    }
                }
            }
        }
    }
}

#[test]
fn every_metric_and_label_in_an_expression_is_exported() {
    let known = known_series();
    let mut problems = Vec::new();
    for (at, expr) in every_written_expression() {
        let (selectors, grouping) = analyse(&expr);
        if selectors.is_empty() {
            problems.push(format!("{at}: uses no pgcache metric: {expr}"));
        }
        let mut labels_here: BTreeSet<&str> = TARGET_LABELS.iter().copied().collect();
        for selector in &selectors {
            let Some(labels) = known.get(&selector.metric) else {
                problems.push(format!(
                    "{at}: {} is not a metric pgcache exports (histograms only as _bucket, _sum, _count)",
                    selector.metric
                ));
                continue;
            };
            labels_here.extend(labels.iter().copied());
            for (label, op, value) in &selector.matchers {
                if !labels.contains(label.as_str()) && !TARGET_LABELS.contains(&label.as_str()) {
                    problems.push(format!("{at}: {} has no label {label}", selector.metric));
                }
                if let Some((_, values)) = LABEL_VALUES.iter().find(|(l, _)| l == label) {
                    let wanted: Vec<&str> = match op.as_str() {
                        "=" | "!=" => vec![value.as_str()],
                        _ => value.split('|').collect(),
                    };
                    for v in wanted {
                        if !values.contains(&v) {
                            problems.push(format!(
                                "{at}: {label}={v:?} is never exported (values: {values:?})"
                            ));
                        }
                    }
                }
            }
        }
        for label in &grouping {
            if !labels_here.contains(label.as_str()) {
                problems.push(format!(
                    "{at}: groups by {label}, which none of its metrics has"
                ));
            }
        }
        // The brief's own rule, independently: pgcache_[a-z_]+ tokens, suffixes stripped.
        for token in expr.split(|c: char| !(c.is_ascii_lowercase() || c == '_')) {
            if let Some(rest) = token.strip_prefix("pgcache_") {
                let name = format!("pgcache_{rest}");
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name);
                let listed = METRICS.iter().any(|(m, _)| *m == base)
                    || HISTOGRAMS.iter().any(|(m, _)| *m == base);
                if !listed && !rest.is_empty() {
                    problems.push(format!(
                        "{at}: {name} is not in the list of exported metrics"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn dashboard_expressions_filter_by_instance_and_use_grafana_windows() {
    let windows = ["$__rate_interval", "$__interval", "$__range"];
    let mut problems = Vec::new();
    let mut written: Vec<(String, String)> = raw_dashboard_expressions();
    for (file, dashboard) in dashboards() {
        for annotation in dashboard["annotations"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(expr) = annotation["expr"].as_str() {
                written.push((
                    format!("{file}: annotation {}", annotation["name"]),
                    expr.to_string(),
                ));
            }
        }
    }
    for (at, expr) in written {
        let (selectors, _) = analyse(&expr);
        for s in &selectors {
            let filtered = s
                .matchers
                .iter()
                .any(|(l, op, v)| l == "instance" && op == "=~" && v == "$instance");
            if !filtered {
                problems.push(format!("{at}: {} lacks instance=~\"$instance\"", s.metric));
            }
        }
        for token in tokens(&expr) {
            if let Token::Window(w) = token {
                if !windows.contains(&w.trim()) {
                    problems.push(format!("{at}: window [{w}]: use one of {windows:?}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn expressions_have_no_unsubstituted_variables() {
    let all = all_promql_expressions();
    assert!(
        all.len() > 40,
        "only {} expressions found: is the extraction broken?",
        all.len()
    );
    let dashboards_count = dashboard_expressions().len();
    let alerts_count = alert_expressions().len();
    assert_eq!(all.len(), dashboards_count + alerts_count);
    for (at, expr) in all.iter().chain(annotation_expressions().iter()) {
        assert!(
            !expr.contains('$'),
            "{at}: a variable is left after substitution: {expr}"
        );
        assert!(!expr.trim().is_empty(), "{at}: empty expression");
    }
    assert_eq!(
        substitute_grafana_variables(
            "rate(x{instance=~\"$instance\",a=~\"${instance}\"}[$__rate_interval]) + increase(y[$__range]) + z[$__interval]"
        ),
        "rate(x{instance=~\".*\",a=~\".*\"}[1m]) + increase(y[5m]) + z[1m]"
    );
}

#[test]
fn readme_describes_every_panel_and_every_alert() {
    let path = dashboards_dir().join("README.md");
    let readme = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Markdown wraps lines: compare with whitespace collapsed.
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut missing = Vec::new();
    for (file, dashboard) in dashboards() {
        if !readme.contains(file) {
            missing.push(format!("dashboard file {file}"));
        }
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or("");
            if !readme.contains(title) {
                missing.push(format!("{file}: panel {title:?}"));
            }
        }
    }
    for rule in alert_rules() {
        if !readme.contains(&rule.name) {
            missing.push(format!("alert {}", rule.name));
        }
    }
    assert!(
        missing.is_empty(),
        "{} does not mention:\n{}",
        path.display(),
        missing.join("\n")
    );
}

#[test]
fn alert_rules_are_labelled_and_annotated() {
    let rules = alert_rules();
    let names: BTreeSet<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    for wanted in [
        "PgcacheDown",
        "HitRatioCollapse",
        "UpstreamErrors",
        "CacheAtBudgetHighEvictions",
        "PolicyReloadFailed",
        "ChangeFeedDown",
        "ChangeFeedLagging",
        "ChangeFeedFlapping",
    ] {
        assert!(names.contains(wanted), "alerts.yml has no alert {wanted}");
    }
    let text = fs::read_to_string(alerts_path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (n, rule) in rules.iter().enumerate() {
        let end = rules.get(n + 1).map(|r| r.line - 1).unwrap_or(lines.len());
        let body = lines[rule.line - 1..end].join("\n");
        for key in ["severity:", "summary:", "description:"] {
            assert!(body.contains(key), "alert {} has no {key}", rule.name);
        }
    }
}

fn promtool(args: &[&str]) -> (bool, String) {
    let promtool = prometheus_program("promtool");
    let out = Command::new(&promtool)
        .args(args)
        .current_dir(dashboards_dir())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", promtool.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn promtool_checks_the_alert_rules() {
    let (ok, out) = promtool(&["check", "rules", ALERTS_FILE]);
    assert!(ok, "promtool check rules {ALERTS_FILE} failed:\n{out}");
    // promtool's count against the rule reader's: proves the reader saw them all.
    let found: usize = out
        .split("SUCCESS:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rule count in promtool's output:\n{out}"));
    assert_eq!(
        found,
        alert_rules().len(),
        "promtool found {found} rules, tests/common/promql.rs read {:?}",
        alert_rules().iter().map(|r| &r.name).collect::<Vec<_>>()
    );
}

#[test]
fn promtool_unit_tests_of_the_alerts_pass() {
    let (ok, out) = promtool(&["test", "rules", "alerts_test.yml"]);
    assert!(ok, "promtool test rules alerts_test.yml failed:\n{out}");
}

#[test]
fn every_alert_expression_has_a_strippable_threshold() {
    let stripped = alert_expressions_without_threshold();
    assert_eq!(stripped.len(), alert_rules().len());
    for ((at, signal), rule) in stripped.iter().zip(alert_rules()) {
        assert!(
            rule.expr.trim_end().len() > signal.len() && rule.expr.starts_with(signal.as_str()),
            "{at}: {signal:?} is not a prefix of {:?}",
            rule.expr
        );
    }
    let cases = [
        ("up{job=\"pgcache\"} == 0", Ok("up{job=\"pgcache\"}")),
        ("(a / b + (c < bool 1)) < 0.2", Ok("(a / b + (c < bool 1))")),
        (
            "sum by (i) (rate(x{a!=\"<\"}[5m])) >= 1e3",
            Ok("sum by (i) (rate(x{a!=\"<\"}[5m]))"),
        ),
        ("x > bool 1", Err(())),
        ("x > 1 and y", Err(())),
        ("x and y > 1", Err(())),
        ("x > y", Err(())),
        ("sum(x)", Err(())),
    ];
    for (expr, want) in cases {
        let got = strip_final_comparison(expr);
        match want {
            Ok(signal) => assert_eq!(got.as_deref(), Ok(signal), "{expr}"),
            Err(()) => assert!(got.is_err(), "{expr}: wanted an error, got {got:?}"),
        }
    }
}

#[test]
fn rule_reader_handles_the_yaml_forms_of_expr() {
    let text = r#"
groups:
  - name: g
    rules:
      - alert: Plain
        expr: up == 0  # a comment
        for: 1m
      - alert: "Quoted"
        expr: "up{job=\"a\"} == 0"
      - record: job:up:sum
        expr: 'sum by (job) (up{job=''b''})'
      - alert: Block
        expr: |
          (
            sum(up)   # PromQL comment
          ) < 1
        labels:
          severity: warning
      - alert: Folded
        expr: >-
          sum(up)
          < 1
      - alert: Continued
        expr: sum(up)
          < 1
        annotations:
          summary: x
"#;
    let rules = parse_rules(text).expect("parses");
    let got: Vec<(&str, bool, &str)> = rules
        .iter()
        .map(|r| (r.name.as_str(), r.is_alert, r.expr.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("Plain", true, "up == 0"),
            ("Quoted", true, "up{job=\"a\"} == 0"),
            ("job:up:sum", false, "sum by (job) (up{job='b'})"),
            ("Block", true, "(\n  sum(up)   \n) < 1"),
            ("Folded", true, "sum(up)\n< 1"),
            ("Continued", true, "sum(up)\n< 1"),
        ]
    );
    assert!(
        parse_rules("  - alert: A\n    for: 1m\n").is_err(),
        "a rule without expr"
    );
    assert!(
        parse_rules("  - alert: A\n    expr: |2\n      up\n").is_err(),
        "indentation indicator"
    );
}

/// Prometheus scraping itself: proves [`start_prometheus_on`] and
/// [`Prometheus::query`], with `alerts.yml` loaded and evaluated.
#[test]
fn prometheus_helper_scrapes_itself() {
    let port = free_port();
    let prometheus = start_prometheus_on(port, &format!("127.0.0.1:{port}"), &alerts_path());
    let up = prometheus.query_until("up", 1, Duration::from_secs(30));
    assert!(
        matches!(up, Ok(n) if n >= 1),
        "`up` returned {up:?}; prometheus log:\n{}",
        prometheus.log()
    );
    assert_eq!(prometheus.query("up{job=\"pgcache\"} == 1"), Ok(1));
    assert_eq!(prometheus.query("vector(1) + vector(2)"), Ok(1));
    assert_eq!(prometheus.query("scalar(vector(1))"), Ok(1));
    assert_eq!(prometheus.query("no_such_metric"), Ok(0));
    let bad = prometheus.query("sum(");
    assert!(bad.is_err(), "a syntax error must be an Err, got {bad:?}");
    // A large answer (chunked): every series Prometheus has about itself.
    let many = prometheus.query("{__name__=~\"prometheus_.+\"}");
    assert!(matches!(many, Ok(n) if n > 50), "got {many:?}");

    // The rules it loaded are the ones the reader found, and all evaluate.
    let wanted: BTreeSet<String> = alert_rules().into_iter().map(|r| r.name).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let data = prometheus.api("/api/v1/rules").expect("/api/v1/rules");
        let rules: Vec<&Value> = data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        let names: BTreeSet<String> = rules
            .iter()
            .filter_map(|r| r["name"].as_str().map(String::from))
            .collect();
        assert_eq!(names, wanted, "rules loaded by prometheus");
        let unhealthy: Vec<String> = rules
            .iter()
            .filter(|r| r["health"] != "ok")
            .map(|r| format!("{} {} {}", r["name"], r["health"], r["lastError"]))
            .collect();
        if unhealthy.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rules not evaluated cleanly: {unhealthy:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn paths_are_where_ci_expects_them() {
    assert!(
        repo_root().join("Cargo.toml").is_file(),
        "repo root is {}",
        repo_root().display()
    );
    for file in DASHBOARD_FILES
        .iter()
        .chain([&ALERTS_FILE, &"alerts_test.yml", &"README.md"])
    {
        let path = dashboards_dir().join(file);
        assert!(path.is_file(), "{} is missing", path.display());
    }
}

/// The bypass reasons `dashboards/README.md` explains are exactly the labels
/// pgcache can put on `pgcache_bypass_total{reason}` (`pgcache::bypass`).
#[test]
fn the_readme_lists_exactly_the_bypass_reasons() {
    let readme = fs::read_to_string(dashboards_dir().join("README.md")).unwrap();
    let start = readme
        .find("- **Bypasses per second by reason**")
        .expect("the bypass panel is documented");
    let rest = &readme[start + 2..];
    let section = &rest[..rest.find("\n- **").unwrap_or(rest.len())];
    let listed: BTreeSet<&str> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .filter(|w| *w != "reason")
        .collect();
    let reasons: BTreeSet<&str> = pgcache::bypass::Bypass::ALL
        .iter()
        .filter(|r| **r != pgcache::bypass::Bypass::Internal)
        .map(|r| r.as_str())
        .collect();
    let missing: Vec<_> = reasons.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&reasons).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "dashboards/README.md: reasons not explained: {missing:?}; not reasons: {unknown:?}"
    );
}
