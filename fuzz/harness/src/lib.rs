//! The checks behind pgcache's fuzz targets, one public function per target.
//!
//! Each function takes the raw fuzz input, never fails on bad input, and
//! panics (a crash to the fuzzer) when pgcache panics, overflows its stack, or
//! breaks one of the properties checked here:
//!
//! - `wire_client` / `wire_server`: the framer hands out exactly the bytes it
//!   was given, in order, as whole messages whose length field is right or as
//!   parts of a large message; it errs exactly on a length below 4 or above
//!   the limit. Every whole message goes through the decoders of its side; a
//!   message a decoder accepts is re-encoded from what it decoded and must
//!   give the same bytes back (nothing skipped, nothing invented).
//! - `startup`: `StartupPacket::parse` classifies any packet; parameters read
//!   as PostgreSQL reads them (pairs up to an empty name, the last of a
//!   repeated name wins); a StartupMessage rewritten with `with_param` parses
//!   again and keeps every other parameter byte for byte.
//! - `sql_analyze`: `Analyzer::analyze` (the shared, shape-caching one) gives
//!   exactly the uncached analysis, also for texts differing only in literal
//!   values analysed after one another; `fingerprint` agrees with it and is
//!   deterministic. Runs on a 2 MiB stack, as on a tokio worker thread.
//! - `policy_parse`: `Policy::parse` never panics; errors point inside the
//!   text; an accepted policy parses again the same, its rules are found by
//!   the names it lists, and its durations, sizes and names format back to
//!   text that parses to the same value.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Mutex, OnceLock};

use bytes::{Bytes, BytesMut};
use pgcache::wire::{self, FrameError, Framer, Piece, StartupPacket, TxStatus};

// ---------------------------------------------------------------------------
// Wire: framer + decoders
// ---------------------------------------------------------------------------

/// What the relay uses (`session/relay.rs`): messages up to 1 MiB are whole.
const INSPECT_LIMIT: usize = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// Input layout: 3 bytes of set-up, then the byte stream.
/// - byte 0: the framer's buffer limit: < 0x80 the relay's 1 MiB, else
///   `b & 0x7f` bytes (the framer raises it to 5), to exercise streaming;
/// - byte 1: the largest accepted length: < 0x80 the relay's (1 GiB - 1),
///   else `(b & 0x7f) * 8`;
/// - byte 2: read sizes: 0 feeds everything at once, else reads of 1..=b bytes
///   (pseudo-random, seeded by b).
pub fn wire_client(data: &[u8]) {
    wire_stream(data, Side::Client);
}

/// Same layout as [`wire_client`]; the server side's decoders.
pub fn wire_server(data: &[u8]) {
    wire_stream(data, Side::Server);
}

