//! The PromQL in `dashboards/` (Grafana panels and Prometheus alert rules),
//! and a real Prometheus to run it against.
//!
//! - [`all_promql_expressions`]: every panel target's and every alert rule's
//!   `expr`, Grafana variables substituted, ready to send to Prometheus.
//! - [`alert_expressions_without_threshold`]: each alert's `expr` without its
//!   final comparison; [`live_check_expressions`]: the panel expressions plus
//!   those, i.e. what must return at least one series once pgcache has served
//!   hits, misses, bypasses, an invalidation and an eviction.
//! - [`start_prometheus`]: the `prometheus` binary scraping one target every
//!   second with `dashboards/alerts.yml` loaded, and [`Prometheus::query`].
//!
//! No crates beyond serde_json: the alert rules are read by a small reader of
//! the YAML subset `alerts.yml` uses (checked against promtool's rule count in
//! `tests/dashboards.rs`), and the HTTP client is a blocking HTTP/1.1 GET over
//! `std::net::TcpStream`.

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The dashboards every release ships, in `dashboards/`.
pub const DASHBOARD_FILES: [&str; 5] = [
    "pgcache-overview.json",
    "pgcache-cache.json",
    "pgcache-invalidation.json",
    "pgcache-health.json",
    "pgcache-feed.json",
];

/// The alert rules file in `dashboards/`.
pub const ALERTS_FILE: &str = "alerts.yml";

/// What Grafana variables become when an expression is sent to Prometheus
/// directly. The `${...}` forms come first so that their braces go too.
pub const GRAFANA_SUBSTITUTIONS: [(&str, &str); 8] = [
    ("${__rate_interval}", "1m"),
    ("${__interval}", "1m"),
    ("${__range}", "5m"),
    ("${instance}", ".*"),
    ("$__rate_interval", "1m"),
    ("$__interval", "1m"),
    ("$__range", "5m"),
    ("$instance", ".*"),
];

/// `dashboards/` in the repository.
pub fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards")
}

/// `dashboards/alerts.yml`.
pub fn alerts_path() -> PathBuf {
    dashboards_dir().join(ALERTS_FILE)
}

/// A dashboard file, parsed.
pub fn load_dashboard(file: &str) -> Value {
    let path = dashboards_dir().join(file);
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading dashboard {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("dashboard {} is not valid JSON: {e}", path.display()))
}

/// Every panel of a dashboard, the panels inside rows included (rows are not
/// returned themselves).
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: Option<&'a Value>, out: &mut Vec<&'a Value>) {
        for panel in list.and_then(Value::as_array).into_iter().flatten() {
            if panel["type"] == "row" {
                walk(panel.get("panels"), out);
            } else {
                out.push(panel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dashboard.get("panels"), &mut out);
    out
}

/// `expr` with Grafana's variables replaced by what Prometheus accepts:
/// `$__rate_interval` and `$__interval` by `1m`, `$__range` by `5m`,
/// `$instance`/`${instance}` (used as `instance=~"$instance"`) by `.*`.
pub fn substitute_grafana_variables(expr: &str) -> String {
    GRAFANA_SUBSTITUTIONS
        .iter()
        .fold(expr.to_string(), |e, (var, value)| e.replace(var, value))
}

/// Every panel target's `expr` as written in the dashboards, with where it
/// is: `pgcache-overview.json: panel "Hit ratio" target A`.
pub fn raw_dashboard_expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for file in DASHBOARD_FILES {
        let dashboard = load_dashboard(file);
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or("(untitled)");
            for target in panel["targets"].as_array().into_iter().flatten() {
                let ref_id = target["refId"].as_str().unwrap_or("?");
                let expr = target["expr"].as_str().unwrap_or("");
                out.push((
                    format!("{file}: panel {title:?} target {ref_id}"),
                    expr.to_string(),
                ));
            }
        }
    }
    out
}

/// Every panel target's `expr`, Grafana variables substituted.
pub fn dashboard_expressions() -> Vec<(String, String)> {
    raw_dashboard_expressions()
        .into_iter()
        .map(|(at, expr)| (at, substitute_grafana_variables(&expr)))
        .collect()
}

