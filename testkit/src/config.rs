//! What a cluster is configured with: the options callers choose, and the
//! postgresql.conf and pg_hba.conf text derived from them.

use std::path::Path;

use crate::quote;

/// How TCP clients authenticate. Unix-socket connections (used by
/// [`Cluster::psql`](crate::Cluster::psql)) are always `trust`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    /// Every TCP connection is accepted without a password.
    #[default]
    Trust,
    /// TCP connections must authenticate. By default with SCRAM-SHA-256;
    /// members of the `md5_users` group with `md5`, members of
    /// `password_users` with `password` (cleartext). See
    /// [`Cluster::create_user_with_method`](crate::Cluster::create_user_with_method).
    Scram,
}

/// How to start a [`Cluster`](crate::Cluster).
///
/// ```
/// use testkit::{Auth, ClusterOptions};
/// let opts = ClusterOptions {
///     auth: Auth::Scram,
///     settings: vec![("log_statement".into(), "all".into())],
///     ..ClusterOptions::default()
/// };
/// # let _ = opts;
/// ```
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// Authentication for TCP connections.
    pub auth: Auth,
    /// Extra postgresql.conf settings as `(name, value)`, written after (so
    /// overriding) the testkit's own. Values are quoted for you: write
    /// `("work_mem", "64MB")`, not `"'64MB'"`.
    pub settings: Vec<(String, String)>,
    /// PEM certificate and key: the server then accepts TCP connections over
    /// TLS only (`ssl = on`, `hostssl` lines in pg_hba.conf).
    pub tls: Option<(String, String)>,
}

impl ClusterOptions {
    /// Options for a SCRAM cluster with no extra settings.
    pub fn scram() -> Self {
        ClusterOptions {
            auth: Auth::Scram,
            ..ClusterOptions::default()
        }
    }

    /// TLS-only TCP connections with this PEM certificate and key (builder style).
    pub fn tls_only(mut self, cert_pem: impl Into<String>, key_pem: impl Into<String>) -> Self {
        self.tls = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Adds one postgresql.conf setting (builder style).
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }
}

/// How a role's password is stored in `pg_authid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordKind {
    /// A `SCRAM-SHA-256$...` verifier.
    Scram,
    /// An `md5...` hash (needed for `md5` authentication to really be MD5:
    /// with a SCRAM verifier, PostgreSQL upgrades `md5` to SCRAM).
    Md5,
}

/// Which pg_hba.conf method a role authenticates with over TCP in an
/// [`Auth::Scram`] cluster (in an [`Auth::Trust`] cluster it does not matter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HbaMethod {
    /// `scram-sha-256`, the default for every role.
    Scram,
    /// `md5`: the role is made a member of the `md5_users` group.
    Md5,
    /// `password` (cleartext): the role is made a member of `password_users`.
    Password,
}

impl PasswordKind {
    /// The `password_encryption` value that stores this kind.
    pub(crate) fn encryption(self) -> &'static str {
        match self {
            PasswordKind::Scram => "scram-sha-256",
            PasswordKind::Md5 => "md5",
        }
    }

    /// The method a role with this kind of password authenticates with, when
    /// the caller does not say.
    pub(crate) fn default_method(self) -> HbaMethod {
        match self {
            PasswordKind::Scram => HbaMethod::Scram,
            PasswordKind::Md5 => HbaMethod::Md5,
        }
    }
}

/// Group whose members authenticate with `md5`.
pub(crate) const MD5_GROUP: &str = "md5_users";
/// Group whose members authenticate with `password`.
pub(crate) const PASSWORD_GROUP: &str = "password_users";

impl HbaMethod {
    /// The group that selects this method in pg_hba.conf, if any.
    pub(crate) fn group(self) -> Option<&'static str> {
        match self {
            HbaMethod::Scram => None,
            HbaMethod::Md5 => Some(MD5_GROUP),
            HbaMethod::Password => Some(PASSWORD_GROUP),
        }
    }
}

/// The lines appended to initdb's postgresql.conf. Later lines win, so the
/// caller's settings come last.
pub(crate) fn server_settings(port: u16, socket_dir: &Path, extra: &[(String, String)]) -> String {
    let socket_dir = socket_dir.to_string_lossy();
    let mut conf = format!(
        "\n# ---- added by pgcache-testkit ----\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = {socket_dir}\n\
         max_connections = 200\n\
         wal_level = logical\n\
         fsync = off\n\
         synchronous_commit = off\n\
         wal_writer_delay = 10ms\n\
         full_page_writes = off\n\
         password_encryption = 'scram-sha-256'\n\
         logging_collector = off\n\
         log_destination = 'stderr'\n\
         log_line_prefix = '%m [%p] %q%u@%d '\n",
        socket_dir = quote::conf_value(&socket_dir),
    );
    for (name, value) in extra {
        conf.push_str(&format!("{name} = {}\n", quote::conf_value(value)));
    }
    conf
}

/// The whole pg_hba.conf. Group lines come first because the first matching
/// line wins; a `+group` line whose group does not exist (yet) simply does
/// not match.
pub(crate) fn hba(auth: Auth, tls_only: bool) -> String {
    let host = if tls_only { "hostssl" } else { "host" };
    let mut rules: Vec<(String, &str)> = Vec::new();
    match auth {
        Auth::Trust => rules.push(("all".into(), "trust")),
        Auth::Scram => {
            rules.push((format!("+{MD5_GROUP}"), "md5"));
            rules.push((format!("+{PASSWORD_GROUP}"), "password"));
            rules.push(("all".into(), "scram-sha-256"));
        }
    }
    let mut hba = String::from(
        "# written by pgcache-testkit\n\
         # TYPE DATABASE     USER            ADDRESS       METHOD\n\
         local  all          all                           trust\n\
         local  replication  all                           trust\n",
    );
    for database in ["all", "replication"] {
        for (user, method) in &rules {
            for address in ["127.0.0.1/32", "::1/128"] {
                hba.push_str(&format!(
                    "{host:<8}{database:<12} {user:<15} {address:<13} {method}\n"
                ));
            }
        }
    }
    hba
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_hba_puts_group_lines_first() {
        let hba = hba(Auth::Scram, false);
        let md5 = hba.find("+md5_users").unwrap();
        let password = hba.find("+password_users").unwrap();
        let scram = hba.find("scram-sha-256").unwrap();
        assert!(md5 < password && password < scram, "{hba}");
        let host_lines = hba.lines().filter(|l| l.starts_with("host"));
        assert!(host_lines.clone().all(|l| !l.ends_with("trust")), "{hba}");
        assert_eq!(host_lines.count(), 12, "{hba}");
    }

    #[test]
    fn trust_hba_trusts_tcp() {
        let hba = hba(Auth::Trust, false);
        assert!(hba
            .lines()
            .filter(|l| l.starts_with("host"))
            .all(|l| l.ends_with("trust")));
    }

    #[test]
    fn caller_settings_come_last_and_quoted() {
        let conf = server_settings(
            5555,
            Path::new("/tmp/s"),
            &[("work_mem".into(), "64MB".into())],
        );
        assert!(conf.contains("port = 5555\n"));
        assert!(conf.contains("unix_socket_directories = '/tmp/s'\n"));
        assert!(conf.ends_with("work_mem = '64MB'\n"));
    }
}
