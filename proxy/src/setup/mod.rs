//! `pgcache setup`: installs, in a database, what lets the change feed see
//! DDL at its place in the stream (event triggers emitting transactional
//! logical messages; see `objects.rs`), or removes it with `--remove`.
//!
//! The proxy never creates anything in a user's database; only this
//! explicit command does, printing every statement it runs. It is
//! idempotent: it reads what the database has and runs only what is
//! missing or out of date, so a second run runs nothing and says so.
//!
//! Files: `objects.rs` the objects and the plans that install or remove
//! them; `requirements.rs` the privileges and settings checked first.

mod objects;
mod requirements;

use std::io::Write;

use anyhow::Context;
use tokio_postgres::{Client, NoTls};

use crate::config::{SslMode, Upstream};

pub use objects::{SCHEMA, TRIGGERS};

/// The command line of `pgcache setup`.
#[derive(Debug, Clone, clap::Args)]
pub struct SetupArgs {
    /// The proxy's own URL (postgres://USER[:PASSWORD]@HOST:PORT/DBNAME), as
    /// given to the proxy: its user is the service account that needs
    /// REPLICATION, its database is the one set up (unless --database or
    /// --all-databases), and setup connects with it unless --admin-url.
    #[arg(long, env = "PGCACHE_UPSTREAM", hide_env_values = true)]
    pub upstream: String,
    /// Connect as this superuser instead (the same server; its database
    /// part is ignored): event triggers need a superuser, and the proxy's
    /// service account should not be one.
    #[arg(long, env = "PGCACHE_ADMIN_URL", hide_env_values = true)]
    pub admin_url: Option<String>,
    /// Set up this database instead of the URL's.
    #[arg(long, conflicts_with = "all_databases")]
    pub database: Option<String>,
    /// Set up every database that accepts connections (not templates).
    #[arg(long)]
    pub all_databases: bool,
    /// Print the statements setup would run; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove everything setup installed (idempotent too).
    #[arg(long)]
    pub remove: bool,
}

/// Runs setup, printing statements and outcomes to `out` and problems to
/// `err`. `Ok(true)`: every database is as asked; `Ok(false)`: something
/// was missing or failed (already said on `err`).
pub async fn run(
    args: &SetupArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<bool> {
    let upstream: Upstream = args.upstream.parse().context("--upstream")?;
    let admin: Upstream = match &args.admin_url {
        Some(url) => url.parse().context("--admin-url")?,
        None => upstream.clone(),
    };
    let first_database = args
        .database
        .clone()
        .unwrap_or_else(|| upstream.dbname.clone());
    let client = connect(&admin, &first_database).await?;
    let facts = requirements::Facts::read(&client, &upstream.user)
        .await
        .map_err(|e| anyhow::anyhow!("reading roles and settings: {}", describe(&e)))?;
    let missing = facts.missing(args.remove);
    let report_missing = |err: &mut dyn Write| -> std::io::Result<()> {
        for problem in &missing {
            writeln!(err, "pgcache setup: {problem}")?;
        }
        let what = if args.remove { "removed" } else { "installed" };
        writeln!(err, "pgcache setup: nothing {what}")
    };
    // A dry run still shows what would run (reading the catalog needs no
    // privilege), then says what is missing.
    if !missing.is_empty() && !args.dry_run {
        report_missing(err)?;
        return Ok(false);
    }
    let databases = if args.all_databases {
        client
            .query(
                "SELECT datname::text FROM pg_database WHERE datallowconn AND NOT datistemplate \
                 ORDER BY datname",
                &[],
            )
            .await
            .map_err(|e| anyhow::anyhow!("listing databases: {}", describe(&e)))?
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect()
    } else {
        vec![first_database.clone()]
    };
    let mut all_ok = true;
    for database in &databases {
        let outcome = if *database == first_database {
            one_database(args, &client, database, out).await
        } else {
            match connect(&admin, database).await {
                Ok(other) => one_database(args, &other, database, out).await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = outcome {
            writeln!(err, "pgcache setup: database {database:?}: {e:#}")?;
            all_ok = false;
        }
    }
    if !missing.is_empty() {
        report_missing(err)?;
        return Ok(false);
    }
    Ok(all_ok)
}

/// Brings one database to what was asked, in one transaction.
async fn one_database(
    args: &SetupArgs,
    client: &Client,
    database: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let installed = objects::inspect(client)
        .await
        .map_err(|e| anyhow::anyhow!("reading what is installed: {}", describe(&e)))?;
    let plan = if args.remove {
        objects::remove_plan(&installed)
    } else {
        objects::install_plan(&installed).map_err(|c| anyhow::anyhow!(c.0))?
    };
    if plan.is_empty() {
        let state = if args.remove {
            "nothing of pgcache's is installed; nothing to do"
        } else {
            "already set up; nothing to do"
        };
        writeln!(out, "-- database {database:?}: {state}")?;
        return Ok(());
    }
    let verb = match (args.dry_run, args.remove) {
        (true, _) => "would run (dry run: nothing is applied)",
        (false, false) => "installing",
        (false, true) => "removing",
    };
    writeln!(out, "-- database {database:?}: {verb}")?;
    writeln!(out, "BEGIN;")?;
    for statement in &plan {
        writeln!(out, "{statement};")?;
    }
    writeln!(out, "COMMIT;")?;
    if args.dry_run {
        return Ok(());
    }
    // One transaction: a database is either set up or untouched.
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| anyhow::anyhow!("BEGIN: {}", describe(&e)))?;
    for statement in &plan {
        if let Err(e) = client.batch_execute(statement).await {
            let _ = client.batch_execute("ROLLBACK").await;
            let first_line = statement.lines().next().unwrap_or_default();
            anyhow::bail!("{first_line}: {} (nothing changed)", describe(&e));
        }
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| anyhow::anyhow!("COMMIT: {}", describe(&e)))?;
    let done = if args.remove { "removed" } else { "set up" };
    writeln!(
        out,
        "-- database {database:?}: {done} ({} statements)",
        plan.len()
    )?;
    Ok(())
}

/// Connects with `admin`'s address and credentials to `database`.
async fn connect(admin: &Upstream, database: &str) -> anyhow::Result<Client> {
    let mut pg = tokio_postgres::Config::new();
    pg.host(&admin.host)
        .port(admin.port)
        .user(&admin.user)
        .dbname(database)
        .application_name("pgcache-setup")
        .connect_timeout(std::time::Duration::from_secs(10));
    if let Some(password) = &admin.password {
        pg.password(password);
    }
    let failed = |e: tokio_postgres::Error| {
        anyhow::anyhow!(
            "cannot connect to database {database:?} at {} as {:?}: {}",
            admin.address(),
            admin.user,
            describe(&e)
        )
    };
    let client = match admin.tls.client_config()? {
        None => {
            let (client, connection) = pg.connect(NoTls).await.map_err(failed)?;
            tokio::spawn(connection);
            client
        }
        Some(tls) => {
            pg.ssl_mode(if admin.tls.mode == SslMode::Prefer {
                tokio_postgres::config::SslMode::Prefer
            } else {
                tokio_postgres::config::SslMode::Require
            });
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new((*tls).clone());
            let (client, connection) = pg.connect(connector).await.map_err(failed)?;
            tokio::spawn(connection);
            client
        }
    };
    Ok(client)
}

/// The server's message when there is one ("db error" alone says nothing).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => e.to_string(),
    }
}
