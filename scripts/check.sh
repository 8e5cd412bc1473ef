#!/usr/bin/env bash
# `make check`: the fast checks, from a fresh clone. Installs what is missing, starts
# PostgreSQL, then runs, in order: formatting, clippy on both builds (warnings are errors),
# the unit + integration + HTTP tests (a fresh database per test, in parallel), and the
# check that .sqlx/ matches the code and migrations. `make test` runs this, then the
# browser tests.
set -euo pipefail
# Ctrl-C or SIGTERM end the script through `exit`, so the EXIT trap (stopping the database
# we started) runs: bash skips EXIT traps when an untrapped signal kills it.
trap 'exit 130' INT
trap 'exit 143' TERM
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

started=$(date +%s)
# Each step says when it starts (seconds into the script), so a slow run shows where.
step() { printf '\n\033[1;34m==> %s\033[0m (at %ss)\n' "$*" "$(( $(date +%s) - started ))"; }

step "tools"
scripts/setup.sh
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"

step "formatting"
cargo fmt --all --check

step "database"
# Leave a cluster that was already running (say, for `make run`) as it was.
if [ -z "${DATABASE_URL:-}" ]; then
  if ! scripts/db.sh url postgres >/dev/null 2>&1; then
    scripts/db.sh start
    # DATABASE_URL is re-pointed below; the embedded cluster is what we stop.
    trap 'DATABASE_URL= scripts/db.sh stop' EXIT
  fi
fi
schema_url=$(scripts/sqlx-schema-db.sh)

# Builds check every query against the live schema (SQLX_OFFLINE=false) and write the
# metadata they compiled into a scratch folder, compared with .sqlx/ below.
sqlx_seen=$(mktemp -d)
export SQLX_OFFLINE=false SQLX_OFFLINE_DIR=$sqlx_seen DATABASE_URL=$schema_url
# What cargo-leptos sets when it builds the server (leptos reads it at compile time): the
# same value here, so the browser tests' server build reuses this build instead of
# recompiling leptos and everything above it.
export LEPTOS_OUTPUT_NAME=staff_console

step "audit events are written in one place"
# The insert is private to Change (app/src/auth/require.rs); anything else that inserts
# into audit_events would be a second, unchecked way to write them.
if grep -rln --include='*.rs' 'INSERT INTO audit_events' app/src server/src | grep -vx 'app/src/auth/require.rs'; then
  echo "audit events must be written through Change (app/src/auth/require.rs) only" >&2
  exit 1
fi

if [ "${LINT_IN_BUILDS:-}" = 1 ]; then
  # `make test`: clippy-driver compiles the workspace's crates in the builds below and in
  # the release front end's (scripts/test.sh), so no separate clippy builds. The benchmark
  # is the one target the tests do not build: built here, in the test profile.
  step "clippy, within the builds (server side here, browser side in the release front end)"
  cargo test -p app -p server --features app/ssr --benches --no-run
else
  step "clippy (server build, then browser build; warnings are errors)"
  # Per package: building ssr and hydrate in one cargo invocation would unify both features.
  cargo clippy -p app -p server --features app/ssr --all-targets -- -D warnings
  cargo clippy -p app --features hydrate --target wasm32-unknown-unknown -- -D warnings
fi

step "unit, integration and HTTP tests (in parallel)"
# One invocation for both packages: the same feature set as the server build, so no
# rebuild. Each #[sqlx::test] gets a fresh database on DATABASE_URL's server.
cargo test -p app -p server --features app/ssr

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

echo
echo "checks passed in $(( $(date +%s) - started ))s"
