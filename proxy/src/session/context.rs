//! The session context: everything besides the statement and its parameters
//! that can change a result. Its digest is the first part of every cache key,
//! so two sessions share an entry only when they would get the same bytes.

use crate::bypass::Bypass;
use std::collections::BTreeMap;

use super::probe::Probed;
use crate::sql::SetCommand;
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
    /// Settings reported by the server with ParameterStatus (exact, incl. after ROLLBACK).
    reported: BTreeMap<String, String>,
    /// What the server said the session's state is, when it last said so and
    /// nothing that may have changed it was sent since; `None`: unknown, ask
    /// before using the cache (see `probe.rs`).
    probed: Option<Probed>,
    /// Why this session's state can never be modelled; nothing is cached for it.
    poisoned: Option<Bypass>,
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
            reported: BTreeMap::new(),
            probed: None,
            poisoned: None,
            digest: None,
        };
        if !startup.is_utf8() {
            // `params` reads such names and values as "": two sessions that
            // differ only there would share a key.
            ctx.poison(Bypass::StartupNotUtf8);
        }
        // Settings sent at startup need no modelling: the probe reads them
        // back from the server.
        for (name, _) in startup.params() {
            match name {
                "replication" => ctx.poison(Bypass::Replication),
                _ if name.starts_with("_pq_.") => ctx.poison(Bypass::ProtocolExtension),
                _ => {}
            }
        }
        ctx
    }

    pub fn on_parameter_status(&mut self, name: &str, value: &str) {
        if UNREPORTED_IN_KEY.contains(&name) {
            return;
        }
        if name == "standard_conforming_strings" && value != "on" {
            // The analyzer reads string literals the modern way only.
            self.poison(Bypass::StandardConformingStrings);
        }
        if self.reported.get(name).map(String::as_str) != Some(value) {
            self.reported.insert(name.to_string(), value.to_string());
            self.digest = None;
        }
    }

    pub fn poison(&mut self, reason: Bypass) {
        self.poisoned.get_or_insert(reason);
    }

    pub fn poisoned(&self) -> Option<Bypass> {
        self.poisoned
    }

    /// Whether a SET of `command` changes nothing that matters.
    pub fn is_harmless(command: &SetCommand) -> bool {
        match command {
            SetCommand::Set { name, .. } | SetCommand::Reset { name } => is_harmless_setting(name),
            _ => false,
        }
    }

    /// The server's answer to the probe.
    pub fn set_probed(&mut self, probed: Probed) {
        if self.probed.as_ref() != Some(&probed) {
            self.probed = Some(probed);
            self.digest = None;
        }
    }

    /// Something was sent that may change the session's state: it is
    /// unknown until the server is asked again.
    pub fn forget_state(&mut self) {
        if self.probed.take().is_some() {
            self.digest = None;
        }
    }

    pub fn probed(&self) -> Option<&Probed> {
        self.probed.as_ref()
    }

    /// The role whose name `"$user"` in search_path stands for.
    pub fn current_role(&self) -> Option<&str> {
        self.probed.as_ref().map(|p| p.current_user.as_str())
    }

    /// The session's search_path, as the server last said.
    pub fn search_path(&self) -> Option<Vec<String>> {
        self.probed
            .as_ref()
            .map(|p| split_search_path(&p.search_path))
    }

    /// The digest of everything above: the first part of every cache key.
    /// Only meaningful while the state is known.
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
        part(b"reported");
        for (k, v) in &self.reported {
            part(k.as_bytes());
            part(v.as_bytes());
        }
        match &self.probed {
            None => part(b"unknown"),
            Some(p) => {
                part(b"probed");
                part(p.search_path.as_bytes());
                part(p.current_user.as_bytes());
                part(p.session_user.as_bytes());
                part(p.settings.as_bytes());
            }
        }
        let d = *h.finalize().as_bytes();
        self.digest = Some(d);
        d
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The key depends on what the server says, not on what was sent:
    /// sessions that asked for the same state in different ways share
    /// entries, and nothing is known before the server was asked.
    #[test]
    fn the_key_is_what_the_server_said() {
        let probed = |path: &str, role: &str| Probed {
            search_path: path.into(),
            read_committed: true,
            current_user: role.into(),
            session_user: "bob".into(),
            temporary_relations: false,
            settings: "abc".into(),
        };
        let mut a = Context::from_startup(&startup(&[(b"user", b"bob"), (b"database", b"shop")]));
        let mut b = Context::from_startup(&startup(&[
            (b"user", b"bob"),
            (b"database", b"shop"),
            (b"options", b"-c search_path=x"),
        ]));
        assert_eq!(a.search_path(), None);
        a.set_probed(probed("x", "bob"));
        b.set_probed(probed("x", "bob"));
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.search_path(), Some(vec!["x".to_string()]));
        b.set_probed(probed("x", "alice"));
        assert_ne!(a.digest(), b.digest());
        let before = a.digest();
        a.forget_state();
        assert_eq!(a.current_role(), None);
        assert_ne!(a.digest(), before);
    }

    /// Names or values that are not UTF-8 all read as "", so such a session
    /// gets no cache: `jos\xe9` and `jos\xe8` must not share entries.
    #[test]
    fn non_utf8_startup_is_not_cached() {
        let ctx = Context::from_startup(&startup(&[(b"user", b"jos\xe9"), (b"database", b"d")]));
        assert_eq!(ctx.poisoned(), Some(Bypass::StartupNotUtf8));
        let ctx = Context::from_startup(&startup(&[(b"user", b"u"), (b"\xff", b"v")]));
        assert_eq!(ctx.poisoned(), Some(Bypass::StartupNotUtf8));
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
