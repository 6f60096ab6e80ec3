#!/usr/bin/env bash
# The benchmark: a throwaway PostgreSQL, pgcache (also with --change-feed
# auto), pgpool-II with its query cache and a canned-row "ceiling" server,
# measured with pgbench side by side; then the freshness of reads through the
# change feed after writes made straight on the server.
# Writes a Markdown report (and runs.csv) to <target>/release/bench/ and prints it.
# Knobs (environment): BENCH_ROUNDS, BENCH_SECONDS, BENCH_SECONDS_1C, BENCH_CLIENTS,
# BENCH_THREADS, BENCH_SCALE, BENCH_WORKLOADS, BENCH_OUT, BENCH_PERF=1,
# BENCH_FRESHNESS; see
# proxy/examples/bench/main.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh bench

cargo build --release -p pgcache --bins --example bench
target_dir="${CARGO_TARGET_DIR:-target}"
exec "$target_dir/release/examples/bench" "$@"
