#!/usr/bin/env bash
# The release build as production runs it, tested (run by `make test`, or alone):
#
#   1. the database roles of the README's Production section: a schema owner that runs
#      `staff-console migrate`, and a login role granted staff_console_app that serves;
#   2. check-config on a broken and on the real environment; deploy/staff-console.service
#      checked (`systemd-analyze verify`, and its exposure score offline), then its
#      ExecStart run as written, with its Environment= and WorkingDirectory=, the folder
#      paths pointed at the build and a scratch data folder (this machine has no systemd as
#      PID 1 to start the unit itself);
#   3. deploy/Caddyfile in front, with Caddy's internal CA (`local_certs`, the global form of
#      `tls internal`) on [::1], so the browser's address (::1) differs from the proxy's
#      (127.0.0.1, the one TRUSTED_PROXIES names);
#   4. Playwright over HTTPS (end2end/tls/): bundle budget and caching, the __Host- cookie,
#      HSTS, the audit log's client address, a request that skips the proxy, the switch
#      stream through the proxy, and first-load / cached-reload figures.
#
#   scripts/tls-test.sh [--dist DIR] [playwright args]
#
# DIR defaults to dist/ (`make release`), built first when missing or older than the
# sources; `make test` passes target/test-dist (scripts/release.sh --test).
set -euo pipefail
trap 'exit 130' INT
trap 'exit 143' TERM
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
die() { printf 'tls-test: error: %s\n' "$*" >&2; exit 1; }

dist=dist
if [ "${1:-}" = "--dist" ]; then
  dist=${2:?--dist needs a folder}
  shift 2
fi
if [ "$dist" = dist ]; then
  if [ ! -x "$dist/staff-console" ] \
    || [ -n "$(find app/src server/src migrations style public Cargo.toml Cargo.lock -newer "$dist/staff-console" -print -quit)" ]; then
    step "release build (scripts/release.sh)"
    scripts/release.sh
  fi
fi
[ -x "$dist/staff-console" ] && [ -f "$dist/hash.txt" ] || die "no build in $dist/"
dist=$(cd "$dist" && pwd)

scripts/setup.sh --browser
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"
command -v caddy >/dev/null || die "caddy is missing (scripts/setup.sh --browser installs it)"

APP_PORT=${TLS_APP_PORT:-3927}
TLS_PORT=${TLS_PORT:-3943}
HTTP_PORT=${TLS_HTTP_PORT:-3980}
work=$(mktemp -d)
pids=()
started_db=false
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  $started_db && DATABASE_URL= scripts/db.sh stop
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${DATABASE_URL:-}" ] && ! scripts/db.sh url postgres >/dev/null 2>&1; then
  scripts/db.sh start
  started_db=true
fi
PSQL=$(scripts/db.sh psql-bin)
admin_url=$(scripts/db.sh url postgres)
as_role() { printf '%s' "$admin_url" | sed -E "s#^(postgres(ql)?://)[^@/]*@#\1$1@#; s#/[^/?]*(\?|$)#/staff_console_tls\1#"; }

step "database roles: the schema owner migrates, staff_console_app serves"
# What a DBA does once: a login role that owns the database, one that serves. The first
# migration creates the group role staff_console_app, which takes CREATEROLE: the owner
# holds it for that run only.
"$PSQL" "$admin_url" -v ON_ERROR_STOP=1 -q <<'SQL'
DROP DATABASE IF EXISTS staff_console_tls WITH (FORCE);
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sc_tls_owner') THEN
    CREATE ROLE sc_tls_owner LOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sc_tls_serve') THEN
    CREATE ROLE sc_tls_serve LOGIN;
  END IF;
