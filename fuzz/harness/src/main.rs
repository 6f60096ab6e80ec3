//! `fuzz-replay`: runs the fuzz targets' checks without libFuzzer or
//! cargo-fuzz, on stable Rust, for CI (scripts/fuzz-smoke.sh).
//!
//! ```text
//! fuzz-replay [--seconds N] [--seed S] [--corpus DIR] [TARGET ...]
//! fuzz-replay TARGET FILE_OR_DIR ...        replay these inputs only
//! ```
//!
//! For each target (all by default): every file of `DIR/TARGET/` (default
//! `corpus/` next to this crate's parent), then, for N seconds (default 10),
//! inputs made by mutating those seeds (bit flips, byte edits, splices,
//! dictionary tokens). Inputs are a deterministic function of the seed (which
//! is printed), so a run can be repeated exactly. An input that panics is
//! written to `artifacts/TARGET/crash-*` and the run exits 1 after finishing
//! the other targets. A stack overflow aborts the process (exit status 134):
//! run again with the printed seed and `--verbose-inputs` to see the input.
//! The last line says how many targets passed and failed.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use harness::{Rng, TARGETS};

struct Options {
    seconds: f64,
    seed: u64,
    corpus: PathBuf,
    artifacts: PathBuf,
    targets: Vec<String>,
    files: Vec<PathBuf>,
    verbose_inputs: bool,
    max_len: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: fuzz-replay [--seconds N] [--seed S] [--corpus DIR] [--artifacts DIR] \
         [--max-len N] [--verbose-inputs] [TARGET ...]\n       \
         fuzz-replay TARGET FILE_OR_DIR ...\ntargets: {}",
        TARGETS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
    );
    std::process::exit(2)
}

fn options() -> Options {
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut o = Options {
        seconds: 10.0,
        seed: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        corpus: fuzz_dir.join("corpus"),
        artifacts: fuzz_dir.join("artifacts"),
        targets: vec![],
        files: vec![],
        verbose_inputs: false,
        max_len: 4096,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--seconds" => o.seconds = value().parse().unwrap_or_else(|_| usage()),
            "--seed" => o.seed = value().parse().unwrap_or_else(|_| usage()),
            "--corpus" => o.corpus = value().into(),
            "--artifacts" => o.artifacts = value().into(),
            "--max-len" => o.max_len = value().parse().unwrap_or_else(|_| usage()),
            "--verbose-inputs" => o.verbose_inputs = true,
            "-h" | "--help" => usage(),
            _ if TARGETS.iter().any(|t| t.0 == a) && o.files.is_empty() => o.targets.push(a),
            _ if !o.targets.is_empty() && Path::new(&a).exists() => o.files.push(a.into()),
            _ => usage(),
        }
    }
    if !o.files.is_empty() && o.targets.len() != 1 {
        usage();
    }
    if o.targets.is_empty() {
        o.targets = TARGETS.iter().map(|t| t.0.to_owned()).collect();
    }
    o
}

