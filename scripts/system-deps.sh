#!/usr/bin/env bash
# Installs the Debian packages one of pgcache's scripts needs, when missing:
#
#   bash scripts/system-deps.sh demo    # scripts/demo.sh: PostgreSQL
#   bash scripts/system-deps.sh test    # scripts/test.sh: the whole suite
#   bash scripts/system-deps.sh bench   # scripts/bench.sh: PostgreSQL, pgbench, pgpool-II
#
# Every check is a quick look for a file or a command, so on a machine that
# cannot install (not root, no apt-get) it fails at once, printing the exact
# command to run. Safe to run again.
set -euo pipefail

purpose="${1:-}"
case "$purpose" in
  demo|test|bench) ;;
  *)
    echo "usage: bash scripts/system-deps.sh demo|test|bench" >&2
    exit 2
    ;;
esac

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust with rustup (https://rustup.rs); the repository's" >&2
  echo "rust-toolchain.toml then selects the version, with rustfmt and clippy." >&2
  exit 1
fi

have() { command -v "$1" >/dev/null 2>&1; }
# Debian keeps the server's programs out of PATH, under /usr/lib/postgresql/<major>/bin.
have_pg_program() { have "$1" || compgen -G "/usr/lib/postgresql/*/bin/$1" >/dev/null; }
have_python_module() { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import $1" >/dev/null 2>&1; }

need=()
want() { [[ " ${need[*]} " == *" $1 "* ]] || need+=("$1"); }

# Everything: cargo links through the system C compiler (and `ring` compiles C);
# testkit runs initdb/postgres/pg_isready.
have cc || want gcc
have_pg_program initdb || want postgresql
have_pg_program pg_isready || want postgresql-client
have psql || want postgresql-client

if [ "$purpose" = test ] || [ "$purpose" = bench ]; then
  have_pg_program pgbench || want postgresql
fi

if [ "$purpose" = test ]; then
  have kill || want procps
  have promtool && have prometheus || want prometheus
  # The drivers the tests run against the proxy (proxy/tests/drivers.rs).
  have_python_module psycopg || want python3-psycopg
  have_python_module psycopg2 || want python3-psycopg2
  have_python_module asyncpg || want python3-asyncpg
  [ -e /usr/share/java/postgresql.jar ] || want libpostgresql-jdbc-java
  have javac && have java || want default-jdk-headless
  # node-postgres comes from npm (`npm ci` in scripts/test.sh).
  have node || want nodejs
  have npm || want npm
fi

if [ "$purpose" = bench ]; then
  have pgpool || [ -x /usr/sbin/pgpool ] || want pgpool2
fi

[ ${#need[@]} -eq 0 ] && exit 0

command="apt-get install -y --no-install-recommends ${need[*]}"
if ! have apt-get; then
  echo "error: missing ${need[*]} (Debian package names) and no apt-get here; install their equivalents" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing packages; run: sudo apt-get update && sudo $command" >&2
  exit 1
fi
echo "installing system packages for $purpose: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${need[@]}"
