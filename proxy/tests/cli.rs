//! The `pgcache` binary: flags, environment variables, and errors a person sees.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::Cluster;

fn pgcache() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pgcache"))
}

#[test]
fn help_documents_every_flag_and_its_environment_variable() {
    let out = pgcache().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, env) in [
        ("--listen", "PGCACHE_LISTEN"),
        ("--upstream", "PGCACHE_UPSTREAM"),
        ("--policy", "PGCACHE_POLICY"),
        ("--admin-listen", "PGCACHE_ADMIN_LISTEN"),
        ("--log-format", "PGCACHE_LOG_FORMAT"),
        ("--startup-timeout", "PGCACHE_STARTUP_TIMEOUT"),
        ("--max-client-connections", "PGCACHE_MAX_CLIENT_CONNECTIONS"),
        ("--change-feed", "PGCACHE_CHANGE_FEED"),
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
        assert!(help.contains(env), "{env} missing from --help");
    }
    assert!(help.contains("demo"));
}

#[test]
fn an_unknown_change_feed_mode_is_refused_by_name() {
    let out = pgcache()
        .args([
            "--upstream",
            "postgres://u@127.0.0.1:1/db",
            "--change-feed",
            "sometimes",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected auto, required or off"), "{err}");
}

#[test]
fn help_never_prints_the_upstream_password() {
    let out = pgcache()
        .arg("--help")
        .env(
            "PGCACHE_UPSTREAM",
            "postgres://svc:hunter2-secret@db.internal:5432/shop",
        )
        .env("PGCACHE_ADMIN_TOKEN", "token-secret")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(!help.contains("hunter2"), "{help}");
    assert!(!help.contains("token-secret"), "{help}");
    assert!(help.contains("PGCACHE_UPSTREAM"), "{help}");
}

#[test]
fn usage_shows_upstream_as_required() {
    let out = pgcache().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let usage = help
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .expect("a usage line");
    assert!(usage.contains("--upstream <"), "{usage}");
}

#[test]
fn missing_or_bad_upstream_is_a_clear_error() {
    let out = pgcache().env_remove("PGCACHE_UPSTREAM").output().unwrap();
    // 2 is clap's (and the convention's) exit status for a usage error.
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--upstream <"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Subcommands need no upstream.
    let minimal =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies/minimal.toml");
    let out = pgcache()
        .env_remove("PGCACHE_UPSTREAM")
        .arg("check-policy")
        .arg(minimal)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = pgcache()
        .args(["--upstream", "mysql://nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("postgres://"));
}

#[test]
fn runs_from_environment_variables_and_logs_json() {
    let cluster = Cluster::shared();
    let port = testkit::free_port();
    let mut child = pgcache()
        .env("PGCACHE_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "PGCACHE_UPSTREAM",
            cluster.url(
                cluster.superuser(),
                Some(cluster.superuser_password()),
                "postgres",
            ),
        )
        .env("PGCACHE_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        let out = common::run_client(
            cluster,
            "psql",
            addr,
            &[
                "-X",
                "-A",
                "-t",
                "-d",
                "postgres",
                "-c",
                "SELECT 'through the binary'",
            ],
        );
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let logs = {
        use std::io::Read;
        let mut s = String::new();
        child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
        s
    };
    assert_eq!(
        common::stdout(&out).trim(),
        "through the binary",
        "{}",
        common::stderr(&out)
    );
    assert!(
        status.success(),
        "SIGTERM is a clean exit: {status:?}\n{logs}"
    );
    let first = logs.lines().next().expect("a log line");
    assert!(
        first.starts_with('{') && first.contains("\"level\""),
        "{first}"
    );
}

#[test]
fn check_policy_accepts_the_examples_and_names_the_line_of_an_error() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for example in ["full.toml", "minimal.toml"] {
        let path = root.join("examples/policies").join(example);
        let out = pgcache().arg("check-policy").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bad = std::env::temp_dir().join(format!("pgcache-bad-policy-{}.toml", std::process::id()));
    std::fs::write(
        &bad,
        "[defaults]\nttl = \"60s\"\n\n[tables.orders]\nttl = \"5 seconds\"\n",
    )
    .unwrap();
    let out = pgcache().arg("check-policy").arg(&bad).output().unwrap();
    let _ = std::fs::remove_file(&bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":5:"), "names line 5: {err}");
    assert!(err.contains("ttl"), "names the key: {err}");
}

/// Starts the binary with `args` (the upstream need not exist: nothing
/// connects to it) and returns its log up to the line saying it accepts
/// connections.
fn startup_log(args: &[&str]) -> String {
    use std::io::{BufRead, BufReader};
    let port = testkit::free_port();
    let mut child = pgcache()
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--upstream", "postgres://svc@127.0.0.1:1/postgres"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("accepting connections") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    log
}

#[test]
fn admin_listen_beyond_loopback_without_a_token_warns() {
    let open = startup_log(&[
        "--admin-listen",
        &format!("0.0.0.0:{}", testkit::free_port()),
    ]);
    assert!(open.contains("accepting connections"), "{open}");
    assert!(
        open.contains("WARN") && open.contains("--admin-token"),
        "{open}"
    );

    let loopback = startup_log(&[
        "--admin-listen",
        &format!("127.0.0.1:{}", testkit::free_port()),
    ]);
    assert!(loopback.contains("accepting connections"), "{loopback}");
    assert!(!loopback.contains("--admin-token"), "{loopback}");

    let with_token = startup_log(&[
        "--admin-listen",
        &format!("0.0.0.0:{}", testkit::free_port()),
        "--admin-token",
        "s3cret",
    ]);
    assert!(with_token.contains("accepting connections"), "{with_token}");
    assert!(!with_token.contains("--admin-token"), "{with_token}");
}

/// Durations on the command line follow the policy file's rules: a unit is
/// required and nothing wraps around.
#[test]
fn durations_need_a_unit_and_never_overflow() {
    for (flag, value, expected) in [
        ("--startup-timeout", "5", "missing unit"),
        ("--idle-timeout", "18446744073709551615h", "too large"),
        (
            "--shutdown-timeout",
            "5 parsecs",
            "expected a number followed by ms, s, m or h",
        ),
    ] {
        let mut run = pgcache();
        run.args(["--listen", "127.0.0.1:0"])
            .args(["--upstream", "postgres://svc@127.0.0.1:1/postgres"])
            .args([flag, value]);
        // A value wrongly accepted starts the proxy: stop it rather than hang.
        let out = output_within(run, Duration::from_secs(10));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(expected), "{flag} {value}: {err}");
    }
}

/// Runs `command` to completion, or kills it after `limit`.
fn output_within(mut command: Command, limit: Duration) -> std::process::Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

#[test]
fn logs_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    let log = startup_log(&[]);
    assert!(log.contains("accepting connections"), "{log}");
    assert!(!log.contains('\x1b'), "{log:?}");
}
