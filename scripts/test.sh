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

started=$(date +%s)
# Each step says when it starts (seconds into the script), so a slow run shows where.
step() { printf '\n\033[1;34m==> %s\033[0m (at %ss)\n' "$*" "$(( $(date +%s) - started ))"; }

# One database for both halves: started here (unless one is running or DATABASE_URL is
# set), so check.sh leaves it running for the browser tests.
started_db=false
front_pid=
tls_pid=
cleanup() {
  # The front end's build runs in a process group of its own: stop all of it.
  if [ -n "$front_pid" ]; then kill -- "-$front_pid" 2>/dev/null || true; fi
  # The TLS suite stops its server and Caddy on TERM (its own EXIT trap).
  if [ -n "$tls_pid" ]; then kill "$tls_pid" 2>/dev/null || true; wait "$tls_pid" 2>/dev/null || true; fi
  if $started_db; then DATABASE_URL= scripts/db.sh stop; fi
}
trap cleanup EXIT
if [ -z "${DATABASE_URL:-}" ]; then
  if ! scripts/db.sh url postgres >/dev/null 2>&1; then
    scripts/db.sh start
    started_db=true
  fi
fi

# Clippy rides along with the builds this script makes anyway, instead of a check build of
# its own for each side (about 5 minutes of the run on two cores): clippy-driver, the rustc
# that `cargo clippy` itself wraps the workspace's crates with, compiles them here, for the
# Rust tests (server side), the release front end (browser side) and the browser tests'
# server, with warnings as errors (CLIPPY_ARGS is how `cargo clippy` hands it its
# arguments). Dependencies are compiled by plain rustc, as under `cargo clippy`.
# `make check` and `make lint` on their own still run `cargo clippy`.
scripts/setup.sh --browser
# A run from a fresh clone (CI) builds everything once: incremental compilation would only
# write dependency graphs nobody reads again (about a tenth of the workspace's compile time).
if [ -n "${CI:-}" ]; then
  export CARGO_INCREMENTAL=0
  # No line tables for the workspace's own crates either: a failing test still names its
  # file and line (the panic's location needs no debug info), only backtraces lose them,
  # and the development builds compile and link faster without (CI only).
  export CARGO_PROFILE_DEV_DEBUG=false
fi
clippy_driver=$(command -v clippy-driver || rustup which clippy-driver)
export RUSTC_WORKSPACE_WRAPPER=$clippy_driver
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
export LINT_IN_BUILDS=1
front_log=$(mktemp)
setsid scripts/release.sh --test-front >"$front_log" 2>&1 &
front_pid=$!

scripts/check.sh

step "the release front end (built alongside), and the server to test it with"
if ! wait "$front_pid"; then
  front_pid=
  cat "$front_log"
  echo "the release front end did not build" >&2
  exit 1
fi
front_pid=
tail -n 3 "$front_log"
scripts/release.sh --test-assemble

# The two browser suites at once: each has its own server, port, database and Chromium, and
# both mostly wait (on the browser, the server, the network emulation), so side by side they
# take about as long as the longer one. The TLS suite's output is shown when both are done.
step "browser tests (Playwright in Chromium), and behind TLS alongside: the release front end behind Caddy, as production runs it (scripts/tls-test.sh)"
tls_log=$(mktemp)
scripts/tls-test.sh --dist target/test-dist >"$tls_log" 2>&1 &
tls_pid=$!
e2e_status=0
scripts/e2e.sh || e2e_status=$?
tls_status=0
wait "$tls_pid" || tls_status=$?
tls_pid=
step "behind TLS (ran alongside the browser tests): its output"
cat "$tls_log"
rm -f "$tls_log"
[ "$e2e_status" = 0 ] || { echo "the browser tests failed" >&2; exit 1; }
[ "$tls_status" = 0 ] || { echo "the test behind TLS failed" >&2; exit 1; }

echo
echo "all tests passed in $(( $(date +%s) - started ))s"