fn wire_stream(data: &[u8], side: Side) {
    let (setup, stream) = data.split_at(data.len().min(3));
    let get = |i: usize| setup.get(i).copied().unwrap_or(0);
    let buffer_limit = match get(0) {
        b if b < 0x80 => INSPECT_LIMIT,
        b => usize::from(b & 0x7f),
    };
    let max_len = match get(1) {
        b if b < 0x80 => wire::MAX_MESSAGE_LEN,
        b => usize::from(b & 0x7f) * 8,
    };
    let effective_limit = buffer_limit.max(5);
    let mut chunk_rng = Rng(u64::from(get(2)).wrapping_mul(0x9e37_79b9_7f4a_7c15) + 1);
    let max_chunk = usize::from(get(2));

    let mut framer = Framer::new(buffer_limit, max_len);
    let mut buf = BytesMut::new();
    let mut fed = 0usize;
    let mut out: Vec<u8> = Vec::with_capacity(stream.len());
    // The streamed message in progress: (tag, total bytes, bytes seen).
    let mut part: Option<(u8, usize, usize)> = None;

    'feed: while fed < stream.len() {
        let n = if max_chunk == 0 {
            stream.len() - fed
        } else {
            (1 + chunk_rng.below(max_chunk)).min(stream.len() - fed)
        };
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        loop {
            let before = buf.len();
            match framer.next(&mut buf) {
                Ok(None) => {
                    assert_eq!(buf.len(), before, "None consumed bytes");
                    break;
                }
                Ok(Some(Piece::Message { tag, bytes })) => {
                    assert!(part.is_none(), "whole message inside a streamed one");
                    assert!(!framer.in_part());
                    let len = header_len(&bytes);
                    assert_eq!(bytes[0], tag);
                    assert_eq!(len as usize + 1, bytes.len(), "length field vs message");
                    assert!(len >= 4 && len as usize <= max_len);
                    assert!(
                        bytes.len() <= effective_limit,
                        "whole message over the limit"
                    );
                    out.extend_from_slice(&bytes);
                    inspect(side, tag, &bytes);
                }
                Ok(Some(Piece::Part { tag, bytes, last })) => {
                    assert!(!bytes.is_empty(), "empty part");
                    let (ptag, total, seen) = match part {
                        Some(p) => p,
                        None => {
                            // First part: starts with the header.
                            assert!(bytes.len() >= 5, "first part without its header");
                            assert_eq!(bytes[0], tag);
                            let len = header_len(&bytes);
                            assert!(len >= 4 && len as usize <= max_len);
                            let total = len as usize + 1;
                            assert!(total > effective_limit, "streamed a small message");
                            (tag, total, 0)
                        }
                    };
                    assert_eq!(ptag, tag, "tag changed between parts");
                    let seen = seen + bytes.len();
                    assert!(seen <= total, "parts longer than the message");
                    assert_eq!(last, seen == total, "wrong `last` flag");
                    assert_eq!(framer.in_part(), !last);
                    part = (!last).then_some((tag, total, seen));
                    out.extend_from_slice(&bytes);
                }
                Err(e) => {
                    assert_eq!(buf.len(), before, "an error consumed bytes");
                    assert!(part.is_none(), "error inside a streamed message");
                    let len = header_len(&buf);
                    match e {
                        FrameError::InvalidLength { len: l, .. } => {
                            assert_eq!(l, len);
                            assert!(len < 4);
                        }
                        FrameError::TooLarge { len: l, limit, .. } => {
                            assert_eq!(l, len);
                            assert_eq!(limit, max_len);
                            assert!(len as usize > max_len);
                        }
                    }
                    break 'feed;
                }
            }
        }
    }
    // Nothing lost, nothing reordered: what was handed out and what is still
    // buffered is exactly what was fed.
    out.extend_from_slice(&buf);
    assert!(out == stream[..fed], "framer output differs from its input");
    assert_eq!(framer.mid_message(&buf), part.is_some() || !buf.is_empty());
}

fn header_len(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[1], b[2], b[3], b[4]])
}

/// Runs the decoders of `side` on one whole message: the one its tag calls
/// for, and (they must cope with anything) all the others too.
fn inspect(side: Side, tag: u8, m: &[u8]) {
    match side {
        Side::Client => {
            check_query_text(m);
            check_parse(m);
            check_bind(m);
            check_execute(m);
            check_target(m);
        }
        Side::Server => {
            check_severity(m);
            check_parameter_status(m);
            check_ready_for_query(tag, m);
        }
    }
}

/// Tag and length word of a message with this body.
fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    pgcache::wire::encode::frame(tag, body)
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    assert!(!s.as_bytes().contains(&0), "decoded string holds a NUL");
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn check_query_text(m: &[u8]) {
    let expected = m
        .get(5..)
        .and_then(|b| b.split_last())
        .filter(|(last, _)| **last == 0)
        .and_then(|(_, t)| std::str::from_utf8(t).ok());
    let got = wire::query::text(m);
    assert_eq!(got, expected, "query::text");
    if let Some(t) = got {
        let mut body = Vec::new();
        body.extend_from_slice(t.as_bytes());
        body.push(0);
        assert_eq!(frame(m[0], &body), m);
    }
}

fn check_parse(m: &[u8]) {
    let Some(p) = wire::parse::Parse::decode(m) else {
        return;
    };
    assert_eq!(p.param_types.len() % 4, 0);
    let mut body = Vec::new();
    cstr(&mut body, p.statement);
    cstr(&mut body, p.query);
    body.extend_from_slice(&((p.param_types.len() / 4) as i16).to_be_bytes());
    body.extend_from_slice(p.param_types);
    assert_eq!(frame(m[0], &body), m, "Parse re-encoded differs");
}

