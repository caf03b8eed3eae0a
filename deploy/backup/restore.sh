#!/usr/bin/env bash
# Restore a backup made by backup.sh into a NEW database (never over the live one).
#   sudo -u postgres deploy/backup/restore.sh /home/loanapp/backups/loan_db_prod-20260101T013000Z.dump loan_db_restore
# Checks the archive (sha256 when present, then pg_restore --list), creates the database owned by RESTORE_OWNER
# (default loan_owner), restores in one transaction (all or nothing) and prints the row count of every table.
# On any failure it exits non-zero and drops the half-restored database (KEEP_FAILED=1 keeps it to inspect).
# Switching production over to the restored database is a separate, deliberate step (docs/DEPLOY.md).
#
# Settings (environment): PGHOST PGPORT PGUSER (libpq; default postgres on 127.0.0.1:5432), RESTORE_OWNER,
# KEEP_FAILED.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 ARCHIVE.dump NEW_DATABASE_NAME" >&2
    exit 2
fi
archive=$1
target=$2
export PGHOST=${PGHOST:-127.0.0.1}
export PGPORT=${PGPORT:-5432}
export PGUSER=${PGUSER:-postgres}
RESTORE_OWNER=${RESTORE_OWNER:-loan_owner}
KEEP_FAILED=${KEEP_FAILED:-0}

log() { printf '%s restore: %s\n' "$(date -u +%FT%TZ)" "$*"; }
# SQL on stdin, so psql interpolates :"db" / :'db' (it does not for -c) — names are quoted, never spliced.
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -v db="$target" -v owner="$RESTORE_OWNER" "$@"; }
created=0
on_exit() {
    local rc=$?
    [ "$rc" -eq 0 ] && return
    if [ "$created" = 1 ] && [ "$KEEP_FAILED" != 1 ]; then
        echo 'DROP DATABASE IF EXISTS :"db" WITH (FORCE)' | sql -d postgres >/dev/null 2>&1 || true
    fi
    printf '%s restore: RESTORE FAILED (exit %s): %s into %s\n' "$(date -u +%FT%TZ)" "$rc" "$archive" "$target" >&2
    exit "$rc"
}
trap on_exit EXIT

[[ "$target" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "database name must match [a-z_][a-z0-9_]*: $target" >&2; false; }
[ -r "$archive" ] || { echo "cannot read $archive" >&2; false; }
if [ -f "$archive.sha256" ]; then
    (cd "$(dirname "$archive")" && sha256sum --check --quiet "$(basename "$archive").sha256")
    log "checksum ok"
fi
pg_restore --list "$archive" > /dev/null
exists=$(echo "SELECT 1 FROM pg_database WHERE datname = :'db'" | sql -d postgres)
[ -z "$exists" ] || { echo "database $target already exists: restore.sh only restores into a new database" >&2; false; }

log "creating $target owned by $RESTORE_OWNER"
echo "CREATE DATABASE :\"db\" OWNER :\"owner\" TEMPLATE template0 ENCODING 'UTF8'" | sql -d postgres
created=1   # ours now: from here on, a failure drops it
# Database-level privileges are not in a pg_dump archive: the same as roles.sql gives loan_db_prod.
echo 'REVOKE ALL ON DATABASE :"db" FROM PUBLIC' | sql -d postgres

log "restoring $archive"
pg_restore --exit-on-error --single-transaction --no-password --dbname="$target" "$archive"
echo 'ANALYZE' | sql -d "$target"

log "restored; rows per table:"
sql -d "$target" <<'SQL'
SELECT format('SELECT %L AS table_name, count(*) AS row_count FROM %I.%I', tablename, schemaname, tablename)
  FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename
\gexec
SQL
log "done: $target (grant CONNECT to the app and backup roles before switching over; see docs/DEPLOY.md)"
