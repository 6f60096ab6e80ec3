//! The session context: everything besides the statement and its parameters
//! that can change a result. Its digest is the first part of every cache key,
//! so two sessions share an entry only when they would get the same bytes.

use std::collections::BTreeMap;

use crate::sql::{SetCommand, SetValue};
use crate::wire::startup::Startup;

/// ParameterStatus values that cannot change a result.
const UNREPORTED_IN_KEY: &[&str] = &[
    "application_name",
    "in_hot_standby",
    "scram_iterations",
    "server_version",
    "default_transaction_read_only",
];

/// Settings that change how a statement runs but never what it returns; a SET
/// of one of these changes nothing the cache cares about.
fn is_harmless_setting(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "application_name",
        "statement_timeout",
        "lock_timeout",
        "idle_in_transaction_session_timeout",
        "idle_session_timeout",
        "client_min_messages",
        "work_mem",
        "maintenance_work_mem",
        "temp_buffers",
        "synchronous_commit",
        "random_page_cost",
        "seq_page_cost",
        "effective_cache_size",
        "effective_io_concurrency",
        "plan_cache_mode",
        "from_collapse_limit",
        "join_collapse_limit",
        "default_statistics_target",
        "commit_delay",
        "commit_siblings",
        "vacuum_cost_delay",
        "vacuum_cost_limit",
        "max_parallel_workers_per_gather",
        "max_parallel_maintenance_workers",
        "parallel_leader_participation",
        "constraint_exclusion",
        "cursor_tuple_fraction",
        "jit",
    ];
    const PREFIXES: &[&str] = &[
        "log_",
        "enable_",
        "cpu_",
        "geqo",
        "jit_",
        "parallel_",
        "trace_",
        "debug_",
        "track_",
    ];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

#[derive(Debug, Clone)]
pub struct Context {
    pub user: String,
    pub database: String,
    /// Startup parameters that are settings (not user/database/application_name).
    startup: BTreeMap<String, String>,
    /// Settings reported by the server with ParameterStatus (exact, incl. after ROLLBACK).
    reported: BTreeMap<String, String>,
    /// Settings changed by SET statements the proxy followed.
    settings: BTreeMap<String, String>,
    /// Why this session's state can no longer be modelled; nothing is cached for it.
    poisoned: Option<&'static str>,
    /// The session default isolation is known to be READ COMMITTED.
    pub default_read_committed: bool,
    digest: Option<[u8; 32]>,
}

impl Context {
    pub fn from_startup(startup: &Startup) -> Context {
        let user = startup.param("user").unwrap_or_default().to_string();
        let database = startup
            .param("database")
            .filter(|d| !d.is_empty())
            .unwrap_or(&user)
            .to_string();
        let mut ctx = Context {
            user,
            database,
            startup: BTreeMap::new(),
            reported: BTreeMap::new(),
            settings: BTreeMap::new(),
            poisoned: None,
            default_read_committed: true,
            digest: None,
        };
        if !startup.is_utf8() {
            // `params` reads such names and values as "": two sessions that
            // differ only there would share a key.
            ctx.poison("startup_not_utf8");
        }
        // As the server reads the packet: the last `options` only, then the
        // other settings in order, overriding it (and each other).
        if let Some(options) = startup.param("options") {
            match parse_options(options) {
                Some(pairs) => {
                    for (n, v) in pairs {
                        ctx.startup_setting(&n, &v);
                    }
                }
                None => ctx.poison("startup_options"),
            }
        }
        for (name, value) in startup.params() {
            match name {
                "user"
                | "database"
                | "options"
                | "application_name"
                | "fallback_application_name" => {}
                "replication" => ctx.poison("replication"),
                _ if name.starts_with("_pq_.") => ctx.poison("protocol_extension"),
                _ => ctx.startup_setting(name, value),
            }
        }
        ctx
    }

    fn startup_setting(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        if is_harmless_setting(&name) {
            return;
        }
        if name == "default_transaction_isolation" && !is_read_committed(value) {
            self.default_read_committed = false;
        }
        self.startup.insert(name, value.to_string());
    }

