#!/usr/bin/env bash
# The demo: a throwaway PostgreSQL, pgcache in front of it, a workload, a report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh demo
cargo run --release -p pgcache -- demo "$@"
