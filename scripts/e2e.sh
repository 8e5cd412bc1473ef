#!/usr/bin/env bash
# Runs the browser tests against the console as last built by `make test`
# (`scripts/release.sh --test`: target/test-dist/, the release front end with a development-
# profile server), without rebuilding: a fresh database, the server started on E2E_ADDR
# (default 127.0.0.1:3917) in development mode, Playwright with the given arguments (a spec
# file, say), then the server stopped. `make test` runs it; it is also how to repeat the
# suite, or one spec, quickly. E2E_DIST points it at another build (dist/, say).
#
#   scripts/e2e.sh                      the whole browser suite
#   scripts/e2e.sh tests/audit.spec.ts  one spec
set -euo pipefail
trap 'exit 130' INT
trap 'exit 143' TERM
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
dist=${E2E_DIST:-target/test-dist}
[ -x "$dist/staff-console" ] && [ -d "$dist/site/pkg" ] \
  || { echo "e2e: build first (make test, or scripts/release.sh --test)" >&2; exit 1; }
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"

if [ -z "${DATABASE_URL:-}" ] && ! scripts/db.sh url postgres >/dev/null 2>&1; then
  scripts/db.sh start
  stop_db=true
fi
PSQL=$(scripts/db.sh psql-bin)
DATABASE_URL=$(scripts/db.sh fresh staff_console_e2e)
export PSQL DATABASE_URL SQLX_OFFLINE=true STAFF_CONSOLE_ENV=development RUST_LOG=${RUST_LOG:-warn}
# Second factors optional, so the specs' fixture admin signs in with a password (a code is
# accepted once, and the specs sign in many times a minute); mfa.spec.ts gives its own
# accounts an authenticator app, which they are then always asked for.
export MFA_REQUIRED=false
export LEPTOS_SITE_ADDR=${E2E_ADDR:-127.0.0.1:3917}
# Browsers offer passkeys only to a site reached by a domain name, not an IP address: the
# console is browsed as localhost (which /etc/hosts and Chromium resolve to 127.0.0.1,
# where it listens), and knows itself by that name.
export PUBLIC_URL="http://localhost:${LEPTOS_SITE_ADDR##*:}"
export E2E_BASE_URL="$PUBLIC_URL" STAFF_CONSOLE_BIN="$ROOT/$dist/staff-console"
# The build folder finds its site and file hashes beside the binary.
unset LEPTOS_SITE_ROOT LEPTOS_HASH_FILES LEPTOS_OUTPUT_NAME LEPTOS_SITE_PKG_DIR

log=$(mktemp)
"$dist/staff-console" >"$log" 2>&1 &
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
  # A panic's message first: its backtrace would push it out of the tail.
  if grep -q "panicked" "$log"; then
    echo "--- server panics ---"
    grep -A 2 "panicked" "$log" | head -n 30
  fi
  echo "--- server log (last 40 lines) ---"
  tail -n 40 "$log"
fi
exit "$status"