    pub fn on_parameter_status(&mut self, name: &str, value: &str) {
        if UNREPORTED_IN_KEY.contains(&name) {
            return;
        }
        if name == "standard_conforming_strings" && value != "on" {
            // The analyzer reads string literals the modern way only.
            self.poison("standard_conforming_strings");
        }
        if self.reported.get(name).map(String::as_str) != Some(value) {
            self.reported.insert(name.to_string(), value.to_string());
            self.digest = None;
        }
    }

    pub fn poison(&mut self, reason: &'static str) {
        self.poisoned.get_or_insert(reason);
    }

    pub fn poisoned(&self) -> Option<&'static str> {
        self.poisoned
    }

    /// Whether a SET of `command` changes nothing that matters.
    pub fn is_harmless(command: &SetCommand) -> bool {
        match command {
            SetCommand::Set { name, .. } | SetCommand::Reset { name } => is_harmless_setting(name),
            _ => false,
        }
    }

    /// Applies a SET that the server acknowledged, issued alone outside a
    /// transaction block (so no ROLLBACK can undo it).
    pub fn apply(&mut self, command: &SetCommand) {
        self.digest = None;
        match command {
            SetCommand::Set { local: true, .. }
            | SetCommand::SetRole { local: true, .. }
            | SetCommand::SetSessionAuthorization { local: true, .. } => {}
            SetCommand::Set { name, value, .. } => {
                if name == "default_transaction_isolation" {
                    self.default_read_committed =
                        matches!(value, SetValue::Value(v) if is_read_committed(v));
                }
                match value {
                    SetValue::Default => {
                        self.settings.remove(name);
                    }
                    SetValue::Value(v) => {
                        self.settings.insert(name.clone(), v.clone());
                    }
                }
            }
            SetCommand::Reset { name } => {
                self.settings.remove(name);
            }
            SetCommand::ResetAll | SetCommand::DiscardAll => {
                self.settings.clear();
            }
            SetCommand::SetRole { role, .. } => match role {
                Some(r) => {
                    self.settings.insert("role".into(), r.clone());
                }
                None => {
                    self.settings.remove("role");
                }
            },
            SetCommand::SetSessionAuthorization { user, .. } => {
                self.settings.remove("role");
                match user {
                    Some(u) => {
                        self.settings
                            .insert("session_authorization".into(), u.clone());
                    }
                    None => {
                        self.settings.remove("session_authorization");
                    }
                }
            }
            SetCommand::SessionCharacteristics { isolation } => {
                self.default_read_committed =
                    matches!(isolation, None | Some(crate::sql::Isolation::ReadCommitted));
            }
        }
    }

    /// The role whose name `"$user"` in search_path stands for.
    pub fn current_role(&self) -> &str {
        self.settings
            .get("role")
            .or_else(|| self.settings.get("session_authorization"))
            .or_else(|| self.reported.get("session_authorization"))
            .map(String::as_str)
            .unwrap_or(&self.user)
    }

    /// The session's search_path, if it was set (by SET, startup, or reported).
    pub fn search_path(&self) -> Option<Vec<String>> {
        let raw = self
            .settings
            .get("search_path")
            .or_else(|| self.startup.get("search_path"))
            .or_else(|| self.reported.get("search_path"))?;
        Some(split_search_path(raw))
    }

    /// The digest of everything above: the first part of every cache key.
    pub fn digest(&mut self) -> [u8; 32] {
        if let Some(d) = self.digest {
            return d;
        }
        let mut h = blake3::Hasher::new();
        let mut part = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        part(self.database.as_bytes());
        part(self.user.as_bytes());
        for (section, map) in [
            ("startup", &self.startup),
            ("reported", &self.reported),
            ("set", &self.settings),
        ] {
            part(section.as_bytes());
            for (k, v) in map {
                part(k.as_bytes());
                part(v.as_bytes());
            }
        }
        let d = *h.finalize().as_bytes();
        self.digest = Some(d);
        d
    }
}

fn is_read_committed(value: &str) -> bool {
    value
        .trim()
        .trim_matches('\'')
        .eq_ignore_ascii_case("read committed")
}