END $$;
ALTER ROLE sc_tls_owner CREATEROLE;
CREATE DATABASE staff_console_tls OWNER sc_tls_owner;
SQL
owner_url=$(as_role sc_tls_owner)
serve_url=$(as_role sc_tls_serve)
DATABASE_URL=$owner_url "$dist/staff-console" migrate
"$PSQL" "$admin_url" -v ON_ERROR_STOP=1 -qc \
  "ALTER ROLE sc_tls_owner NOCREATEROLE; GRANT staff_console_app TO sc_tls_serve;"

# The environment file, in deploy/env.example's form.
key=$(head -c 32 /dev/urandom | base64)
session_key=$(head -c 32 /dev/urandom | base64)
cat >"$work/env" <<EOF
DATABASE_URL=$serve_url
ENCRYPTION_KEY=$key
SESSION_SIGNING_KEY=$session_key
PUBLIC_URL=https://[::1]:$TLS_PORT
LEPTOS_SITE_ADDR=127.0.0.1:$APP_PORT
TRUSTED_PROXIES=127.0.0.1
RUST_LOG=warn
EOF
mkdir -p "$work/data"
set -a
# shellcheck disable=SC1091
. "$work/env"
set +a
unset STAFF_CONSOLE_ENV SQLX_OFFLINE LEPTOS_SITE_ROOT LEPTOS_OUTPUT_NAME LEPTOS_SITE_PKG_DIR LEPTOS_HASH_FILES

step "check-config refuses a broken environment and passes this one"
status=0
env -u ENCRYPTION_KEY -u SESSION_SIGNING_KEY PUBLIC_URL=https://x/path "$dist/staff-console" check-config >"$work/refused" 2>&1 || status=$?
[ "$status" = 2 ] || { cat "$work/refused"; die "check-config should exit 2 on a broken environment, got $status"; }
grep -q 'problem: PUBLIC_URL' "$work/refused" && grep -q 'problem: ENCRYPTION_KEY' "$work/refused" \
  && grep -q 'problem: SESSION_SIGNING_KEY' "$work/refused" \
  || { cat "$work/refused"; die "check-config did not list every problem"; }

step "the systemd unit"
unit=deploy/staff-console.service
sed -e "s#/opt/staff-console#$dist#g" -e "s#/var/lib/staff-console#$work/data#g" \
  -e "s#^EnvironmentFile=.*#EnvironmentFile=$work/env#" "$unit" >"$work/staff-console.service"
if command -v systemd-analyze >/dev/null; then
  # Exposure 0 (locked down) to 10 (unprotected); the unit scores about 1.1.
  systemd-analyze verify "$work/staff-console.service"
  systemd-analyze security --offline=true --threshold=20 "$work/staff-console.service" | tail -n 1
else
  echo "systemd-analyze not installed: the unit's hardening was not scored"
fi
unit_value() { sed -n "s/^$1=//p" "$work/staff-console.service" | tail -n 1; }
for line in $(sed -n 's/^Environment=//p' "$work/staff-console.service"); do export "${line?}"; done
"$dist/staff-console" check-config --database
# Nothing may answer on the ports yet (a server left over from an aborted run would
# answer the readiness check for ours).
! curl -s -o /dev/null "http://127.0.0.1:$APP_PORT/" 2>/dev/null || die "port $APP_PORT is already in use"
cd "$(unit_value WorkingDirectory)"
read -r -a exec_start <<<"$(unit_value ExecStart)"
"${exec_start[@]}" >"$work/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
cd "$ROOT"
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$APP_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; die "the server stopped"; }
  sleep 0.25
done
curl -fsS "http://127.0.0.1:$APP_PORT/readyz" >/dev/null || { cat "$work/server.log"; die "the server did not become ready"; }
kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; die "the server stopped"; }

step "fixtures: an admin (the command line), a tenant, a service token"
TLS_ADMIN_EMAIL=admin@tls.test
TLS_ADMIN_PASSWORD='tls fixture passphrase, long enough'
STAFF_CONSOLE_PASSWORD=$TLS_ADMIN_PASSWORD "$dist/staff-console" staff create \
  --email "$TLS_ADMIN_EMAIL" --role admin --name 'TLS Admin' >/dev/null
