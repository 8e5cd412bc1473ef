#!/usr/bin/env bash
# `make test`: every test, from a fresh clone. Installs what is missing, starts PostgreSQL,
# then runs, in order: formatting check, unit + integration + HTTP tests (a fresh database per
# test), the check that .sqlx/ matches the code and migrations, and the browser tests.
set -euo pipefail
# Ctrl-C or SIGTERM end the script through `exit`, so the EXIT trap (stopping the database
# we started) runs: bash skips EXIT traps when an untrapped signal kills it.
trap 'exit 130' INT
trap 'exit 143' TERM
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
started=$(date +%s)

step "tools"
scripts/setup.sh --browser
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"

step "database"
# Leave a cluster that was already running (say, for `make run`) as it was.
if [ -z "${DATABASE_URL:-}" ]; then
  if ! scripts/db.sh url postgres >/dev/null 2>&1; then
    scripts/db.sh start
    # DATABASE_URL is re-pointed below; the embedded cluster is what we stop.
    trap 'DATABASE_URL= scripts/db.sh stop' EXIT
  fi
fi
PSQL=$(scripts/db.sh psql-bin)
export PSQL
schema_url=$(scripts/sqlx-schema-db.sh)

step "formatting"
cargo fmt --all --check

# Builds check every query against the live schema (SQLX_OFFLINE=false) and write the
# metadata they compiled into a scratch folder, compared with .sqlx/ below.
sqlx_seen=$(mktemp -d)
export SQLX_OFFLINE=false SQLX_OFFLINE_DIR=$sqlx_seen DATABASE_URL=$schema_url

step "unit, integration and HTTP tests"
# One invocation for both packages: the same feature set as the server build, so no rebuild.
# One test at a time: each #[sqlx::test] runs its own tokio runtime, and with several
# runtimes rendering pages at once in one process we have seen a rare render stall (cut off
# by the 30 s request timeout). The server runs one runtime; until the stall is understood,
# the tests do too. It costs about 15 seconds.
cargo test -p app -p server --features app/ssr -- --test-threads=1

step ".sqlx/ matches the code and migrations"
stale=0
for f in "$sqlx_seen"/*.json; do
  [ -e "$f" ] || continue
  if ! cmp -s "$f" ".sqlx/$(basename "$f")"; then
    echo "stale or missing: .sqlx/$(basename "$f")"; stale=1
  fi
done
[ "$stale" = 0 ] || { echo "run scripts/sqlx-prepare.sh and commit .sqlx/"; exit 1; }
echo "ok ($(ls "$sqlx_seen" | wc -l) queries compiled in this run)"

step "browser tests (Playwright in Chromium)"
DATABASE_URL=$(scripts/db.sh fresh staff_console_e2e)
export DATABASE_URL SQLX_OFFLINE=true STAFF_CONSOLE_ENV=development RUST_LOG=${RUST_LOG:-warn}
export LEPTOS_SITE_ADDR=${E2E_ADDR:-127.0.0.1:3917}
export E2E_BASE_URL="http://$LEPTOS_SITE_ADDR"
cargo leptos end-to-end

echo
echo "all tests passed in $(( $(date +%s) - started ))s"
