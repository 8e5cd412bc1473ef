#!/usr/bin/env bash
# Runs the browser tests again against the console as last built (`make test` or
# `cargo leptos build`), without rebuilding: a fresh database, the server started on
# E2E_ADDR (default 127.0.0.1:3917), Playwright with the given arguments (a spec file, say),
# then the server stopped. For repeating the suite, or one spec, quickly.
#
#   scripts/e2e.sh                      the whole browser suite
#   scripts/e2e.sh tests/audit.spec.ts  one spec
set -euo pipefail
trap 'exit 130' INT
trap 'exit 143' TERM
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[ -x target/debug/staff-console ] && [ -d target/site/pkg ] \
  || { echo "e2e: build first (make test, or cargo leptos build)" >&2; exit 1; }
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"

if [ -z "${DATABASE_URL:-}" ] && ! scripts/db.sh url postgres >/dev/null 2>&1; then
  scripts/db.sh start
  stop_db=true
fi
PSQL=$(scripts/db.sh psql-bin)
DATABASE_URL=$(scripts/db.sh fresh staff_console_e2e)
export PSQL DATABASE_URL SQLX_OFFLINE=true STAFF_CONSOLE_ENV=development RUST_LOG=${RUST_LOG:-warn}
export LEPTOS_SITE_ADDR=${E2E_ADDR:-127.0.0.1:3917} LEPTOS_SITE_ROOT=target/site
export LEPTOS_OUTPUT_NAME=staff_console LEPTOS_SITE_PKG_DIR=pkg
export E2E_BASE_URL="http://$LEPTOS_SITE_ADDR"

log=$(mktemp)
target/debug/staff-console >"$log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  [ "${stop_db:-}" = true ] && DATABASE_URL= scripts/db.sh stop
  rm -f "$log"
}
trap cleanup EXIT
status=0
(cd end2end && npx playwright test "$@") || status=$?
if [ "$status" != 0 ]; then
  echo "--- server log (last 40 lines) ---"
  tail -n 40 "$log"
fi
exit "$status"
