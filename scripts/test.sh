#!/usr/bin/env bash
# The whole test suite: system packages, formatting, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh test
# node-postgres for the driver tests (proxy/tests/drivers.rs), from the lock file.
npm ci --prefix proxy/tests/drivers/node --no-audit --no-fund --loglevel=error
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
bash scripts/fuzz-smoke.sh
