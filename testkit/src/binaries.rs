//! Locating the PostgreSQL programs.
//!
//! `PATH` wins, so a developer can point the tests at another build simply by
//! putting its `bin` directory first. Debian/Ubuntu install the server programs
//! (`initdb`, `postgres`, `pg_ctl`, and on Debian 12 `pgbench`) only under
//! `/usr/lib/postgresql/<version>/bin`, so that is the fallback, newest version
//! first.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where Debian and Ubuntu put versioned PostgreSQL installations.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// Locates a PostgreSQL program such as `initdb`, `postgres`, `psql` or
/// `pgbench`: first on `PATH`, then in the newest
/// `/usr/lib/postgresql/<version>/bin`.
///
/// The error names the apt package that provides the program.
///
/// ```no_run
/// let pgbench = testkit::bin("pgbench")?;
/// # Ok::<(), testkit::Error>(())
/// ```
pub fn bin(name: &str) -> Result<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(versioned_bin_dirs(Path::new(DEBIAN_ROOT)))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| Error::MissingBinary {
            program: name.to_string(),
            install: install_hint(name),
        })
}

/// `<root>/<version>/bin` for every version directory under `root`, newest
/// version first (`15` before `9.6`: versions compare numerically).
fn versioned_bin_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let version = parse_version(&entry.file_name())?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// Parses a version directory name such as `15` or `9.6`.
fn parse_version(name: &OsStr) -> Option<Vec<u32>> {
    name.to_str()?
        .split('.')
        .map(|part| part.parse().ok())
        .collect()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The Debian/Ubuntu command that installs `program`.
fn install_hint(program: &str) -> &'static str {
    match program {
        "psql" | "pg_isready" | "pg_dump" | "pg_restore" | "createdb" | "dropdb" => {
            "apt-get install -y postgresql-client"
        }
        // Debian 12 ships pgbench in the server package; older releases had
        // it in postgresql-contrib.
        "pgbench" => "apt-get install -y postgresql (or postgresql-contrib on older releases)",
        _ => "apt-get install -y postgresql",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_numerically_newest_first() {
        let root =
            std::env::temp_dir().join(format!("pgcache-testkit-bins-{}", std::process::id()));
        for v in ["9.6", "15", "13", "not-a-version"] {
            std::fs::create_dir_all(root.join(v).join("bin")).unwrap();
        }
        let dirs = versioned_bin_dirs(&root);
        let names: Vec<_> = dirs
            .iter()
            .map(|d| d.parent().unwrap().file_name().unwrap().to_str().unwrap())
            .collect();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(names, ["15", "13", "9.6"]);
    }

    #[test]
    fn missing_program_says_how_to_install() {
        let err = bin("initdb-that-does-not-exist").unwrap_err().to_string();
        assert!(err.contains("apt-get install -y postgresql"), "{err}");
        let err = bin("no-such-program").unwrap_err();
        assert!(matches!(err, Error::MissingBinary { .. }));
        assert_eq!(install_hint("psql"), "apt-get install -y postgresql-client");
    }

    #[test]
    fn finds_the_server_programs() {
        for program in ["initdb", "postgres", "psql", "pg_isready"] {
            let path = bin(program).unwrap();
            assert!(path.ends_with(program), "{}", path.display());
        }
    }
}
