#!/usr/bin/env bash
# `make run`: installs what is missing, starts PostgreSQL, and serves the console in
# development mode at http://127.0.0.1:3000 until Ctrl-C (then stops the database it started).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

scripts/setup.sh
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"

if [ -z "${DATABASE_URL:-}" ]; then
  scripts/db.sh start
  trap 'scripts/db.sh stop' EXIT
fi
DATABASE_URL=$(scripts/db.sh url staff_console)
export DATABASE_URL
export STAFF_CONSOLE_ENV=${STAFF_CONSOLE_ENV:-development}
export RUST_LOG=${RUST_LOG:-info}

# `serve` applies migrations (development default) and creates the demo tenant when the
# database is empty.
cargo leptos serve