/// The dashboards' annotation queries (Prometheus ones), variables
/// substituted. They end in `> 0` by nature, so they are not in the live check.
pub fn annotation_expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for file in DASHBOARD_FILES {
        let dashboard = load_dashboard(file);
        for annotation in dashboard["annotations"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(expr) = annotation["expr"].as_str() {
                let name = annotation["name"].as_str().unwrap_or("?");
                out.push((
                    format!("{file}: annotation {name:?}"),
                    substitute_grafana_variables(expr),
                ));
            }
        }
    }
    out
}

/// One rule of `alerts.yml`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `alert: NAME` or `record: NAME`.
    pub name: String,
    pub is_alert: bool,
    /// The expression, PromQL comments removed.
    pub expr: String,
    /// 1-based line of the `alert:`/`record:` key.
    pub line: usize,
}

/// The rules of `alerts.yml`.
pub fn alert_rules() -> Vec<Rule> {
    let path = alerts_path();
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    parse_rules(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Reads the rules out of a Prometheus rule file. Not a YAML parser: it
/// understands the subset rule files are written in, and says so when it
/// meets anything else. A rule starts at `- alert: NAME` or `- record: NAME`;
/// its `expr:` is a plain scalar (possibly continued on more-indented lines),
/// a one-line quoted scalar, or a block scalar (`|`, `|-`, `>`, `>-`, ...).
/// Line breaks are kept (PromQL does not care), and so PromQL `#` comments
/// are removed.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut rules: Vec<Rule> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let item = trimmed.strip_prefix("- ").map(str::trim_start);
        let kind = item.and_then(|rest| {
            rest.strip_prefix("alert:")
                .map(|n| (true, n))
                .or_else(|| rest.strip_prefix("record:").map(|n| (false, n)))
        });
        if let Some((is_alert, name)) = kind {
            rules.push(Rule {
                name: unquote(strip_yaml_comment(name).trim())
                    .map_err(|e| format!("line {}: {e}", i + 1))?,
                is_alert,
                expr: String::new(),
                line: i + 1,
            });
        }
        let key = item.unwrap_or(trimmed);
        if let Some(value) = key.strip_prefix("expr:") {
            let key_indent = line.len() - key.len();
            let rule = rules
                .last_mut()
                .ok_or_else(|| format!("line {}: expr: before any alert: or record:", i + 1))?;
            if !rule.expr.is_empty() {
                return Err(format!("line {}: a second expr: for {}", i + 1, rule.name));
            }
            let (expr, next) = scalar(&lines, i, key_indent, value)?;
            rule.expr = remove_promql_comments(&expr).trim().to_string();
            if rule.expr.is_empty() {
                return Err(format!("line {}: empty expr for {}", i + 1, rule.name));
            }
            i = next;
            continue;
        }
        i += 1;
    }
    if let Some(rule) = rules.iter().find(|r| r.expr.is_empty()) {
        return Err(format!("line {}: {} has no expr:", rule.line, rule.name));
    }
    Ok(rules)
}

/// The scalar value of the key on line `at` (indented `key_indent`), whose
/// text after the colon is `value`; returns it and the next line to read.
fn scalar(
    lines: &[&str],
    at: usize,
    key_indent: usize,
    value: &str,
) -> Result<(String, usize), String> {
    let value = value.trim();
    let more_indented = |l: &str| l.trim().is_empty() || indent(l) > key_indent;
    let mut next = at + 1;
    if value.starts_with('|') || value.starts_with('>') {
        let header = strip_yaml_comment(value).trim();
        if !header[1..].chars().all(|c| matches!(c, '-' | '+')) {
            return Err(format!(
                "line {}: block scalar header {header:?} is not supported (no indentation indicator)",
                at + 1
            ));
        }
        let mut body = Vec::new();
        while next < lines.len() && more_indented(lines[next]) {
            body.push(lines[next]);
            next += 1;
        }
        let common = body
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| indent(l))
            .min()
            .unwrap_or(0);
        let text: Vec<&str> = body
            .iter()
            .map(|l| if l.len() >= common { &l[common..] } else { "" })
            .collect();
        return Ok((text.join("\n"), next));
    }
    if value.starts_with('"') || value.starts_with('\'') {
        let value = strip_yaml_comment(value).trim();
        return Ok((
            unquote(value).map_err(|e| format!("line {}: {e}", at + 1))?,
            next,
        ));
    }
    // A plain scalar, maybe continued on more-indented lines.
    let mut text = strip_yaml_comment(value).trim().to_string();
    while next < lines.len() && more_indented(lines[next]) {
        let part = strip_yaml_comment(lines[next]).trim();
        if !part.is_empty() {
            text.push('\n');
            text.push_str(part);
        }
        next += 1;
    }
    Ok((text, next))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// A YAML scalar without its quotes: `"..."` (with `\"` and `\\`), `'...'`
