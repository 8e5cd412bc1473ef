#!/usr/bin/env bash
# `make release`: the production build, in one folder, dist/:
#
#   dist/staff-console   the server (release profile; migrations embedded)
#   dist/hash.txt        the content hashes in the front end's file names (read at start)
#   dist/site/           the site: favicon, and pkg/ with the WebAssembly (size profile,
#                        wasm-opt -Oz), JavaScript and CSS under hashed names, each with a
#                        brotli (.br, quality 11) and gzip (.gz, level 9) copy
#   dist/deploy/         the systemd unit, the Caddy configuration, the environment file
#
# Copy the folder whole to the host (README, Production). The build needs no database:
# queries are checked against .sqlx/. Prints the bundle sizes and the build time.
#
#   scripts/release.sh          dist/, as above
#   scripts/release.sh --test   target/test-dist/: the same front end, built the same way,
#                               with the server built by the development profile. `make test`
#                               runs the browser suites on it: the release server alone takes
#                               8 – 9 minutes on 2 cores (README, Measured).
set -euo pipefail
trap 'exit 130' INT
trap 'exit 143' TERM
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# --test in two halves, which `make test` runs apart: the front end (its own target
# folder, so it can build while scripts/check.sh runs) and the assembly (after the tests).
front=true
assemble=true
case "${1:-}" in
  "") mode=release ;;
  --test) mode=test ;;
  --test-front) mode=test; assemble=false ;;
  --test-assemble) mode=test; front=false ;;
  *) echo "usage: scripts/release.sh [--test | --test-front | --test-assemble]" >&2; exit 2 ;;
esac

scripts/setup.sh
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"
started=$(date +%s)

# A site folder of its own, so the development site in target/site (unhashed names, which
# `make run` serves) is left as it is.
site=target/release-site
export SQLX_OFFLINE=true LEPTOS_HASH_FILES=true LEPTOS_SITE_ROOT=$site
# wasm-bindgen's TypeScript declarations (`staff_console.d.<hash>.ts`): nothing loads them,
# so they are not shipped.
drop_declarations() { find "$site/pkg" -name '*.ts' -delete; }

if [ "$mode" = release ]; then
  out=dist
  # Leptos's type-erased components for both halves come from .cargo/config.toml.
  cargo leptos build --release --split
  bin=target/release/staff-console
  drop_declarations
  # gzip level 9 and brotli quality 11 copies of every file (scripts/precompress.mjs).
  node scripts/precompress.mjs "$site"
else
  out=target/test-dist
  if $front; then
    cargo leptos build --release --split --frontend-only
    drop_declarations
    node scripts/precompress.mjs "$site"
  fi
  $assemble || exit 0
  # The development profile's server: the binary the Rust tests build (the same command as
  # scripts/check.sh, so after it nothing is compiled again).
  LEPTOS_OUTPUT_NAME=staff_console cargo test -p app -p server --features app/ssr --no-run
  bin=target/debug/staff-console
fi

rm -rf "$out"
mkdir -p "$out/deploy"
if [ "$mode" = test ]; then
  # A hard link where it can be: the development binary is large.
  ln -f "$bin" "$out/staff-console" 2>/dev/null || cp "$bin" "$out/"
else
  cp "$bin" "$out/"
fi
cp target/release/hash.txt "$out/"
cp -r "$site" "$out/site"
cp deploy/staff-console.service deploy/Caddyfile deploy/env.example "$out/deploy/"
cp README.md "$out/"
took=$(( $(date +%s) - started ))

echo
echo "$out/ (built in ${took}s):"
printf '  %-52s %9s %9s %9s\n' file raw gzip brotli
for f in "$out"/site/pkg/*; do
  case "$f" in *.gz | *.br | *.ts) continue ;; esac
  printf '  %-52s %9s %9s %9s\n' "${f#"$out"/}" "$(stat -c %s "$f")" \
    "$(stat -c %s "$f.gz" 2>/dev/null || echo -)" "$(stat -c %s "$f.br" 2>/dev/null || echo -)"
done
printf '  %-52s %9s\n' staff-console "$(stat -c %s "$out/staff-console")"
