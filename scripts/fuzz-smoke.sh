#!/usr/bin/env bash
# Fuzz smoke run: every fuzz target's checks (fuzz/harness) on its seed corpus
# (fuzz/corpus/<target>/) and then on mutated inputs, for about 10 seconds per
# target. Exits non-zero on any panic, failed check or stack overflow.
#
# Plain cargo on stable Rust, no cargo-fuzz or libFuzzer: installing
# cargo-fuzz and building the instrumented targets takes minutes, this takes
# about a minute after `cargo test --workspace` (it reuses that build in
# target/). Coverage-guided fuzzing for longer runs: fuzz/README.md.
#
#   FUZZ_SMOKE_SECONDS   seconds per target (default 10)
#   FUZZ_SMOKE_SEED      the mutation seed (default: from the clock; printed)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

# The fuzz project is its own workspace; give it the proxy's exact dependency
# versions, so its build reuses the workspace's and tests what ships.
cp Cargo.lock fuzz/Cargo.lock
cargo build --quiet --manifest-path fuzz/Cargo.toml -p pgcache-fuzz-harness --bin fuzz-replay

args=(--seconds "${FUZZ_SMOKE_SECONDS:-10}")
if [[ -n "${FUZZ_SMOKE_SEED:-}" ]]; then
    args+=(--seed "$FUZZ_SMOKE_SEED")
fi
exec "$CARGO_TARGET_DIR/debug/fuzz-replay" "${args[@]}"
