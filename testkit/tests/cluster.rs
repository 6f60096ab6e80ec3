//! Integration tests against real PostgreSQL servers.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use testkit::{Auth, Cluster, ClusterOptions, Error, HbaMethod, PasswordKind};

/// Runs `SELECT current_user` with psql over TCP (not the unix socket), as
/// `user`, with `password` in PGPASSWORD if given, never prompting.
fn psql_tcp(pg: &Cluster, user: &str, password: Option<&str>) -> Output {
    let mut cmd = Command::new(testkit::bin("psql").unwrap());
    cmd.args(["-X", "-w", "-A", "-t", "-c", "SELECT current_user", "-d"])
        .arg(format!(
            "host={} port={} user={user} dbname=postgres",
            pg.host(),
            pg.port()
        ))
        .env("PGPASSFILE", "/dev/null")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null());
    if let Some(password) = password {
        cmd.env("PGPASSWORD", password);
    }
    cmd.output().unwrap()
}

fn assert_login(pg: &Cluster, user: &str, password: Option<&str>) {
    let out = psql_tcp(pg, user, password);
    assert!(
        out.status.success(),
        "{user} could not log in: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), user);
}

fn assert_no_login(pg: &Cluster, user: &str, password: Option<&str>) -> String {
    let out = psql_tcp(pg, user, password);
    assert!(!out.status.success(), "{user} logged in with {password:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The pg_hba.conf line that the last failed login of `user` matched,
/// from the `DETAIL` after the `FATAL` in the server log.
fn matched_hba_line(pg: &Cluster, user: &str) -> String {
    let log = pg.log_tail(500);
    let lines: Vec<&str> = log.lines().collect();
    let fatal = format!("authentication failed for user \"{user}\"");
    let at = lines
        .iter()
        .rposition(|l| l.contains(&fatal))
        .unwrap_or_else(|| panic!("no failed login of {user} in the log:\n{log}"));
    lines[at..]
        .iter()
        .find(|l| l.contains("pg_hba.conf line"))
        .unwrap_or_else(|| panic!("no pg_hba.conf line logged for {user}:\n{log}"))
        .to_string()
}

fn accepts_tcp(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Waits up to 15 s for `addr` to stop accepting connections.
fn wait_closed(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if !accepts_tcp(addr) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn trust_cluster_runs_sql_and_accepts_tcp() {
    let pg = Cluster::start(ClusterOptions::default()).unwrap();
    assert_eq!(pg.psql("postgres", "select 1").unwrap(), "1");
    assert_eq!(pg.psql("postgres", "show wal_level").unwrap(), "logical");
    assert_eq!(pg.psql("postgres", "select 1; select 2").unwrap(), "1\n2");
    assert_eq!(pg.host(), "127.0.0.1");
    assert_eq!(pg.addr().port(), pg.port());
    assert!(pg.data_dir().join("PG_VERSION").exists());
    assert!(pg
        .socket_dir()
        .join(format!(".s.PGSQL.{}", pg.port()))
        .exists());

    let url = pg.url("user@x", Some("p:w/d"), "db 1");
    assert_eq!(
        url,
        format!(
            "postgres://user%40x:p%3Aw%2Fd@127.0.0.1:{}/db%201",
            pg.port()
        )
    );
    assert!(accepts_tcp(pg.addr()));
    // Trust: no password needed over TCP, but the superuser has one anyway.
    assert_login(&pg, "postgres", None);
    assert_login(&pg, pg.superuser(), Some(pg.superuser_password()));

    let err = pg
        .psql("postgres", "select * from no_such_table")
        .unwrap_err();
    assert!(err.to_string().contains("no_such_table"), "{err}");
    assert!(
        pg.log_tail(5).contains("no_such_table"),
        "{}",
        pg.log_tail(5)
    );
}

#[test]
fn scram_cluster_checks_passwords_per_method() {
    let pg = Cluster::start(ClusterOptions::scram()).unwrap();
    assert_eq!(pg.auth(), Auth::Scram);
    // The unix socket stays trusted.
    assert_eq!(
        pg.psql("postgres", "select current_user").unwrap(),
        "postgres"
    );

    let err = assert_no_login(&pg, "postgres", None);
    assert!(err.contains("password"), "{err}");
    assert_no_login(&pg, "postgres", Some("wrong"));
    assert_login(&pg, "postgres", Some(pg.superuser_password()));

    // The groups are created after the hba file is loaded; lines naming
    // them must still match.
    pg.create_user("md5_alice", "alice pw", PasswordKind::Md5)
        .unwrap();
    pg.create_user("scram_bob", "bob's pw", PasswordKind::Scram)
        .unwrap();
    pg.create_user_with_method(
        "pw_carol",
        "carol",
        PasswordKind::Scram,
        HbaMethod::Password,
    )
    .unwrap();
    let stored = pg
        .psql(
            "postgres",
            "select rolname, left(rolpassword, 3) from pg_authid \
             where rolname in ('md5_alice', 'scram_bob', 'pw_carol') order by rolname",
        )
        .unwrap();
    assert_eq!(stored, "md5_alice|md5\npw_carol|SCR\nscram_bob|SCR");
    for (user, password, hba_rule) in [
        ("md5_alice", "alice pw", "+md5_users      127.0.0.1/32  md5"),
        (
            "scram_bob",
            "bob's pw",
            "all             127.0.0.1/32  scram-sha-256",
        ),
        (
            "pw_carol",
            "carol",
            "+password_users 127.0.0.1/32  password",
        ),
    ] {
        assert_login(&pg, user, Some(password));
        assert_no_login(&pg, user, None);
        assert_no_login(&pg, user, Some("nope"));
        // The server logs which pg_hba.conf line a failed login matched.
        let matched = matched_hba_line(&pg, user);
        assert!(matched.contains(hba_rule), "{user}: {matched}");
    }

    // Calling again changes the password and the method.
    pg.create_user("md5_alice", "new", PasswordKind::Scram)
        .unwrap();
    assert_login(&pg, "md5_alice", Some("new"));
    let groups = pg
        .psql(
            "postgres",
            "select count(*) from pg_auth_members m join pg_roles r on r.oid = m.member \
             where r.rolname = 'md5_alice'",
        )
        .unwrap();
    assert_eq!(groups, "0");
}

#[test]
fn drop_stops_server_and_removes_directory() {
    let pg = Cluster::start(ClusterOptions::default()).unwrap();
    let addr = pg.addr();
    let root = pg.data_dir().parent().unwrap().to_path_buf();
    let name = root.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with(&format!("pgcache-cluster-{}-", std::process::id())),
        "{name}"
    );
    assert!(root.starts_with(std::env::temp_dir()));
    assert!(accepts_tcp(addr));
    drop(pg);
    assert!(!root.exists(), "{} still exists", root.display());
    assert!(
        !accepts_tcp(addr),
        "server still accepts connections after drop"
    );
}

#[test]
fn restart_keeps_data_and_port() {
    let pg = Cluster::start(ClusterOptions::default()).unwrap();
    pg.create_database("keep").unwrap();
    pg.psql(
        "keep",
        "create table t (v text); insert into t values ('kept')",
    )
    .unwrap();
    let before = pg
        .psql("postgres", "select pg_postmaster_start_time()")
        .unwrap();
    let port = pg.port();
    pg.restart().unwrap();
    assert_eq!(pg.port(), port);
    assert_eq!(pg.psql("keep", "select v from t").unwrap(), "kept");
    let after = pg
        .psql("postgres", "select pg_postmaster_start_time()")
        .unwrap();
    assert_ne!(before, after, "the server was not restarted");
    assert!(
        pg.log_tail(50).contains("fast shutdown"),
        "{}",
        pg.log_tail(50)
    );
}

#[test]
fn settings_are_applied_and_bad_ones_reported() {
    let pg = Cluster::start(
        ClusterOptions::default()
            .setting("work_mem", "7MB")
            .setting("application_name", "it's quoted"),
    )
    .unwrap();
    assert_eq!(pg.psql("postgres", "show work_mem").unwrap(), "7MB");
    assert_eq!(pg.psql("postgres", "show max_connections").unwrap(), "200");
    drop(pg);

    let err =
        Cluster::start(ClusterOptions::default().setting("shared_buffers", "lots")).unwrap_err();
    match &err {
        Error::StartFailed { log_tail, .. } => {
            assert!(log_tail.contains("shared_buffers"), "{err}")
        }
        other => panic!("unexpected error: {other}"),
    }
}

#[test]
fn create_database_is_idempotent_and_sets_owner() {
    let pg = Cluster::shared();
    pg.create_user("owner_erin", "erin", PasswordKind::Scram)
        .unwrap();
    pg.create_database_with_owner("erins_db", Some("owner_erin"))
        .unwrap();
    pg.create_database("erins_db").unwrap();
    let owner = pg
        .psql(
            "postgres",
            "select pg_get_userbyid(datdba) from pg_database where datname = 'erins_db'",
        )
        .unwrap();
    assert_eq!(owner, "owner_erin");
    assert_eq!(
        pg.psql("erins_db", "select current_database()").unwrap(),
        "erins_db"
    );
}

#[test]
fn shared_clusters_are_started_once() {
    let a = Cluster::shared();
    let b = Cluster::shared();
    assert!(std::ptr::eq(a, b));
    assert_eq!(a.auth(), Auth::Trust);
    let s = Cluster::shared_scram();
    assert_eq!(s.auth(), Auth::Scram);
    assert_ne!(a.port(), s.port());
    assert_eq!(a.psql("postgres", "select 1").unwrap(), "1");
}

/// What the helper process prints: `<kind> <port> <cluster dir>`.
fn parse_helper_output(stdout: &str, kind: &str) -> (SocketAddr, PathBuf) {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{kind} ")))
        .unwrap_or_else(|| panic!("no {kind} line in helper output:\n{stdout}"));
    let (port, dir) = line.split_once(' ').unwrap();
    (
        SocketAddr::from(([127, 0, 0, 1], port.parse().unwrap())),
        PathBuf::from(dir),
    )
}

fn run_helper(mode: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "leaking_helper_process",
            "--ignored",
            "--nocapture",
        ])
        .env("TESTKIT_HELPER_MODE", mode)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// Relies on Linux's parent-death signal (testkit's `die_with_parent`).
#[cfg(target_os = "linux")]
#[test]
fn servers_die_with_a_killed_test_process() {
    let stdout = run_helper("kill");
    let (leaked_addr, leaked_dir) = parse_helper_output(&stdout, "LEAKED");
    let (shared_addr, shared_dir) = parse_helper_output(&stdout, "SHARED");
    assert!(
        wait_closed(leaked_addr),
        "leaked server outlived its process"
    );
    assert!(
        wait_closed(shared_addr),
        "shared server outlived its process"
    );
    // Nobody cleaned up after SIGKILL; the next start sweeps the directories.
    drop(Cluster::start(ClusterOptions::default()).unwrap());
    assert!(
        !leaked_dir.exists(),
        "{} was not swept",
        leaked_dir.display()
    );
    assert!(
        !shared_dir.exists(),
        "{} was not swept",
        shared_dir.display()
    );
}

#[test]
fn shared_clusters_are_removed_at_exit() {
    let stdout = run_helper("exit");
    let (shared_addr, shared_dir) = parse_helper_output(&stdout, "SHARED");
    let (leaked_addr, leaked_dir) = parse_helper_output(&stdout, "LEAKED");
    assert!(!accepts_tcp(shared_addr), "shared server survived exit");
    assert!(
        !shared_dir.exists(),
        "{} survived exit",
        shared_dir.display()
    );
    assert!(
        wait_closed(leaked_addr),
        "leaked server outlived its process"
    );
    // A forgotten non-shared cluster's directory is left for the next
    // start's sweep (tested above); tidy up here unless a concurrent test's
    // sweep already did.
    let _ = std::fs::remove_dir_all(leaked_dir);
}

/// Run by the two tests above in a child process: starts a cluster that is
/// never dropped plus the shared one, prints where they are, then either
/// exits normally or is killed.
#[test]
#[ignore = "helper process for the tests above"]
fn leaking_helper_process() {
    let Ok(mode) = std::env::var("TESTKIT_HELPER_MODE") else {
        return;
    };
    let leaked = Cluster::start(ClusterOptions::default()).unwrap();
    let shared = Cluster::shared();
    for (kind, pg) in [("LEAKED", &leaked), ("SHARED", shared)] {
        println!(
            "{kind} {} {}",
            pg.port(),
            pg.data_dir().parent().unwrap().display()
        );
    }
    std::mem::forget(leaked);
    if mode == "kill" {
        // SAFETY: plain syscall; ends this process without any cleanup.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}
