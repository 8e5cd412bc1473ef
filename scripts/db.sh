#!/usr/bin/env bash
# PostgreSQL for development and tests.
#
#   scripts/db.sh start        start the database (embedded cluster unless DATABASE_URL is set)
#   scripts/db.sh stop         stop the embedded cluster (no-op with DATABASE_URL)
#   scripts/db.sh url [NAME]   print the URL of database NAME (default staff_console)
#   scripts/db.sh fresh NAME   drop and re-create database NAME, print its URL
#   scripts/db.sh psql [NAME]  psql on database NAME; psql-bin prints psql's path
#
# DATABASE_URL, when set, wins: its server is used and nothing is started or stopped.
# Otherwise a private cluster lives in $DATA_DIR/pg (default .data/pg, git-ignored), made with
# the machine's own initdb/pg_ctl (run as the `postgres` user when we are root), listening on
# 127.0.0.1:$STAFF_CONSOLE_PG_PORT (default 55432) only, with trust auth for local use.
# It is a development cluster: fsync is off, so a power cut may lose its data.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA_DIR=${DATA_DIR:-$ROOT/.data}
PGDATA_DIR=$DATA_DIR/pg
PG_PORT=${STAFF_CONSOLE_PG_PORT:-55432}

log() { printf '\033[1mdb:\033[0m %s\n' "$*" >&2; }
die() { printf 'db: error: %s\n' "$*" >&2; exit 1; }

pg_bin() {
  local tool=$1 found
  if found=$(command -v "$tool" 2>/dev/null); then echo "$found"; return; fi
  found=$(ls -d /usr/lib/postgresql/*/bin/"$tool" 2>/dev/null | sort -V | tail -n1 || true)
  [ -n "$found" ] && { echo "$found"; return; }
  return 1
}

ensure_server_binaries() {
  if pg_bin initdb >/dev/null && pg_bin pg_ctl >/dev/null && pg_bin psql >/dev/null; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "PostgreSQL is not installed: installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql >/dev/null
  fi
  pg_bin initdb >/dev/null && pg_bin pg_ctl >/dev/null && pg_bin psql >/dev/null \
    || die "initdb/pg_ctl/psql not found. Install PostgreSQL (Debian: apt-get install postgresql) or set DATABASE_URL."
}

# Runs a server binary as the postgres user when we are root (PostgreSQL refuses to run as root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# As root, the server runs as `postgres`, which must be able to pass through every folder
# above the cluster. A checkout in a private folder (mktemp -d makes 0700 ones) blocks it:
# grant the postgres user passage only (search permission, not listing), and say so.
grant_passage() {
  local target=$1 dir="" part
  IFS=/ read -ra parts <<<"${target#/}"
  for part in "${parts[@]}"; do
    dir="$dir/$part"
    runuser -u postgres -- test -x "$dir" && continue
    if ! command -v setfacl >/dev/null && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq acl >/dev/null 2>&1 || true
    fi
    if command -v setfacl >/dev/null && setfacl -m u:postgres:x "$dir" 2>/dev/null; then
      log "granted the postgres user passage through $dir (ACL u:postgres:x)"
    else
      chmod o+x "$dir"
      log "granted passage through $dir to other users (chmod o+x): setfacl was not available"
    fi
    runuser -u postgres -- test -x "$dir" || die "the postgres user still cannot reach $dir; set DATABASE_URL instead"
  done
}

embedded_url() { echo "postgres://postgres@127.0.0.1:$PG_PORT/$1"; }

# The URL of database $1 on whichever server we use.
url_for() {
  local name=$1
  if [ -n "${DATABASE_URL:-}" ]; then
    # Same server, other database: replace the path, keep any query string.
    local base=${DATABASE_URL%%\?*} query=""
    [[ "$DATABASE_URL" == *\?* ]] && query="?${DATABASE_URL#*\?}"
    echo "${base%/*}/$name$query"
  else
    embedded_url "$name"
  fi
}

psql_admin() {
  local url
  url=$(url_for postgres)
  "$(pg_bin psql)" "$url" -v ON_ERROR_STOP=1 -qAt "$@"
}

start() {
  if [ -n "${DATABASE_URL:-}" ]; then
    log "using DATABASE_URL's server"
    return
  fi
  ensure_server_binaries
  mkdir -p "$DATA_DIR"
  [ "$(id -u)" = 0 ] && grant_passage "$(cd "$DATA_DIR" && pwd)"
  if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
    log "creating the embedded cluster in $PGDATA_DIR"
    mkdir -p "$PGDATA_DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$PGDATA_DIR"
    chmod 700 "$PGDATA_DIR"
    as_pg "$(pg_bin initdb)" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --no-locale >"$DATA_DIR/initdb.log" 2>&1 \
      || { cat "$DATA_DIR/initdb.log" >&2; die "initdb failed"; }
    cat >>"$PGDATA_DIR/postgresql.conf" <<CONF
# staff-console development cluster
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = ''
max_connections = 300
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  fi
  if as_pg "$(pg_bin pg_ctl)" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
    log "embedded cluster already running on 127.0.0.1:$PG_PORT"
  else
    log "starting the embedded cluster on 127.0.0.1:$PG_PORT"
    touch "$DATA_DIR/pg.log"
    [ "$(id -u)" = 0 ] && chown postgres: "$DATA_DIR/pg.log"
    as_pg "$(pg_bin pg_ctl)" -D "$PGDATA_DIR" -l "$DATA_DIR/pg.log" -w -t 60 start >/dev/null \
      || { tail -n 20 "$DATA_DIR/pg.log" >&2; die "the embedded cluster did not start (see $DATA_DIR/pg.log)"; }
  fi
}

stop() {
  if [ -n "${DATABASE_URL:-}" ]; then return; fi
  [ -f "$PGDATA_DIR/PG_VERSION" ] || return 0
  if as_pg "$(pg_bin pg_ctl)" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
    log "stopping the embedded cluster"
    as_pg "$(pg_bin pg_ctl)" -D "$PGDATA_DIR" -m fast -w stop >/dev/null
  fi
}

ensure_db() {
  local name=$1
  if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$name'")" != 1 ]; then
    psql_admin -c "CREATE DATABASE \"$name\""
  fi
  url_for "$name"
}

fresh_db() {
  local name=$1
  psql_admin -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)"
  psql_admin -c "CREATE DATABASE \"$name\""
  url_for "$name"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) ensure_db "${2:-staff_console}" ;;
  fresh) [ -n "${2:-}" ] || die "usage: db.sh fresh NAME"; fresh_db "$2" ;;
  psql-bin) pg_bin psql ;;
  psql) shift; "$(pg_bin psql)" "$(url_for "${1:-staff_console}")" "${@:2}" ;;
  *) die "usage: db.sh start|stop|url [NAME]|fresh NAME|psql [NAME] [ARGS]|psql-bin" ;;
esac