# As if its owner had already replaced the handed-over password (auth.spec.ts covers that).
# A fixture with no audit event: said so, or the database refuses it (audit_obligation).
PGOPTIONS='-c staff_console.unaudited=tls-fixture' "$PSQL" "$owner_url" -v ON_ERROR_STOP=1 -qc \
  "UPDATE staff SET must_change_password = false WHERE email = '$TLS_ADMIN_EMAIL';
   INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme Agents');"
TLS_SERVICE_TOKEN=$("$dist/staff-console" service-token create --name tls-test | sed -n 's/.*(shown once): //p')
[ -n "$TLS_SERVICE_TOKEN" ] || die "no service token"

step "Caddy in front (deploy/Caddyfile)"
mkdir -p "$work/caddy"
cat >"$work/Caddyfile" <<EOF
{
	admin off
	local_certs
	skip_install_trust
	http_port $HTTP_PORT
	https_port $TLS_PORT
	default_bind ::1
	storage file_system $work/caddy
	auto_https disable_redirects
}
import $ROOT/deploy/Caddyfile
EOF
STAFF_CONSOLE_SITE="https://[::1]:$TLS_PORT" STAFF_CONSOLE_UPSTREAM="127.0.0.1:$APP_PORT" \
  HOME=$work XDG_DATA_HOME=$work/caddy XDG_CONFIG_HOME=$work/caddy \
  caddy run --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
pids+=($!)
ca="$work/caddy/pki/authorities/local/root.crt"
for _ in $(seq 1 120); do
  [ -f "$ca" ] && curl -fsS --cacert "$ca" "https://[::1]:$TLS_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.25
done
curl -fsS --cacert "$ca" "https://[::1]:$TLS_PORT/healthz" >/dev/null || { cat "$work/caddy.log"; die "Caddy did not come up"; }

# The browser trusts Caddy's CA (a certificate database of its own, in a scratch HOME):
# Chromium verifies the certificate like any site's, and caches what it fetched (it keeps
# nothing from a site whose certificate it had to ignore).
browser_home=$work/browser-home
mkdir -p "$browser_home/.pki/nssdb"
certutil -N --empty-password -d "sql:$browser_home/.pki/nssdb"
certutil -A -d "sql:$browser_home/.pki/nssdb" -t "C,," -n "caddy local CA" -i "$ca"
export TLS_BROWSER_HOME=$browser_home

step "Playwright over HTTPS"
export TLS_BASE_URL="https://[::1]:$TLS_PORT" DIRECT_URL="http://127.0.0.1:$APP_PORT" CADDY_ROOT_CA=$ca
export TLS_ADMIN_EMAIL TLS_ADMIN_PASSWORD TLS_SERVICE_TOKEN TLS_TENANT=acme TLS_SITE_PKG=$dist/site/pkg
export TLS_FIGURES=${TLS_FIGURES:-$ROOT/target/tls-figures.json}
status=0
(cd end2end && npx playwright test --config playwright.tls.config.ts "$@") || status=$?
# Caddy's access log: a token pasted into a URL is not kept.
curl -s -o /dev/null --cacert "$ca" "https://[::1]:$TLS_PORT/audit?actor=sc_svc_pastedsecretvalue" || true
sleep 0.5
if grep -q pastedsecretvalue "$work/caddy.log"; then
  echo "tls-test: Caddy's access log kept a query string" >&2
  status=1
elif ! grep -q 'query not logged' "$work/caddy.log"; then
  echo "tls-test: Caddy's access log shows no request at all" >&2
  status=1
fi
if [ "$status" != 0 ]; then
  echo "--- server log (last 40 lines) ---"; tail -n 40 "$work/server.log"
  echo "--- caddy log (last 20 lines) ---"; tail -n 20 "$work/caddy.log"
fi
exit "$status"