fn check_bind(m: &[u8]) {
    let Some(b) = wire::bind::Bind::decode(m) else {
        return;
    };
    let mut body = Vec::new();
    cstr(&mut body, b.portal);
    cstr(&mut body, b.statement);
    body.extend_from_slice(b.arguments);
    assert_eq!(frame(m[0], &body), m, "Bind re-encoded differs");

    // An independent reading of the arguments: formats, values, results.
    let a = b.arguments;
    let mut pos = 0;
    let i16_at = |pos: &mut usize| {
        let v = i16::from_be_bytes([a[*pos], a[*pos + 1]]);
        *pos += 2;
        v
    };
    let n_formats = i16_at(&mut pos) as usize;
    let formats: Vec<i16> = (0..n_formats).map(|_| i16_at(&mut pos)).collect();
    let n_params = i16_at(&mut pos) as usize;
    let mut expected: Vec<Option<&[u8]>> = Vec::new();
    for i in 0..n_params {
        let len = i32::from_be_bytes([a[pos], a[pos + 1], a[pos + 2], a[pos + 3]]);
        pos += 4;
        let value = (len >= 0).then(|| {
            let v = &a[pos..pos + len as usize];
            pos += len as usize;
            v
        });
        let format = match formats.len() {
            0 => 0,
            1 => formats[0],
            _ => formats.get(i).copied().unwrap_or(0),
        };
        if format == 0 {
            expected.push(value);
        }
    }
    assert_eq!(
        b.text_params().collect::<Vec<_>>(),
        expected,
        "Bind::text_params"
    );
}

fn check_execute(m: &[u8]) {
    let Some(e) = wire::execute::Execute::decode(m) else {
        return;
    };
    let mut body = Vec::new();
    cstr(&mut body, e.portal);
    body.extend_from_slice(&e.max_rows.to_be_bytes());
    assert_eq!(frame(m[0], &body), m, "Execute re-encoded differs");
}

fn check_target(m: &[u8]) {
    use wire::describe::Target;
    let Some(t) = Target::decode(m) else {
        return;
    };
    let (kind, name) = match t {
        Target::Statement(n) => (b'S', n),
        Target::Portal(n) => (b'P', n),
    };
    let mut body = vec![kind];
    cstr(&mut body, name);
    assert_eq!(frame(m[0], &body), m, "Describe/Close re-encoded differs");
}

fn check_severity(m: &[u8]) {
    // Independent reading: the first 'V' field, else the last 'S' field, of a
    // well-formed field list (each field NUL-terminated).
    let expected = (|| {
        let mut fields = m.get(5..)?;
        let mut localized = None;
        while let Some((&code, rest)) = fields.split_first() {
            if code == 0 {
                break;
            }
            let end = rest.iter().position(|&b| b == 0)?;
            if code == b'V' {
                return Some(&rest[..end]);
            }
            if code == b'S' {
                localized = Some(&rest[..end]);
            }
            fields = &rest[end + 1..];
        }
        localized
    })();
    let got = wire::error_response::severity_of(m);
    assert_eq!(got, expected, "severity_of");
    if let Some(s) = got {
        assert!(!s.contains(&0));
    }
}

fn check_parameter_status(m: &[u8]) {
    let Some((name, value)) = wire::parameter_status::parse(m) else {
        return;
    };
    let mut prefix = Vec::new();
    cstr(&mut prefix, name);
    prefix.extend_from_slice(value.as_bytes());
    assert!(!value.as_bytes().contains(&0));
    assert!(
        m[5..].starts_with(&prefix),
        "ParameterStatus fields not from the message"
    );
    let after = &m[5 + prefix.len()..];
    assert!(after.is_empty() || after[0] == 0, "value cut short");
}

fn check_ready_for_query(tag: u8, m: &[u8]) {
    let status = TxStatus::from_message(m);
    if tag == wire::backend::READY_FOR_QUERY {
        if let Some(s) = status {
            assert_eq!(s.message(), m, "ReadyForQuery round trip");
        } else {
            assert!(m.len() != 6 || !matches!(m[5], b'I' | b'T' | b'E'));
        }
    }
}