/// Splits a search_path value: `"$user", public, "My Schema"`.
pub fn split_search_path(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    for item in raw.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if let Some(quoted) = item.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            out.push(quoted.replace("\"\"", "\""));
        } else {
            out.push(item.to_ascii_lowercase());
        }
    }
    out
}

/// Parses the `options` startup parameter: `-c name=value` and `--name=value`,
/// separated by spaces, with backslash escapes. `None` if anything else is there.
fn parse_options(options: &str) -> Option<Vec<(String, String)>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.push(chars.next()?),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut pairs = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let setting = if w == "-c" {
            it.next()?
        } else if let Some(s) = w.strip_prefix("--").or_else(|| w.strip_prefix("-c")) {
            s.to_string()
        } else {
            return None;
        };
        let (name, value) = setting.split_once('=')?;
        pairs.push((name.replace('-', "_"), value.to_string()));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_startup_options() {
        assert_eq!(
            parse_options("-c search_path=a,b --statement-timeout=5 -cwork_mem=1MB"),
            Some(vec![
                ("search_path".into(), "a,b".into()),
                ("statement_timeout".into(), "5".into()),
                ("work_mem".into(), "1MB".into()),
            ])
        );
        assert_eq!(
            parse_options(r"-c search_path=my\ schema"),
            Some(vec![("search_path".into(), "my schema".into())])
        );
        assert_eq!(parse_options("-X"), None);
    }

    fn startup(params: &[(&[u8], &[u8])]) -> Startup {
        let mut body = (3u32 << 16).to_be_bytes().to_vec();
        for (n, v) in params {
            for part in [n, v] {
                body.extend_from_slice(part);
                body.push(0);
            }
        }
        body.push(0);
        let mut raw = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        raw.extend_from_slice(&body);
        match crate::wire::StartupPacket::parse(raw.into()) {
            Ok(crate::wire::StartupPacket::Startup(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    /// The context reads a startup packet as PostgreSQL does (checked against
    /// a real server): the last `user`, `database` and `options` count, and
    /// settings sent as parameters override `options`, whatever the order.
    #[test]
    fn startup_params_read_as_the_server_reads_them() {
        let mut ctx = Context::from_startup(&startup(&[
            (b"user", b"alice"),
            (b"search_path", b"bbb"),
            (b"user", b"bob"),
            (b"database", b"a"),
            (b"database", b"shop"),
            (b"options", b"-c search_path=aaa -c datestyle=German"),
            (b"options", b"-c timezone=UTC -c search_path=ccc"),
        ]));
        assert_eq!((ctx.user.as_str(), ctx.database.as_str()), ("bob", "shop"));
        assert_eq!(ctx.search_path(), Some(vec!["bbb".to_string()]));
        assert_eq!(ctx.poisoned(), None);
        let mut plain = Context::from_startup(&startup(&[
            (b"user", b"bob"),
            (b"database", b"shop"),
            (b"timezone", b"UTC"),
            (b"search_path", b"bbb"),
        ]));
        assert_eq!(ctx.digest(), plain.digest());
    }

    /// Names or values that are not UTF-8 all read as "", so such a session
    /// gets no cache: `jos\xe9` and `jos\xe8` must not share entries.
    #[test]
    fn non_utf8_startup_is_not_cached() {
        let ctx = Context::from_startup(&startup(&[(b"user", b"jos\xe9"), (b"database", b"d")]));
        assert_eq!(ctx.poisoned(), Some("startup_not_utf8"));
        let ctx = Context::from_startup(&startup(&[(b"user", b"u"), (b"\xff", b"v")]));
        assert_eq!(ctx.poisoned(), Some("startup_not_utf8"));
        let ctx = Context::from_startup(&startup(&[(b"user", b"u"), (b"search_path", b"x")]));
        assert_eq!(ctx.poisoned(), None);
    }

    #[test]
    fn splits_search_path() {
        assert_eq!(
            split_search_path(r#""$user", Public, "My ""S""""#),
            vec!["$user", "public", r#"My "S""#]
        );
    }
}
