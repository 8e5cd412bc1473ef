#!/usr/bin/env bash
# `make run`: installs what is missing, starts PostgreSQL, and serves the console in
# development mode at http://127.0.0.1:3000 until Ctrl-C (then stops the database it started).
set -euo pipefail
# Ctrl-C or SIGTERM end the script through `exit`, so the EXIT trap (stopping the database
# we started) runs: bash skips EXIT traps when an untrapped signal kills it.
trap 'exit 130' INT
trap 'exit 143' TERM
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

scripts/setup.sh
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"

if [ -z "${DATABASE_URL:-}" ]; then
  # Leave a cluster that was already running (say, for `make test`) as it was.
  if ! scripts/db.sh url postgres >/dev/null 2>&1; then
    scripts/db.sh start
    # DATABASE_URL is set below; the embedded cluster is what we stop.
    trap 'DATABASE_URL= scripts/db.sh stop' EXIT
  fi
fi
DATABASE_URL=$(scripts/db.sh url staff_console)
export DATABASE_URL
export STAFF_CONSOLE_ENV=${STAFF_CONSOLE_ENV:-development}
export RUST_LOG=${RUST_LOG:-info}
# The queries are checked against `.sqlx/` (kept true to the migrations by `make check`), not
# against this database: it is empty until the server it is building applies the migrations.
export SQLX_OFFLINE=true

# `serve` applies migrations (development default) and creates the demo tenant when the
# database is empty.
cargo leptos serve --split
