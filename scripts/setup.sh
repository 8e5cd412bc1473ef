#!/usr/bin/env bash
# Installs what building, running and testing need, skipping whatever is already there.
#
#   scripts/setup.sh            toolchain pieces for building and running
#   scripts/setup.sh --browser  also Debian's Chromium (the browser tests) and Caddy (the
#                               release build behind TLS, scripts/tls-test.sh)
#
# Nothing is downloaded outside the package registries: cargo-leptos is built from crates.io
# with `no_downloads`, so it runs wasm-bindgen, tailwindcss and wasm-opt from PATH; those
# come from crates.io (wasm-bindgen-cli, at exactly the version in Cargo.lock) and npm.
set -euo pipefail
# The tools built here are not ours to lint: `make test` runs the workspace's own builds
# through clippy-driver (scripts/test.sh), and a `cargo install` under that wrapper would
# lint, and could refuse, cargo-leptos's or wasm-bindgen's code.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CARGO_LEPTOS_VERSION=0.3.11
# The tools are built once per machine and are not hot code: a light release profile (no LTO,
# parallel codegen, opt-level 1) builds them in a fraction of the time their own profiles take
# (fat LTO, one codegen unit) and runs as fast for what they do here. See the README's figures.
tool_profile=(env CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=true)
want_browser=false
[ "${1:-}" = "--browser" ] && want_browser=true

log() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
apt_install() {
  is_root && command -v apt-get >/dev/null || die "please install: $*"
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  apt-get install -y -qq "$@" >/dev/null
}

command -v cargo >/dev/null && command -v rustup >/dev/null || die "Rust (rustup + cargo) is required: https://rustup.rs"
export PATH="$HOME/.cargo/bin:$PATH"

# WebAssembly target for the hydrate build.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# cargo-leptos. Its locked dependencies need rustc >= 1.96: use a nightly if there is one,
# else install 1.96.0 just for this.
if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
  if rustup toolchain list | grep -q '^nightly'; then
    toolchain=nightly
  else
    toolchain=1.96.0
    rustup toolchain list | grep -q "^$toolchain" || rustup toolchain install "$toolchain" --profile minimal
  fi
  log "building cargo-leptos $CARGO_LEPTOS_VERSION with $toolchain (a few minutes, once)"
  "${tool_profile[@]}" cargo "+$toolchain" install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads
fi

# wasm-bindgen-cli must match the wasm-bindgen library exactly.
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
[ -n "$wb_version" ] || die "no wasm-bindgen in Cargo.lock"
if ! wasm-bindgen --version 2>/dev/null | grep -q " $wb_version"; then
  log "installing wasm-bindgen-cli $wb_version"
  # No --locked: the registry mirror lacks one of its locked dependencies.
  "${tool_profile[@]}" cargo install wasm-bindgen-cli --version "$wb_version"
fi

# Node.js for Tailwind, wasm-opt and Playwright.
if ! command -v npm >/dev/null; then
  log "installing Node.js and npm"
  apt_install nodejs npm
fi
npm_ci() {
  local dir=$1
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "installing npm packages in ${dir#"$ROOT"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_ci "$ROOT"

if $want_browser; then
  npm_ci "$ROOT/end2end"
  if ! command -v chromium >/dev/null; then
    log "installing Debian's Chromium for the browser tests"
    apt_install chromium
  fi
  if ! command -v caddy >/dev/null || ! command -v certutil >/dev/null; then
    log "installing Debian's Caddy and NSS tools for the test behind TLS"
    apt_install caddy libnss3-tools
  fi
fi
log "tools ready"