/// (with `''`), or plain.
fn unquote(value: &str) -> Result<String, String> {
    if let Some(inner) = value.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .ok_or_else(|| format!("unterminated or multi-line double-quoted scalar {value}"))?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(c @ ('"' | '\\' | '/')) => out.push(c),
                    other => return Err(format!("unsupported escape \\{other:?} in {value}")),
                }
            } else {
                out.push(c);
            }
        }
        Ok(out)
    } else if let Some(inner) = value.strip_prefix('\'') {
        let inner = inner
            .strip_suffix('\'')
            .ok_or_else(|| format!("unterminated or multi-line single-quoted scalar {value}"))?;
        Ok(inner.replace("''", "'"))
    } else {
        Ok(value.to_string())
    }
}

/// A YAML line without its trailing ` # comment` (outside quotes).
fn strip_yaml_comment(s: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev.is_whitespace() => return &s[..i],
            None => {}
        }
        prev = c;
    }
    s
}

/// PromQL without `#` comments (outside string literals).
pub fn remove_promql_comments(expr: &str) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut in_comment = false;
    for c in expr.chars() {
        if in_comment {
            if c == '\n' {
                in_comment = false;
                out.push(c);
            }
            continue;
        }
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q != '`' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
            None if c == '#' => {
                in_comment = true;
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

/// Every alert (and recording) rule's `expr`, with where it is:
/// `alerts.yml: alert HitRatioCollapse`.
pub fn alert_expressions() -> Vec<(String, String)> {
    alert_rules()
        .into_iter()
        .map(|r| {
            let kind = if r.is_alert { "alert" } else { "record" };
            (format!("{ALERTS_FILE}: {kind} {}", r.name), r.expr)
        })
        .collect()
}

/// Every expression of every dashboard panel target and every alert rule,
/// Grafana variables substituted (see [`substitute_grafana_variables`]).
/// Alert expressions are as written, threshold included: they return
/// nothing while pgcache is healthy. For the "returns at least one series"
/// check use [`live_check_expressions`].
pub fn all_promql_expressions() -> Vec<(String, String)> {
    let mut out = dashboard_expressions();
    out.extend(alert_expressions());
    out
}

/// Each alert rule's `expr` with its final comparison removed (recording
/// rules as they are), so that it returns the signal the alert compares
/// against its threshold, healthy or not.
///
/// How: `alerts.yml` writes every alert as `SIGNAL OP NUMBER` where OP is
/// one of `== != < > <= >=` without `bool`, at the top level (outside any
/// parentheses, brackets, braces and strings), as the expression's last
/// operator, and SIGNAL has no top-level `and`/`or`/`unless` (which bind
/// looser than comparisons). [`strip_final_comparison`] finds that last
/// top-level comparison, checks what follows it is a number and nothing
/// else, and returns SIGNAL; it panics naming the rule otherwise.
/// `(...) < 0.2` gives `(...)`; `up{job="pgcache"} == 0` gives
/// `up{job="pgcache"}`.
pub fn alert_expressions_without_threshold() -> Vec<(String, String)> {
    alert_rules()
        .into_iter()
        .map(|r| {
            if r.is_alert {
                let signal = strip_final_comparison(&r.expr)
                    .unwrap_or_else(|e| panic!("{ALERTS_FILE}: alert {}: {e}", r.name));
                (
                    format!("{ALERTS_FILE}: alert {} without threshold", r.name),
                    signal,
                )
            } else {
                (format!("{ALERTS_FILE}: record {}", r.name), r.expr)
            }
        })
        .collect()
}

/// What a live Prometheus scraping a pgcache that has served hits, misses,
/// bypasses, an invalidation and an eviction must answer with at least one
/// series each: every panel target, and every alert's signal
/// ([`alert_expressions_without_threshold`]).
pub fn live_check_expressions() -> Vec<(String, String)> {
    let mut out = dashboard_expressions();
    out.extend(alert_expressions_without_threshold());
    out
}

/// A lexical view of PromQL: for each byte, whether it is at the top level
/// (outside parentheses, brackets, braces and string literals).
fn top_level_mask(expr: &str) -> Vec<bool> {
    let mut mask = Vec::with_capacity(expr.len());
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    for &b in expr.as_bytes() {
        let mut top = false;
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if b == b'\\' && q != b'`' {
                    escaped = true;
                } else if b == q {
                    quote = None;
                }
            }
            None => match b {
                b'"' | b'\'' | b'`' => quote = Some(b),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                _ => top = depth == 0,
            },
        }
        mask.push(top);
    }
    mask
}

