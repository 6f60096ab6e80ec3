#!/usr/bin/env bash
# The whole test suite: system packages, formatting, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
bash scripts/fuzz-smoke.sh
