//! Running SQL as the superuser, and the common setup statements built on it.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::cluster::Cluster;
use crate::config::{HbaMethod, PasswordKind, MD5_GROUP, PASSWORD_GROUP};
use crate::error::{Error, Result};
use crate::quote;

impl Cluster {
    /// Runs `sql` as the superuser in database `db` with psql over the unix
    /// socket (`psql -X -q -A -t -v ON_ERROR_STOP=1 -f -`), and returns what
    /// it printed, trimmed: unaligned, tuples only, so `select 1` gives
    /// `"1"` and several rows come one per line, columns separated by `|`.
    ///
    /// The script may hold several statements; each runs on its own (so
    /// `CREATE DATABASE` works), and the first error stops it and is returned
    /// with psql's stderr.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String> {
        let conninfo = format!(
            "host={} port={} user={} dbname={}",
            quote::conninfo_value(&self.socket_dir.to_string_lossy()),
            self.port,
            quote::conninfo_value(self.superuser()),
            quote::conninfo_value(db),
        );
        let mut cmd = Command::new(&self.programs.psql);
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            "-",
            "-d",
        ])
        .arg(conninfo)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        // PGOPTIONS, PGSSLMODE and friends from the caller's environment
        // would change what the script does.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PG") {
                cmd.env_remove(key);
            }
        }
        let psql = self.programs.psql.display().to_string();
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("run {psql}"), e))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // Feed the script from another thread: psql may fill its stdout pipe
        // before it has read all of a long script. A write error only means
        // psql exited early; its status and stderr say why.
        let output = std::thread::scope(|scope| {
            scope.spawn(move || {
                let _ = stdin.write_all(sql.as_bytes());
            });
            child.wait_with_output()
        });
        let output = output.map_err(|e| Error::io(format!("run {psql}"), e))?;
        if !output.status.success() {
            return Err(Error::CommandFailed {
                program: format!("psql (database {db:?})"),
                status: output.status.to_string(),
                output: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// `CREATE DATABASE name` unless it exists. Safe to call from several
    /// tests at once.
    pub fn create_database(&self, name: &str) -> Result<()> {
        self.create_database_with_owner(name, None)
    }

    /// `CREATE DATABASE name OWNER owner` unless a database of that name
    /// exists (an existing one is left as it is).
    pub fn create_database_with_owner(&self, name: &str, owner: Option<&str>) -> Result<()> {
        if self.database_exists(name)? {
            return Ok(());
        }
        let owner = owner
            .map(|o| format!(" OWNER {}", quote::ident(o)))
            .unwrap_or_default();
        match self.psql(
            "postgres",
            &format!("CREATE DATABASE {}{owner}", quote::ident(name)),
        ) {
            Ok(_) => Ok(()),
            // Another test created it between our check and our CREATE.
            Err(_) if self.database_exists(name)? => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn database_exists(&self, name: &str) -> Result<bool> {
        let found = self.psql(
            "postgres",
            &format!(
                "SELECT 1 FROM pg_database WHERE datname = {}",
                quote::literal(name)
            ),
        )?;
        Ok(found == "1")
    }

    /// Creates a login role with `password` stored as `kind`, or updates the
    /// password of an existing one. In an [`Auth::Scram`](crate::Auth::Scram)
    /// cluster the role then authenticates over TCP with the matching method:
    /// SCRAM for [`PasswordKind::Scram`], MD5 for [`PasswordKind::Md5`].
    pub fn create_user(&self, name: &str, password: &str, kind: PasswordKind) -> Result<()> {
        self.create_user_with_method(name, password, kind, kind.default_method())
    }

    /// Like [`create_user`](Cluster::create_user), choosing the pg_hba.conf
    /// method separately from how the password is stored, e.g.
    /// `(PasswordKind::Scram, HbaMethod::Password)` for cleartext password
    /// auth. The method is selected through membership in the `md5_users` /
    /// `password_users` groups (PostgreSQL 15 cannot match user-name patterns
    /// in pg_hba.conf); the role is removed from the other group.
    pub fn create_user_with_method(
        &self,
        name: &str,
        password: &str,
        kind: PasswordKind,
        method: HbaMethod,
    ) -> Result<()> {
        let role = quote::ident(name);
        let mut sql = format!(
            "SET password_encryption = {encryption};\n\
             DO $testkit$ BEGIN\n\
               CREATE ROLE {role} LOGIN;\n\
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;\n\
             END $testkit$;\n\
             ALTER ROLE {role} LOGIN PASSWORD {password};\n",
            encryption = quote::literal(kind.encryption()),
            password = quote::literal(password),
        );
        for group in [MD5_GROUP, PASSWORD_GROUP] {
            let group = quote::ident(group);
            sql.push_str(&format!("REVOKE {group} FROM {role};\n"));
        }
        if let Some(group) = method.group() {
            sql.push_str(&format!("GRANT {} TO {role};\n", quote::ident(group)));
        }
        self.psql("postgres", &sql).map(drop)
    }
}