/// `SIGNAL OP NUMBER` -> `SIGNAL`; see [`alert_expressions_without_threshold`].
pub fn strip_final_comparison(expr: &str) -> Result<String, String> {
    let expr = remove_promql_comments(expr);
    let expr = expr.trim();
    let bytes = expr.as_bytes();
    let mask = top_level_mask(expr);
    let mut last: Option<(usize, usize)> = None; // (start, len) of the operator
    let mut i = 0;
    while i < bytes.len() {
        if mask[i] {
            let two = bytes
                .get(i..i + 2)
                .filter(|_| mask.get(i + 1) == Some(&true));
            let len = match (bytes[i], two) {
                (_, Some(b"==" | b"!=" | b"<=" | b">=")) => 2,
                (b'<' | b'>', _) => 1,
                _ => 0,
            };
            if len > 0 {
                last = Some((i, len));
                i += len;
                continue;
            }
        }
        i += 1;
    }
    let (at, len) = last.ok_or("no comparison at the top level")?;
    let signal = expr[..at].trim();
    let threshold = expr[at + len..].trim();
    if threshold.starts_with("bool") {
        return Err(format!(
            "the last top-level comparison is a `bool` one: `{}`",
            &expr[at..]
        ));
    }
    if threshold.parse::<f64>().is_err() {
        return Err(format!(
            "the last top-level comparison is not followed by a number alone: `{}`",
            &expr[at..]
        ));
    }
    let signal_mask = &mask[..signal.len()];
    for word in ["and", "or", "unless"] {
        if top_level_words(signal, signal_mask).any(|w| w.eq_ignore_ascii_case(word)) {
            return Err(format!(
                "`{word}` at the top level of the signal: the comparison would not be the outermost operator"
            ));
        }
    }
    if signal.is_empty() {
        return Err("nothing before the comparison".to_string());
    }
    Ok(signal.to_string())
}

/// Identifier-like words whose bytes are all at the top level.
fn top_level_words<'a>(expr: &'a str, mask: &'a [bool]) -> impl Iterator<Item = &'a str> + 'a {
    let bytes = expr.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if is_word(bytes[i]) {
            let start = i;
            while i < bytes.len() && is_word(bytes[i]) {
                i += 1;
            }
            if mask[start..i].iter().all(|&t| t) {
                words.push(&expr[start..i]);
            }
        } else {
            i += 1;
        }
    }
    words.into_iter()
}

/// Where a program is: on PATH, or in /usr/bin (Debian's prometheus package).
pub fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A program from Debian's `prometheus` package (`prometheus`, `promtool`),
/// or a panic saying how to install it.
pub fn prometheus_program(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| {
        panic!(
            "`{name}` is not on PATH nor in /usr/bin: install with apt-get install -y prometheus \
             (scripts/system-deps.sh does it)"
        )
    })
}

/// A port nobody listens on now, on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A running `prometheus`, killed (and its storage removed) on drop.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

