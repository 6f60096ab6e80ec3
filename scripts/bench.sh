#!/usr/bin/env bash
# The benchmark: a throwaway PostgreSQL, pgcache (also with --change-feed
# auto), pgpool-II with its query cache and a canned-row "ceiling" server,
# measured with pgbench side by side; then the freshness of reads through the
# change feed after writes made straight on the server, and a read-mostly
# workload whose writes go straight to the server (stale reads, hit ratio;
# pgcache with the feed against pgpool-II).
# Writes a Markdown report (and runs.csv) to <target>/release/bench/ and prints it.
# Knobs (environment): BENCH_ROUNDS, BENCH_SECONDS, BENCH_SECONDS_1C, BENCH_CLIENTS,
# BENCH_THREADS, BENCH_SCALE, BENCH_WORKLOADS (or none), BENCH_OUT, BENCH_PERF=1,
# BENCH_FRESHNESS, BENCH_DIRECT_SECONDS, BENCH_DIRECT_WRITE_MS; see
# proxy/examples/bench/main.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh bench

cargo build --release -p pgcache --bins --example bench
target_dir="${CARGO_TARGET_DIR:-target}"
exec "$target_dir/release/examples/bench" "$@"