// ---------------------------------------------------------------------------
// Startup packets
// ---------------------------------------------------------------------------

/// The input is the whole packet. The proxy reads the length word first
/// (`check_length`), then that many bytes, so the packet parsed here has its
/// length word set to its real length; the input's own word goes through
/// `check_length`.
pub fn startup(data: &[u8]) {
    let mut raw = data.to_vec();
    if data.len() >= 4 {
        let word = header_word(data);
        let ok = wire::startup::check_length(word);
        assert_eq!(ok.is_ok(), (8..=10_000).contains(&word));
        raw[..4].copy_from_slice(&(data.len() as u32).to_be_bytes());
    }
    let parsed = StartupPacket::parse(Bytes::from(raw));
    let Ok(StartupPacket::Startup(s)) = parsed else {
        return;
    };
    assert_eq!(s.major, 3);
    // The server's reading (ProcessStartupPacket): NUL-terminated name/value
    // pairs up to an empty name; a name may repeat and the last one counts.
    let fields: Vec<&[u8]> = s.raw[8..].split(|&b| b == 0).collect();
    let mut server: Vec<(&[u8], &[u8])> = Vec::new();
    let mut i = 0;
    while i + 1 < fields.len() && !fields[i].is_empty() {
        server.push((fields[i], fields[i + 1]));
        i += 2;
    }
    let raw: Vec<(&[u8], &[u8])> = s.raw_params().collect();
    assert_eq!(raw, server, "raw_params");
    let utf8 = server
        .iter()
        .all(|(n, v)| std::str::from_utf8(n).is_ok() && std::str::from_utf8(v).is_ok());
    assert_eq!(s.is_utf8(), utf8, "is_utf8");
    let params: Vec<(&str, &str)> = s.params().collect();
    assert_eq!(params.len(), server.len());
    if utf8 {
        for ((n, v), (rn, rv)) in params.iter().zip(&server) {
            assert_eq!((n.as_bytes(), v.as_bytes()), (*rn, *rv), "params");
        }
        for (name, _) in &params {
            // The value the server uses: the last one sent under that name.
            let last = params
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| *v);
            assert_eq!(
                s.param(name),
                last,
                "param({name:?}) is not the server's value"
            );
        }
    }
    // What the admin console does, and a rewrite of an existing parameter.
    let mut rewrites = vec![("database", "postgres")];
    if let Some(&(name, _)) = params.first().filter(|(n, _)| !n.is_empty()) {
        rewrites.push((name, "x"));
    }
    for (name, value) in rewrites {
        let t = s.with_param(name, value);
        assert_eq!(header_word(&t.raw) as usize, t.raw.len(), "length word");
        let again = match StartupPacket::parse(t.raw.clone()) {
            Ok(StartupPacket::Startup(again)) => again,
            other if t.raw.len() > 10_000 => {
                assert!(other.is_err());
                continue;
            }
            other => panic!("with_param gave an unparsable packet: {other:?}"),
        };
        assert_eq!((again.major, again.minor), (s.major, s.minor));
        assert_eq!(again.param(name), Some(value));
        // Every other parameter kept byte for byte, in order.
        let mut expected: Vec<(&[u8], &[u8])> = Vec::new();
        let mut found = false;
        for &(n, v) in &server {
            if n == name.as_bytes() {
                found = true;
                expected.push((n, value.as_bytes()));
            } else {
                expected.push((n, v));
            }
        }
        if !found {
            expected.push((name.as_bytes(), value.as_bytes()));
        }
        let got: Vec<(&[u8], &[u8])> = again.raw_params().collect();
        assert!(
            got == expected,
            "with_param({name:?}) changed other parameters"
        );
    }
}

