#!/usr/bin/env bash
# `make lint`: clippy with warnings as errors, for the server build (app with ssr) and the
# browser build (app with hydrate, for wasm32). Checked per package: building ssr and hydrate
# in one cargo invocation would unify both features.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
cargo fmt --all --check
cargo clippy -p app -p server --features app/ssr --all-targets -- -D warnings
cargo clippy -p app --features hydrate --target wasm32-unknown-unknown -- -D warnings