/// The files of `path` (itself if a file), sorted, hidden ones skipped.
fn inputs_in(path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = vec![];
    if path.is_file() {
        files.push(path.to_path_buf());
    } else if let Ok(dir) = std::fs::read_dir(path) {
        for e in dir.flatten() {
            let p = e.path();
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if p.is_file() && !hidden {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|d| (p, d)))
        .collect()
}

fn main() -> ExitCode {
    let o = options();
    // Panics are caught and reported per input; keep the message, short.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        eprintln!("--- panic: {info}");
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            default_hook(info);
        }
    }));

    let (mut passed, mut failed) = (0usize, 0usize);
    if !o.files.is_empty() {
        let f = target_fn(&o.targets[0]);
        for path in &o.files {
            for (p, data) in inputs_in(path) {
                let ok = run_one(f, &data);
                println!("{}: {}", p.display(), if ok { "ok" } else { "FAILED" });
                passed += usize::from(ok);
                failed += usize::from(!ok);
            }
        }
        return exit(passed, failed);
    }

    println!("fuzz-replay: seed {} ({}s per target)", o.seed, o.seconds);
    for (i, name) in o.targets.iter().enumerate() {
        let f = target_fn(name);
        let seeds = inputs_in(&o.corpus.join(name));
        let started = Instant::now();
        let mut crashes = 0usize;
        for (p, data) in &seeds {
            if !run_one(f, data) {
                println!("{name}: seed {} FAILED", p.display());
                crashes += 1;
            }
        }
        let mut rng = Rng(o.seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut pool: Vec<Vec<u8>> = seeds.into_iter().map(|(_, d)| d).collect();
        if pool.is_empty() {
            pool.push(vec![]);
        }
        let seed_count = pool.len();
        let deadline = started + Duration::from_secs_f64(o.seconds);
        let mut runs = 0u64;
        while Instant::now() < deadline && crashes < 5 {
            let input = mutate(&mut rng, &pool, dictionary(name), o.max_len);
            if o.verbose_inputs {
                eprintln!("{name} input {runs}: {}", escape(&input));
            }
            runs += 1;
            if !run_one(f, &input) {
                crashes += 1;
                let path = save(&o.artifacts.join(name), &input);
                println!(
                    "{name}: CRASH on a mutated input, saved to {} (replay: fuzz-replay {name} {})",
                    path.display(),
                    path.display()
                );
            } else if pool.len() < seed_count + 256 && rng.below(16) == 0 {
                // Keep some mutants to mutate further (no coverage feedback).
                pool.push(input);
            } else if pool.len() >= seed_count + 256 {
                let k = seed_count + rng.below(256);
                pool[k] = input;
            }
        }
        println!(
            "{name}: {} seeds, {runs} mutated inputs in {:.1}s, {crashes} failures",
            seed_count,
            started.elapsed().as_secs_f64()
        );
        passed += usize::from(crashes == 0);
        failed += usize::from(crashes > 0);
    }
    exit(passed, failed)
}

