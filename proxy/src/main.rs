//! The `pgcache` command: run the proxy, or one of its tools.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use pgcache::{Proxy, ProxyConfig, Upstream};
use policies::parse_duration;

/// A caching proxy for PostgreSQL. Point psql or DATABASE_URL at it instead of
/// the server; repeated reads are answered from memory, writes invalidate.
#[derive(Parser)]
#[command(
    name = "pgcache",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
    /// Log format: human-readable text or one JSON object per line. Log levels
    /// come from RUST_LOG (default: info).
    #[arg(
        long,
        env = "PGCACHE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Start a throwaway PostgreSQL, pgcache in front of it, and run a workload
    /// through the proxy; then clean up.
    Demo(pgcache::demo::DemoArgs),
    /// Validate a policy file: prints every error with its line and key, and
    /// exits non-zero if there is any.
    CheckPolicy {
        /// The policy TOML file.
        file: PathBuf,
    },
    /// Install in a database (or every database) the event triggers that let
    /// the change feed see DDL made around the proxy; --remove undoes it.
    /// Needs a superuser; prints every statement it runs.
    Setup(pgcache::setup::SetupArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Address to accept PostgreSQL clients on.
    #[arg(long, env = "PGCACHE_LISTEN", default_value = "127.0.0.1:6432")]
    listen: SocketAddr,
    /// The PostgreSQL server: postgres://USER[:PASSWORD]@HOST:PORT/DBNAME. Clients
    /// log in with their own credentials; USER/PASSWORD here are the service account
    /// pgcache uses for its own catalog look-ups.
    // Optional only so that subcommands can go without it; clap enforces it
    // (exit 2, shown in the usage line) when the proxy itself runs.
    #[arg(
        long,
        env = "PGCACHE_UPSTREAM",
        required = true,
        hide_env_values = true
    )]
    upstream: Option<String>,
    /// Policy TOML file (TTLs, per-table rules); reloaded when it changes.
    #[arg(long, env = "PGCACHE_POLICY")]
    policy: Option<PathBuf>,
    /// Address of the admin HTTP server (/metrics, /healthz, /api/...). Off
    /// unless given. It binds exactly this address: use a loopback one (e.g.
    /// 127.0.0.1:9187) unless --admin-token is set; otherwise pgcache warns.
    #[arg(long, env = "PGCACHE_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Bearer token the admin API's mutating endpoints (POST) require. Without
    /// it they are open to anyone who can reach --admin-listen.
    #[arg(long, env = "PGCACHE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Database name that opens the admin console (SHOW STATS, INVALIDATE, ...).
    #[arg(long, env = "PGCACHE_ADMIN_DATABASE", default_value = "pgcache")]
    admin_database: String,
    /// Comma-separated users allowed into the admin console (default: the
    /// --upstream user). Their password is checked by the upstream server.
    #[arg(long, env = "PGCACHE_ADMIN_USERS", value_delimiter = ',')]
    admin_users: Vec<String>,
    /// A client must send its startup packet within this time (e.g. 500ms, 30s).
    #[arg(long, env = "PGCACHE_STARTUP_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    startup_timeout: Duration,
    /// Give up connecting to the upstream after this time.
    #[arg(long, env = "PGCACHE_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// On SIGTERM, how long running transactions may go on before their
    /// sessions are closed (idle sessions close at once; SIGINT, or a second
    /// SIGTERM, closes all now).
    #[arg(long, env = "PGCACHE_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    shutdown_timeout: Duration,
    /// Client networks allowed to connect (comma-separated CIDR blocks, e.g.
    /// 10.0.0.0/8,::1/128); others are refused after their startup packet.
    /// Empty: every address.
    #[arg(long, env = "PGCACHE_ALLOW", value_delimiter = ',')]
    allow: Vec<pgcache::access::Cidr>,
    /// Close client sessions idle outside a transaction for this long
    /// (SQLSTATE 57P05). Off by default.
    #[arg(long, env = "PGCACHE_IDLE_TIMEOUT", value_parser = parse_duration)]
    idle_timeout: Option<Duration>,
    /// TLS toward clients: disabled (SSLRequest answered 'N'), optional, or
    /// required (plain connections refused).
    #[arg(long, env = "PGCACHE_TLS_MODE", value_enum, default_value = "disabled")]
    tls_mode: pgcache::tls::TlsMode,
    /// PEM certificate chain presented to clients.
    #[arg(long, env = "PGCACHE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "PGCACHE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Largest message accepted from a client (e.g. 64MiB); PostgreSQL's own
    /// limit (1GiB) by default.
    #[arg(long, env = "PGCACHE_MAX_MESSAGE_SIZE", value_parser = policies::parse_size)]
    max_message_size: Option<u64>,
    /// Client connections beyond this many are refused (SQLSTATE 53300).
    #[arg(long, env = "PGCACHE_MAX_CLIENT_CONNECTIONS", default_value_t = 1000)]
    max_client_connections: usize,
    /// Upstream session connections held at once (the catalog's one
    /// connection per database is extra). A client beyond this waits up to
    /// --connect-timeout for a free one, then gets SQLSTATE 53300. One per
    /// client by default.
    #[arg(long, env = "PGCACHE_MAX_UPSTREAM_CONNECTIONS")]
    max_upstream_connections: Option<usize>,
    /// Follow every commit the server makes (logical decoding, a temporary
    /// slot per database) and invalidate what it changed: auto (where the
    /// server allows it; TTLs elsewhere), required (no hits for a database
    /// whose feed is not streaming) or off.
    #[arg(long, env = "PGCACHE_CHANGE_FEED", default_value = "auto")]
    change_feed: pgcache::feed::ChangeFeedMode,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes are noise in files and log collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pgcache: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Some(Command::Demo(args)) => {
            // The demo prints its own report; the proxy logs only errors (its
            // teardown stops PostgreSQL under idle sessions, which warns).
            if std::env::var_os("RUST_LOG").is_none() {
                std::env::set_var("RUST_LOG", "error");
            }
            init_logging(cli.log_format);
            runtime.block_on(pgcache::demo::run(args))
        }
        Some(Command::CheckPolicy { file }) => {
            return match policies::Policy::load(&file) {
                Ok(policy) => {
                    println!(
                        "{}: ok (max_memory {} bytes, default ttl {:?}, {} table rules, policy hash {})",
                        file.display(),
                        policy.max_memory(),
                        policy.default_ttl(),
                        policy.tables().count(),
                        &policy.hash_hex()[..12]
                    );
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    eprintln!("{errors}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::Setup(args)) => {
            let done = runtime.block_on(pgcache::setup::run(
                &args,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            ));
            return match done {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("pgcache setup: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        None => {
            init_logging(cli.log_format);
            runtime.block_on(run(cli.run))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgcache: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let upstream: Upstream = args
        .upstream
        .context("--upstream is required (or PGCACHE_UPSTREAM)")?
        .parse()?;
    let mut config = ProxyConfig::new(args.listen, upstream);
    config.policy = args.policy;
    config.admin_listen = args.admin_listen;
    config.admin_token = args.admin_token;
    config.admin_database = args.admin_database;
    if !args.admin_users.is_empty() {
        config.admin_users = args.admin_users;
    }
    config.startup_timeout = args.startup_timeout;
    config.connect_timeout = args.connect_timeout;
    config.max_client_connections = args.max_client_connections;
    config.max_upstream_connections = args.max_upstream_connections;
    config.allow = args.allow;
    config.idle_timeout = args.idle_timeout;
    config.change_feed = args.change_feed;
    config.tls_mode = args.tls_mode;
    config.tls_cert = args.tls_cert;
    config.tls_key = args.tls_key;
    if let Some(max) = args.max_message_size {
        config.max_message_size = usize::try_from(max)
            .unwrap_or(usize::MAX)
            .min(pgcache::wire::MAX_MESSAGE_LEN);
    }
    warn_if_admin_is_open(&config);
    let admin_connections = match config.admin_listen {
        Some(_) => config.admin_limits.max_connections,
        None => 0,
    };
    pgcache::fd_limit::check(config.max_client_connections, admin_connections);
    let proxy = Proxy::bind(config).await?;
    let mut signals = StopSignals::listen()?;
    let (stop, stopping) = tokio::sync::oneshot::channel();
    let running = proxy.run(async move { stopping.await.unwrap_or(Duration::ZERO) });
    tokio::pin!(running);
    let grace = tokio::select! {
        result = &mut running => return result,
        grace = signals.next(args.shutdown_timeout) => grace,
    };
    let _ = stop.send(grace);
    tokio::select! {
        result = running => result,
        _ = signals.next(Duration::ZERO) => {
            tracing::warn!("stop signal received again; closing the remaining sessions now");
            Ok(())
        }
    }
}

/// The admin API can invalidate and reload; reachable from other machines
/// without a token, anyone there can empty the cache.
fn warn_if_admin_is_open(config: &ProxyConfig) {
    let Some(addr) = config.admin_listen else {
        return;
    };
    if !addr.ip().to_canonical().is_loopback() && config.admin_token.is_none() {
        tracing::warn!(
            admin_listen = %addr,
            "the admin HTTP server listens beyond loopback without --admin-token: anyone who can reach it may invalidate the cache and reload the policy"
        );
    }
}

/// SIGTERM and SIGINT, listened to from the start so that none is missed
/// between the first (which begins the drain) and a second (which ends it).
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
        })
    }

    /// The next stop signal: SIGTERM lets running transactions go on for
    /// `grace`; SIGINT lets sessions go on only until they are idle, or now.
    async fn next(&mut self, grace: Duration) -> Duration {
        tokio::select! {
            _ = self.int.recv() => Duration::ZERO,
            _ = self.term.recv() => grace,
        }
    }
}
