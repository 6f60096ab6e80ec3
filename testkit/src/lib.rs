//! Throwaway real PostgreSQL clusters for pgcache's integration tests and for
//! `pgcache demo`.
//!
//! A [`Cluster`] is a real server built from the system's PostgreSQL programs
//! (`initdb`, `postgres`, `pg_isready`, `psql`; see [`bin`]) in its own
//! temporary directory, listening on `127.0.0.1` on a free port and on a unix
//! socket, with `wal_level = logical` and durability switched off for speed.
//! No mocks.
//!
//! # Using it from a test
//!
//! Most tests share one cluster per test binary and isolate themselves with
//! their own database or roles:
//!
//! ```no_run
//! use testkit::{Cluster, PasswordKind};
//!
//! let pg = Cluster::shared(); // started on first use, lives until exit
//! pg.create_database("orders_test")?;
//! pg.psql("orders_test", "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")?;
//! assert_eq!(pg.psql("orders_test", "SELECT count(*) FROM t")?, "1");
//!
//! // Connect a real driver over TCP:
//! let url = pg.url(pg.superuser(), Some(pg.superuser_password()), "orders_test");
//! # let _ = url;
//!
//! // Authentication tests use the shared SCRAM cluster:
//! let scram = Cluster::shared_scram();
//! scram.create_user("md5_alice", "secret", PasswordKind::Md5)?; // logs in with MD5
//! # Ok::<(), testkit::Error>(())
//! ```
//!
//! A test that restarts or breaks the server starts its own:
//!
//! ```no_run
//! use testkit::{Cluster, ClusterOptions};
//!
//! let pg = Cluster::start(ClusterOptions::default().setting("max_connections", "20"))?;
//! pg.restart()?; // same port, same data
//! # Ok::<(), testkit::Error>(())
//! // dropped here: server stopped, directory removed
//! ```
//!
//! # Authentication
//!
//! Unix-socket connections are always trusted (that is how [`Cluster::psql`]
//! gets in). TCP connections follow [`Auth`]: everything trusted, or SCRAM by
//! default with per-role `md5` or `password` methods, chosen by membership in
//! the `md5_users` / `password_users` groups (see
//! [`Cluster::create_user_with_method`]). The superuser is `postgres` with the
//! password `postgres-test-pw` in every cluster.
//!
//! # Running as root
//!
//! PostgreSQL refuses to run as root. When the tests run as root, `initdb` and
//! `postgres` run as the `postgres` OS user and the cluster directory is
//! chowned to it; otherwise everything runs as the current user. The temp
//! dir (`TMPDIR`, default `/tmp`) must then be reachable by that user.
//!
//! # Cleanup, even when tests fail
//!
//! * Dropping a [`Cluster`] stops its server and removes its directory.
//! * Every postmaster is forked by one long-lived "keeper" thread with
//!   `PR_SET_PDEATHSIG = SIGQUIT`, so it shuts down as soon as the test
//!   process dies, however it dies. (The signal fires when the forking
//!   *thread* exits, hence one thread that lives as long as the process
//!   rather than the short-lived test threads.)
//! * The [`shared`](Cluster::shared) clusters are never dropped; an `atexit`
//!   hook stops them and removes their directories at normal exit.
//! * Each [`Cluster::start`] removes `pgcache-cluster-<pid>-*` directories in
//!   the temp dir whose process no longer exists, which catches whatever a
//!   killed process left behind.
//!
//! # Requirements
//!
//! Linux and the PostgreSQL server and client programs: on Debian/Ubuntu
//! `apt-get install -y postgresql postgresql-client`. Errors name the
//! missing package.

mod admin;
mod binaries;
mod cleanup;
mod cluster;
mod config;
mod error;
mod keeper;
mod privilege;
mod quote;
mod server;
mod shared;

pub use binaries::bin;
pub use cluster::{free_port, Cluster};
pub use config::{Auth, ClusterOptions, HbaMethod, PasswordKind};
pub use error::{Error, Result};