/// Starts the real `prometheus` on a free port of 127.0.0.1, scraping
/// `scrape_target` (`host:port`, path `/metrics`) every second as job
/// `pgcache`, evaluating the rules in `rules` every second, with its storage
/// in a temporary directory. Returns once `/-/ready` answers 200; panics
/// (with Prometheus' log) if it does not within 60 s.
pub fn start_prometheus(scrape_target: &str, rules: &Path) -> Prometheus {
    start_prometheus_on(free_port(), scrape_target, rules)
}

/// [`start_prometheus`] on a given port (so that Prometheus can be told to
/// scrape itself).
pub fn start_prometheus_on(port: u16, scrape_target: &str, rules: &Path) -> Prometheus {
    let binary = prometheus_program("prometheus");
    let rules = rules
        .canonicalize()
        .unwrap_or_else(|e| panic!("rules file {}: {e}", rules.display()));
    let dir = temp_dir("pgcache-prometheus");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules}\n\
         scrape_configs:\n  - job_name: pgcache\n    static_configs:\n      - targets: [{target}]\n",
        rules = serde_json::to_string(&rules.to_string_lossy()).unwrap(),
        target = serde_json::to_string(scrape_target).unwrap(),
    );
    let config_path = dir.join("prometheus.yml");
    fs::write(&config_path, config).expect("write prometheus.yml");
    let log = fs::File::create(dir.join("prometheus.log")).expect("create prometheus.log");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = Command::new(&binary)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let mut prometheus = Prometheus { child, addr, dir };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = prometheus.child.try_wait() {
            panic!(
                "prometheus exited ({status}) before it was ready; its log:\n{}",
                prometheus.log()
            );
        }
        if let Ok((200, _)) = http_get(prometheus.addr, "/-/ready") {
            return prometheus;
        }
        if Instant::now() > deadline {
            panic!(
                "prometheus not ready on {} after 60 s; its log:\n{}",
                prometheus.addr,
                prometheus.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Prometheus {
    /// Where its HTTP API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The number of series (or 1 for a scalar or string) that instant query
    /// `expr` returns now; `Err` if Prometheus refuses it (a PromQL error) or
    /// cannot be reached.
    pub fn query(&self, expr: &str) -> Result<usize, String> {
        let data = self.api(&format!("/api/v1/query?query={}", percent_encode(expr)))?;
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => {
                Ok(data["result"].as_array().map(Vec::len).unwrap_or_default())
            }
            Some("scalar") | Some("string") => Ok(1),
            other => Err(format!("unexpected resultType {other:?}: {data}")),
        }
    }

    /// [`Prometheus::query`] repeated until it returns at least `min` series,
    /// for at most `timeout`; the last answer.
    pub fn query_until(&self, expr: &str, min: usize, timeout: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let answer = self.query(expr);
            if matches!(answer, Ok(n) if n >= min) || Instant::now() > deadline {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// GET `path` of the HTTP API; the `data` of a `"status": "success"`
    /// answer, or the error.
    pub fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) = http_get(self.addr, path)?;
        let json: Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {status} from {path}, not JSON ({e}): {body}"))?;
        if json["status"] == "success" {
            Ok(json["data"].clone())
        } else {
            Err(format!(
                "HTTP {status}: {}: {}",
                json["errorType"].as_str().unwrap_or("?"),
                json["error"].as_str().unwrap_or(&body)
            ))
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A new, empty directory under the system's temporary directory.
fn temp_dir(prefix: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A query-string value, percent-encoded (everything but unreserved bytes).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A blocking HTTP/1.1 GET: the status code and the body (de-chunked).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let fail = |e: std::io::Error| format!("GET http://{addr}{path}: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(fail)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(fail)?;
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .map_err(fail)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .map_err(fail)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(fail)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("GET http://{addr}{path}: no end of headers in the answer"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let mut head_lines = head.lines();
    let status = head_lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("GET http://{addr}{path}: bad status line in {head:?}"))?;
    let chunked = head_lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        body = dechunk(&body).map_err(|e| format!("GET http://{addr}{path}: {e}"))?;
    }
    Ok((status, String::from_utf8_lossy(&body).to_string()))
}

/// The payload of a `Transfer-Encoding: chunked` body.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line without CRLF")?;
        let size_text = String::from_utf8_lossy(&body[..eol]).to_string();
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|e| format!("bad chunk size {size_text:?}: {e}"))?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("truncated chunk".to_string());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}
