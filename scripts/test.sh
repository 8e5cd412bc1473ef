#!/usr/bin/env bash
# `make test`: every test, from a fresh clone: `make check` (formatting, clippy, the Rust
# tests, the .sqlx/ check), then the browser tests (Playwright in Debian's Chromium against
# the console built by cargo-leptos). Installs what is missing and starts PostgreSQL.
set -euo pipefail
# Ctrl-C or SIGTERM end the script through `exit`, so the EXIT trap (stopping the database
# we started) runs: bash skips EXIT traps when an untrapped signal kills it.
trap 'exit 130' INT
trap 'exit 143' TERM
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
started=$(date +%s)

# One database for both halves: started here (unless one is running or DATABASE_URL is
# set), so check.sh leaves it running for the browser tests.
if [ -z "${DATABASE_URL:-}" ]; then
  if ! scripts/db.sh url postgres >/dev/null 2>&1; then
    scripts/db.sh start
    trap 'DATABASE_URL= scripts/db.sh stop' EXIT
  fi
fi

scripts/check.sh

step "browser tests (Playwright in Chromium)"
scripts/setup.sh --browser
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"
PSQL=$(scripts/db.sh psql-bin)
export PSQL
DATABASE_URL=$(scripts/db.sh fresh staff_console_e2e)
export DATABASE_URL SQLX_OFFLINE=true STAFF_CONSOLE_ENV=development RUST_LOG=${RUST_LOG:-warn}
export LEPTOS_SITE_ADDR=${E2E_ADDR:-127.0.0.1:3917}
export E2E_BASE_URL="http://$LEPTOS_SITE_ADDR"
cargo leptos end-to-end

echo
echo "all tests passed in $(( $(date +%s) - started ))s"