/// One closing line: targets (or replayed files) that passed and failed.
fn exit(passed: usize, failed: usize) -> ExitCode {
    println!("fuzz-replay: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn target_fn(name: &str) -> fn(&[u8]) {
    TARGETS
        .iter()
        .find(|t| t.0 == name)
        .map(|t| t.1)
        .unwrap_or_else(|| usage())
}

fn run_one(f: fn(&[u8]), data: &[u8]) -> bool {
    panic::catch_unwind(AssertUnwindSafe(|| f(data))).is_ok()
}

fn save(dir: &Path, data: &[u8]) -> PathBuf {
    let _ = std::fs::create_dir_all(dir);
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    let path = dir.join(format!("crash-{:016x}", h.finish()));
    if let Err(e) = std::fs::write(&path, data) {
        eprintln!("cannot save {}: {e}", path.display());
    }
    path
}

fn escape(data: &[u8]) -> String {
    data.iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// Tokens worth inserting whole, per target.
fn dictionary(target: &str) -> &'static [&'static [u8]] {
    match target {
        "wire_client" | "wire_server" => &[
            b"\0\0\0\x04",
            b"\0\0\0\x05",
            b"\0\0\0\x08",
            b"\xff\xff\xff\xff",
            b"\x7f\xff\xff\xff",
            b"\0\x01",
            b"\xff\xff",
            b"\0",
            b"P",
            b"B",
            b"E",
            b"D",
            b"C",
            b"Q",
            b"S",
            b"Z",
            b"SFATAL\0",
            b"VERROR\0",
        ],
        "startup" => &[
            b"\0\x03\0\0",
            b"\x04\xd2\x16\x2e",
            b"\x04\xd2\x16\x2f",
            b"\x04\xd2\x16\x30",
            b"user\0",
            b"database\0",
            b"options\0",
            b"\0",
            b"\xff",
        ],
        "sql_analyze" => &[
            b"SELECT ",
            b" FROM ",
            b" WHERE ",
            b"WITH ",
            b"INSERT INTO ",
            b"UPDATE ",
            b"DELETE FROM ",
            b"SET ",
            b"BEGIN",
            b"COMMIT",
            b";",
            b"(",
            b")",
            b"'",
            b"\"",
            b"$$",
            b"$1",
            b"::",
            b"E'\\'",
            b"U&\"",
            b"/*",
            b"*/",
            b"--",
            b"\n",
            b" now()",
            b"'now'",
            b" temp ",
            b" FOR UPDATE",
            b" UNION ",
            b" ONLY ",
            b"TABLE ",
            b"BEGIN ATOMIC ",
            b" END",
            b"0x1F",
            b"1_000",
            b"1e5",
            b"B'101'",
        ],
        "policy_parse" => &[
            b"[cache]\n",
            b"[defaults]\n",
            b"[tables.\"public.orders\"]\n",
            b"[tables.\"s.*\"]\n",
            b"[queries.\"select $1\"]\n",
            b"[functions.\"public.f\"]\n",
            b"ttl = ",
            b"max_entry_size = ",
            b"max_memory = ",
            b"cache = ",
            b"enabled = ",
            b"trigger_writes = ",
            b"writes = ",
            b"cacheable = ",
            b"\"5s\"",
            b"\"1MiB\"",
            b"\"87600h\"",
            b"true",
            b"false",
            b"[\"public.a\"]",
            b"\"",
            b"'",
            b"\n",
            b"\r\n",
            b"\t",
            b"\\u00e9",
        ],
        _ => &[],
    }
}

/// A mutant of an input from `pool`: 1 to 8 edits.
fn mutate(rng: &mut Rng, pool: &[Vec<u8>], dict: &[&[u8]], max_len: usize) -> Vec<u8> {
    let mut d = pool[rng.below(pool.len())].clone();
    let edits = 1 + rng.below(8);
    for _ in 0..edits {
        match rng.below(10) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = rng.next_u64() as u8;
            }
            2 => {
                let i = rng.below(d.len() + 1);
                d.insert(i, rng.next_u64() as u8);
            }
            3 if !d.is_empty() => {
                let i = rng.below(d.len());
                let n = 1 + rng.below((d.len() - i).min(16));
                d.drain(i..i + n);
            }
            4 if !d.is_empty() => {
                // Duplicate a range (repetition: nesting, chains, many messages).
                let i = rng.below(d.len());
                let n = 1 + rng.below((d.len() - i).min(64));
                let chunk = d[i..i + n].to_vec();
                let times = 1 + rng.below(8);
                for _ in 0..times {
                    d.splice(i..i, chunk.iter().copied());
                }
            }
            5 => {
                // Splice in part of another input.
                let other = &pool[rng.below(pool.len())];
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let n = 1 + rng.below(other.len() - i);
                    let at = rng.below(d.len() + 1);
                    d.splice(at..at, other[i..i + n].iter().copied());
                }
            }
            6 if d.len() >= 4 => {
                // An interesting 16- or 32-bit value (lengths, counts).
                let i = rng.below(d.len() - 3);
                let v: u32 =
                    [0, 1, 3, 4, 5, 0x7fff, 0x8000, 0xffff, u32::MAX, 0x7fff_ffff][rng.below(10)];
                if rng.below(2) == 0 {
                    d[i..i + 4].copy_from_slice(&v.to_be_bytes());
                } else {
                    d[i..i + 2].copy_from_slice(&(v as u16).to_be_bytes());
                }
            }
            7 if d.len() >= 2 => d.truncate(rng.below(d.len())),
            _ if !dict.is_empty() => {
                let tok = dict[rng.below(dict.len())];
                let at = rng.below(d.len() + 1);
                d.splice(at..at, tok.iter().copied());
            }
            _ => {}
        }
    }
    d.truncate(max_len);
    d
}
