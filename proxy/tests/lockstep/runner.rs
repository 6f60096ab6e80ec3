//! Runs a program in lockstep: each action goes to the session's direct
//! connection, then to its proxied twin, and the two answers must match
//! line for line. A mismatch fails the test with a reproducible transcript.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use testkit::Cluster;

use super::action::{Action, Exchange};
use super::compare::{self, Message, CLOSED, SILENT};
use super::universe::Database;
use crate::common::raw::{message, startup_packet, Raw};

/// How many earlier steps a failure report shows, unless
/// PGCACHE_DIFF_TRANSCRIPT says otherwise.
const TRANSCRIPT: usize = 20;

fn transcript_length() -> usize {
    std::env::var("PGCACHE_DIFF_TRANSCRIPT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(TRANSCRIPT)
}

/// One way to reach one of the two databases.
#[derive(Clone, Debug)]
pub struct Side {
    pub addr: SocketAddr,
    pub db: Database,
}

/// A logical session: the same login on both sides.
struct Pair {
    direct: Raw,
    proxied: Raw,
    /// The server's transaction status from the last ReadyForQuery.
    status: u8,
}

pub struct Lockstep {
    /// How to reproduce this run (a seed or a scenario's name).
    origin: String,
    /// The login of each session, by index.
    logins: Vec<&'static str>,
    direct: Side,
    proxied: Side,
    sessions: Vec<Pair>,
    transcript: VecDeque<String>,
    steps: usize,
}

/// An answer read from one side: its lines, ending with a marker if the
/// owed ReadyForQuery messages did not all come.
async fn round_trip(raw: &mut Raw, side: &Side, bytes: &[u8], owed: usize) -> Vec<String> {
    let mut messages: Vec<Message> = Vec::new();
    let mut ended = None;
    if raw.stream.write_all(bytes).await.is_err() {
        ended = Some(CLOSED);
    }
    let mut ready = 0;
    while ended.is_none() && ready < owed {
        match raw.read_message().await {
            Some(m) => {
                ready += usize::from(m.0 == b'Z');
                messages.push(m);
            }
            None => ended = Some(SILENT),
        }
    }
    let mut lines = compare::lines(&messages, &side.db.name);
    lines.extend(ended.map(String::from));
    lines
}

async fn login(side: &Side, user: &str) -> (Raw, Vec<String>) {
    let mut raw = Raw::connect(side.addr).await;
    let packet = startup_packet(3, 0, &[("user", user), ("database", &side.db.name)]);
    let answer = round_trip(&mut raw, side, &packet, 1).await;
    (raw, answer)
}

fn one_line(answer: &[String]) -> String {
    let joined = answer.join("; ");
    match joined.char_indices().nth(160) {
        Some((cut, _)) => format!("{}...", &joined[..cut]),
        None => joined,
    }
}

fn block(answer: &[String]) -> String {
    answer
        .iter()
        .map(|l| format!("      {l}\n"))
        .collect::<String>()
}

impl Lockstep {
    /// Logs a session in on both sides for each of `logins`.
    pub async fn start(
        origin: String,
        direct: Side,
        proxied: Side,
        logins: &[&'static str],
    ) -> Lockstep {
        let mut run = Lockstep {
            origin,
            logins: logins.to_vec(),
            direct,
            proxied,
            sessions: Vec::new(),
            transcript: VecDeque::new(),
            steps: 0,
        };
        for session in 0..logins.len() {
            let pair = run.connect(session, &Action::reconnect()).await;
            run.sessions.push(pair);
        }
        run
    }

    /// The transaction status of `session` from its last ReadyForQuery.
    pub fn status(&self, session: usize) -> u8 {
        self.sessions[session].status
    }

    /// Whether a session other than `session` is inside a transaction block.
    pub fn others_in_transaction(&self, session: usize) -> bool {
        self.sessions
            .iter()
            .enumerate()
            .any(|(i, pair)| i != session && pair.status != b'I')
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    async fn connect(&mut self, session: usize, action: &Action) -> Pair {
        let (direct, direct_answer) = login(&self.direct, self.logins[session]).await;
        let (proxied, proxied_answer) = login(&self.proxied, self.logins[session]).await;
        self.check(session, action, 0, &direct_answer, &proxied_answer);
        Pair {
            direct,
            proxied,
            status: b'I',
        }
    }

    /// Runs `action` on `session`, on both sides, and compares every answer.
    pub async fn step(&mut self, session: usize, action: &Action) {
        self.steps += 1;
        let mut summary = Vec::new();
        for (index, exchange) in action.exchanges.iter().enumerate() {
            match exchange {
                Exchange::Reconnect => {
                    let pair = &mut self.sessions[session];
                    for raw in [&mut pair.direct, &mut pair.proxied] {
                        let _ = raw.stream.write_all(&message(b'X', &[])).await;
                        // The server releases the session's locks before it
                        // closes the socket: waiting for that keeps the next
                        // step from racing the cleanup on one side only.
                        raw.closed_within(Duration::from_secs(5)).await;
                    }
                    self.sessions[session] = self.connect(session, action).await;
                    summary.push("logged in".to_string());
                }
                Exchange::Superuser(sql) => {
                    let cluster = Cluster::shared();
                    let out = cluster
                        .psql("postgres", sql)
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    summary.push(format!("superuser: {}", out.trim()));
                }
                Exchange::Send(msgs) => {
                    let owed = exchange.ready_owed();
                    let encode = |side: &Side| -> Vec<u8> {
                        msgs.iter()
                            .flat_map(|m| m.encode(|f| side.db.oid(f)))
                            .collect()
                    };
                    let (direct_bytes, proxied_bytes) =
                        (encode(&self.direct), encode(&self.proxied));
                    let pair = &mut self.sessions[session];
                    let direct =
                        round_trip(&mut pair.direct, &self.direct, &direct_bytes, owed).await;
                    let proxied =
                        round_trip(&mut pair.proxied, &self.proxied, &proxied_bytes, owed).await;
                    self.check(session, action, index, &direct, &proxied);
                    if let Some(status) = direct
                        .iter()
                        .rev()
                        .find_map(|l| l.strip_prefix("ReadyForQuery "))
                    {
                        self.sessions[session].status = status.as_bytes()[0];
                    }
                    summary.push(one_line(&direct));
                }
            }
        }
        let entry = format!(
            "#{} s{} ({}) {}\n        -> {}",
            self.steps,
            session,
            self.logins[session],
            action,
            summary.join(" ; then ")
        );
        if std::env::var_os("PGCACHE_DIFF_TRACE").is_some() {
            eprintln!("{entry}");
        }
        self.transcript.push_back(entry);
        if self.transcript.len() > transcript_length() {
            self.transcript.pop_front();
        }
    }

    /// Runs a scripted program of (session, action).
    pub async fn run(&mut self, program: &[(usize, Action)]) {
        for (session, action) in program {
            self.step(*session, action).await;
        }
    }

    fn check(
        &self,
        session: usize,
        action: &Action,
        index: usize,
        direct: &[String],
        proxied: &[String],
    ) {
        if direct == proxied {
            return;
        }
        let first = direct
            .iter()
            .zip(proxied)
            .position(|(d, p)| d != p)
            .unwrap_or(direct.len().min(proxied.len()));
        let earlier: String = self
            .transcript
            .iter()
            .map(|t| format!("    {t}\n"))
            .collect();
        panic!(
            "differential: the proxy's answer differs from the server's\n  \
             {}\n  step #{}, session s{} (login {}), exchange {} of the action\n  \
             action: {}\n  first difference at answer line {}\n  \
             direct:\n{}  proxy:\n{}  the {} steps before:\n{}",
            self.origin,
            self.steps,
            session,
            self.logins[session],
            index + 1,
            action,
            first + 1,
            block(direct),
            block(proxied),
            self.transcript.len(),
            earlier,
        );
    }
}
