#!/usr/bin/env bash
# Regenerates .sqlx/ (the offline query metadata that lets builds run without a database)
# from the queries in the code and the schema in migrations/. Run after changing either.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/db.sh start
url=$(scripts/sqlx-schema-db.sh)
rm -rf .sqlx && mkdir .sqlx
# Touch the crates with queries so their macros run again and write their metadata.
touch app/src/lib.rs server/src/lib.rs server/src/main.rs
SQLX_OFFLINE=false DATABASE_URL=$url SQLX_OFFLINE_DIR=$ROOT/.sqlx \
  cargo check -p server --all-targets --quiet
echo "sqlx-prepare: $(ls .sqlx | wc -l) queries in .sqlx/"