fn header_word(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

// ---------------------------------------------------------------------------
// SQL analysis
// ---------------------------------------------------------------------------

/// The input, read as UTF-8 (invalid bytes replaced), is one query text.
pub fn sql_analyze(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    on_worker_stack(move || check_sql(&text));
}

fn check_sql(text: &str) {
    use pgcache::sql::{self, Analyzer};

    let (fp, id) = sql::fingerprint(text);
    assert_eq!(
        sql::fingerprint(text),
        (fp.clone(), id),
        "fingerprint not deterministic"
    );

    let uncached = sql::analyze(text);
    assert_eq!(&*uncached.fingerprint, fp.as_str());
    assert_eq!(uncached.fingerprint_id, id);

    // The shared analyzer: the first analysis is a miss; texts of the same
    // shape analysed next may be answered from the cache, and must get
    // exactly what an uncached analysis says.
    let analyzer = Analyzer::new(8);
    let a = analyzer.analyze(text);
    assert_eq!(
        *a, uncached,
        "analyzer (miss) differs from uncached analysis"
    );
    let again = analyzer.analyze(text);
    assert_eq!(
        *again, uncached,
        "analyzer (hit) differs from uncached analysis"
    );
    for variant in literal_variants(text) {
        let expected = sql::analyze(&variant);
        let got = analyzer.analyze(&variant);
        assert_eq!(
            *got, expected,
            "cached analysis of a same-shape text differs:\n first: {text:?}\n  then: {variant:?}"
        );
    }

    // The policy side compares fingerprints in canonical form.
    let canon = policies::canonical_fingerprint(&fp);
    assert_eq!(policies::canonical_fingerprint(&canon), canon);
}

/// Texts that differ from `text` in literal values only, or nearly so: digits
/// changed everywhere, letters changed inside single quotes. (Not exact: the
/// rewrite knows no SQL lexing. Any text is a valid input; it only makes
/// shape-cache hits likely.)
fn literal_variants(text: &str) -> Vec<String> {
    let digits: String = text
        .chars()
        .map(|c| match c {
            '0'..='8' => (c as u8 + 1) as char,
            '9' => '0',
            _ => c,
        })
        .collect();
    let mut quoted = String::with_capacity(text.len());
    let mut inside = false;
    for c in text.chars() {
        if c == '\'' {
            inside = !inside;
            quoted.push(c);
        } else if inside && c.is_ascii_alphabetic() {
            quoted.push(if c == 'z' { 'a' } else { (c as u8 + 1) as char });
        } else if inside && c.is_ascii_digit() {
            quoted.push('7');
        } else {
            quoted.push(c);
        }
    }
    let mut out = vec![digits, quoted];
    out.retain(|v| v != text);
    out.dedup();
    out
}

// ---------------------------------------------------------------------------
// Policy files
// ---------------------------------------------------------------------------

/// The input, read as UTF-8 (invalid bytes replaced), is a policy file.
pub fn policy_parse(data: &[u8]) {
    use policies::{
        format_duration, format_size, parse_duration, parse_size, Policy, QualifiedName,
        RuleSource, MAX_TTL,
    };

    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let parsed = Policy::parse(text, None);
    assert_eq!(Policy::parse(text, None), parsed, "parse not deterministic");
    let policy = match parsed {
        Ok(p) => p,
        Err(errors) => {
            assert!(!errors.is_empty(), "no error in an error result");
            let lines = text.split('\n').count();
            for e in errors.iter() {
                assert!(
                    e.line >= 1 && e.line <= lines,
                    "error line {} of {lines}",
                    e.line
                );
                let line = text.split('\n').nth(e.line - 1).unwrap_or("");
                let width = line.chars().count() + 1;
                assert!(
                    e.column >= 1 && e.column <= width,
                    "error column {} on a line of {width}: {e}",
                    e.column
                );
                let _ = e.to_string();
            }
            return;
        }
    };
    let duration_round_trip = |d: std::time::Duration| {
        assert!(d <= MAX_TTL, "ttl {d:?} over MAX_TTL");
        assert_eq!(
            parse_duration(&format_duration(d)),
            Ok(d),
            "duration round trip"
        );
    };
    let size_round_trip = |n: u64| {
        assert_eq!(parse_size(&format_size(n)), Ok(n), "size round trip");
    };
    let name_round_trip = |q: &QualifiedName| {
        let shown = q.to_string();
        assert_eq!(
            QualifiedName::parse(&shown).as_ref(),
            Ok(q),
            "name {shown:?}"
        );
    };
    duration_round_trip(policy.default_ttl());
    size_round_trip(policy.max_memory());
    size_round_trip(policy.max_entry_size());
    for (name, spec) in policy.tables() {
        name_round_trip(name);
        spec.ttl.map(duration_round_trip);
        spec.max_entry_size.map(size_round_trip);
        for w in spec.trigger_writes.iter().flat_map(|w| w.iter()) {
            name_round_trip(w);
        }
        let rule = policy.table(&name.schema, &name.name);
        assert_eq!(rule.source, RuleSource::Exact, "rule for {name} not found");
        if let Some(c) = spec.cache {
            assert_eq!(rule.cache, c);
        }
        if let Some(t) = spec.ttl {
            assert_eq!(rule.ttl, t);
        }
    }
    for (schema, spec) in policy.schemas() {
        spec.ttl.map(duration_round_trip);
        let rule = policy.table(schema, "\u{1}no such table");
        assert_eq!(
            rule.source,
            RuleSource::Schema,
            "wildcard for {schema} not found"
        );
    }
    for (fingerprint, rule) in policy.queries() {
        rule.ttl.map(duration_round_trip);
        assert_eq!(
            policy.query(fingerprint),
            Some(*rule),
            "query rule {fingerprint:?}"
        );
    }
    for (name, rule) in policy.functions() {
        name_round_trip(name);
        rule.writes.iter().for_each(name_round_trip);
        assert_eq!(
            policy.function(&name.schema, &name.name).as_ref(),
            Some(rule)
        );
    }
    let tables: Vec<(&str, &str)> = policy
        .tables()
        .map(|(n, _)| (n.schema.as_str(), n.name.as_str()))
        .collect();
    let r = policy.resolve(None, tables.iter().copied());
    if let Some(t) = policy.tables().filter_map(|(_, s)| s.ttl).min() {
        assert!(r.ttl <= t);
    }
}

// ---------------------------------------------------------------------------
// Support
// ---------------------------------------------------------------------------

/// tokio's default worker stack: analysis runs there in the proxy.
const WORKER_STACK: usize = 2 << 20;

type Job = Box<dyn FnOnce() + Send>;
type Reply = std::thread::Result<()>;

/// Runs `job` on a long-lived thread with a tokio-sized stack and waits for
/// it. A panic there is raised again here (under libFuzzer the panic hook has
/// already aborted the process). Unoptimized builds (the replay runner's
/// debug profile) get a bigger stack: their frames are several times larger
/// than the release build's the proxy ships.
pub fn on_worker_stack(job: impl FnOnce() + Send + 'static) {
    static WORKER: OnceLock<Mutex<(Sender<Job>, Receiver<Reply>)>> = OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (reply_tx, reply_rx): (SyncSender<Reply>, Receiver<Reply>) = mpsc::sync_channel(1);
        let stack = if cfg!(debug_assertions) && !cfg!(fuzzing) {
            8 * WORKER_STACK
        } else {
            WORKER_STACK
        };
        std::thread::Builder::new()
            .name("analyze".into())
            .stack_size(stack)
            .spawn(move || {
                for job in job_rx {
                    let r = panic::catch_unwind(AssertUnwindSafe(job));
                    if reply_tx.send(r).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn the analysis thread");
        Mutex::new((job_tx, reply_rx))
    });
    let guard = worker.lock().unwrap_or_else(|e| e.into_inner());
    guard.0.send(Box::new(job)).expect("analysis thread gone");
    let reply = guard.1.recv().expect("analysis thread gone");
    drop(guard);
    if let Err(payload) = reply {
        panic::resume_unwind(payload);
    }
}

/// xorshift64*: read sizes here, mutations in the replay runner.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        if self.0 == 0 {
            self.0 = 0x2545_f491_4f6c_dd1d;
        }
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A fuzz target: its name and its check.
pub type Target = (&'static str, fn(&[u8]));

/// The fuzz targets by name, for the replay runner.
pub const TARGETS: &[Target] = &[
    ("wire_client", wire_client),
    ("wire_server", wire_server),
    ("startup", startup),
    ("sql_analyze", sql_analyze),
    ("policy_parse", policy_parse),
];
