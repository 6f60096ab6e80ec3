//! The one error type of the crate.
//!
//! Every variant carries enough text to act on without a debugger: which
//! program failed, what it printed, how to install what is missing, and the
//! tail of the server log when the server is the problem.

use std::io;
use std::path::PathBuf;

/// Why a cluster could not be started, queried or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A PostgreSQL program is neither on `PATH` nor under
    /// `/usr/lib/postgresql/*/bin`.
    #[error(
        "PostgreSQL program `{program}` not found on PATH or under /usr/lib/postgresql/*/bin; \
         install it with `{install}`"
    )]
    MissingBinary {
        /// The program that was looked for, e.g. `initdb`.
        program: String,
        /// The command that installs it on Debian/Ubuntu.
        install: &'static str,
    },

    /// We run as root, so the server must run as the `postgres` OS user, and
    /// there is none.
    #[error(
        "running as root, but there is no `postgres` OS user to run the server as \
         (PostgreSQL refuses to run as root); `apt-get install -y postgresql` creates it"
    )]
    NoServerUser,

    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing, including the path or program involved.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A helper program (initdb, psql, ...) ran but reported failure.
    #[error("{program} failed ({status}): {output}")]
    CommandFailed {
        /// The program, e.g. `psql` or `initdb`.
        program: String,
        /// Its exit status, as text.
        status: String,
        /// What it printed on stderr (and stdout, for initdb).
        output: String,
    },

    /// The server did not come up (exited early or never became ready).
    #[error(
        "PostgreSQL in {data_dir} did not start: {reason}\n--- server log (tail) ---\n{log_tail}"
    )]
    StartFailed {
        /// The cluster's data directory.
        data_dir: PathBuf,
        /// Exit status or timeout.
        reason: String,
        /// The last lines of the server log.
        log_tail: String,
    },
}

impl Error {
    /// Wraps an I/O error with a description of what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
