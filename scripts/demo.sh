#!/usr/bin/env bash
# The demo: a throwaway PostgreSQL (wal_level = logical), pgcache in front of
# it with the change feed on, a workload, a report, and an UPDATE made with psql
# straight on the server showing through pgcache within milliseconds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh demo
cargo run --release -p pgcache -- demo "$@"
