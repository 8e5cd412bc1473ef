#!/usr/bin/env bash
# Prints the URL of a fresh database holding exactly the schema in migrations/, for sqlx's
# compile-time query checks. Applied with psql, in file-name order, as sqlx would.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
url=$("$ROOT/scripts/db.sh" fresh staff_console_schema)
for f in "$ROOT"/migrations/*.sql; do
  "$ROOT/scripts/db.sh" psql staff_console_schema -v ON_ERROR_STOP=1 -q -f "$f" >/dev/null
done
echo "$url"
