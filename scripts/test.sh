#!/usr/bin/env bash
# `make test`: every test, from a fresh clone: `make check` (formatting, clippy, the Rust
# tests, the .sqlx/ check); then the release front end (hashed, precompressed, size profile)
# with a development-profile server; the browser tests (Playwright in Debian's Chromium) on
# it; and the same build in production mode behind Caddy over HTTPS (scripts/tls-test.sh,
# with the bundle-size budget). Installs what is missing and starts PostgreSQL.
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

step "the release front end, and a server to test it with (scripts/release.sh --test)"
scripts/setup.sh --browser
scripts/release.sh --test

step "browser tests (Playwright in Chromium)"
scripts/e2e.sh

step "behind TLS: the release front end behind Caddy, as production runs it (scripts/tls-test.sh)"
scripts/tls-test.sh --dist target/test-dist

echo
echo "all tests passed in $(( $(date +%s) - started ))s"
