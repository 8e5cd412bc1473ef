#!/usr/bin/env bash
# `make bench`: the gateway benchmarks (release build), printing figures for the README.
#   scripts/bench.sh [verify|http|revoke ...]
# Uses DATABASE_URL's server when set (it makes and drops a `staff_console_bench` database
# there), else the embedded cluster, which it stops afterwards if it started it.
set -euo pipefail
trap 'exit 130' INT
trap 'exit 143' TERM
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ -z "${DATABASE_URL:-}" ]; then
  if ! scripts/db.sh url postgres >/dev/null 2>&1; then
    scripts/db.sh start
    trap 'DATABASE_URL= scripts/db.sh stop' EXIT
  fi
fi
DATABASE_URL=$(scripts/db.sh url postgres)
# The production log level: the benchmarked server logs every request, as it would in service.
export DATABASE_URL RUST_LOG=${RUST_LOG:-info,sqlx=warn,tower_sessions=warn}
cargo bench -p server --bench gateway -- "$@"
