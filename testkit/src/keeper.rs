//! The keeper thread, which forks every postmaster.
//!
//! Each postmaster is started with `PR_SET_PDEATHSIG = SIGQUIT` so it shuts
//! down (immediate mode) when the test process goes away, even if the
//! [`Cluster`](crate::Cluster) was never dropped: shared clusters live in a
//! static, and a panicking or killed test never runs destructors.
//!
//! Linux sends that signal when the *thread* that forked the child exits. Test
//! harnesses run every test on its own short-lived thread, so a cluster started
//! directly from a test would be killed as soon as that test's thread ended,
//! while another test may still be using it. Hence all postmasters are forked
//! by one global thread that is started on first use and then blocks forever
//! waiting for the next request: it only dies with the process.

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc::{self, Sender};
use std::sync::Mutex;
use std::thread;

/// A command to spawn and where to send the result.
struct Request {
    command: Command,
    reply: Sender<io::Result<Child>>,
}

/// The channel to the keeper thread, created on first use.
static KEEPER: Mutex<Option<Sender<Request>>> = Mutex::new(None);

/// Spawns `command` on the keeper thread and returns the child.
pub(crate) fn spawn(command: Command) -> io::Result<Child> {
    let keeper = keeper()?;
    let (reply, result) = mpsc::channel();
    keeper
        .send(Request { command, reply })
        .map_err(|_| io::Error::other("the testkit keeper thread is gone"))?;
    result
        .recv()
        .map_err(|_| io::Error::other("the testkit keeper thread did not answer"))?
}

/// Returns a sender to the keeper thread, starting the thread if needed.
fn keeper() -> io::Result<Sender<Request>> {
    let mut guard = KEEPER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(sender) = guard.as_ref() {
        return Ok(sender.clone());
    }
    let (sender, requests) = mpsc::channel::<Request>();
    thread::Builder::new()
        .name("pgcache-testkit-keeper".into())
        .spawn(move || {
            // The sender lives in a static and is never dropped, so this loop
            // never ends: the thread stays parked in `recv` for the life of
            // the process.
            for mut request in requests {
                let _ = request.reply.send(request.command.spawn());
            }
        })?;
    *guard = Some(sender.clone());
    Ok(sender)
}
