#!/usr/bin/env bash
# Nightly logical backup of the loan database; fails loudly.
#   deploy/backup/backup.sh            (from cron as loanapp: deploy/backup/crontab)
# Writes $BACKUP_DIR/<db>-<UTC timestamp>.dump (pg_dump custom format, compressed) plus a .sha256, verifies the
# archive with `pg_restore --list` before it counts, and only then deletes archives older than RETENTION_DAYS.
# Any failure — connection, permission, full disk, corrupt archive — exits non-zero, prints BACKUP FAILED on
# stderr and leaves no archive behind that looks like a good one.
#
# Settings (environment): PGHOST PGPORT PGUSER PGDATABASE (libpq; password in ~/.pgpass, mode 0600),
# BACKUP_DIR, RETENTION_DAYS, and optionally NODE_EXPORTER_TEXTFILE_DIR to publish
# loan_backup_last_success_timestamp_seconds for Prometheus (alert when it gets old).
set -euo pipefail

export PGHOST=${PGHOST:-127.0.0.1}          # PostgreSQL itself, never PgBouncer (port 5432, not 6432)
export PGPORT=${PGPORT:-5432}
export PGUSER=${PGUSER:-loan_backup}        # member of pg_read_all_data (deploy/postgres/roles.sql)
export PGDATABASE=${PGDATABASE:-loan_db_prod}
BACKUP_DIR=${BACKUP_DIR:-/home/loanapp/backups}
RETENTION_DAYS=${RETENTION_DAYS:-14}
NODE_EXPORTER_TEXTFILE_DIR=${NODE_EXPORTER_TEXTFILE_DIR:-}

log() { printf '%s backup: %s\n' "$(date -u +%FT%TZ)" "$*"; }
partial=""
on_exit() {
    local rc=$?
    [ "$rc" -eq 0 ] && return
    [ -n "$partial" ] && rm -f -- "$partial" "${partial%.partial}.sha256"
    printf '%s backup: BACKUP FAILED (exit %s) for database %s on %s:%s\n' \
        "$(date -u +%FT%TZ)" "$rc" "$PGDATABASE" "$PGHOST" "$PGPORT" >&2
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 143' TERM INT

[[ "$RETENTION_DAYS" =~ ^[0-9]+$ ]] && [ "$RETENTION_DAYS" -ge 1 ] || {
    echo "RETENTION_DAYS must be a whole number >= 1 (got '$RETENTION_DAYS')" >&2; false; }
umask 077                                   # archives contain every borrower's personal data
mkdir -p -- "$BACKUP_DIR"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
final="$BACKUP_DIR/$PGDATABASE-$stamp.dump"
partial="$final.partial"

log "dumping $PGDATABASE from $PGHOST:$PGPORT as $PGUSER"
# -Fc: compressed, restorable selectively and in parallel; no shell pipe, so no exit status gets lost.
pg_dump --format=custom --compress=6 --no-password --file="$partial" "$PGDATABASE"
# The archive must be readable and complete (a truncated file fails here, not on the day you need it).
entries=$(pg_restore --list "$partial" | grep -c -E '^[0-9]+;') || true
[ "${entries:-0}" -gt 0 ] || { echo "pg_restore --list found no entries in $partial" >&2; false; }
(cd "$BACKUP_DIR" && sha256sum "$(basename "$partial")" | sed 's/\.partial$//' > "$(basename "$final").sha256")
sync -f "$partial" 2>/dev/null || sync
mv -- "$partial" "$final"                   # atomic: an archive with the final name is always complete
partial=""
log "ok: $final ($(du -h "$final" | cut -f1), $entries archive entries)"

# Retention only after a good backup, so a run of failures never eats the last good archives.
find "$BACKUP_DIR" -maxdepth 1 -type f \( -name "$PGDATABASE-*.dump" -o -name "$PGDATABASE-*.dump.sha256" \) \
     -mtime +"$((RETENTION_DAYS - 1))" -print -delete | sed 's/^/removed (retention): /'
# Leftovers of runs killed hard (SIGKILL, power loss) are never valid archives.
find "$BACKUP_DIR" -maxdepth 1 -type f -name "$PGDATABASE-*.dump.partial" -mmin +720 -print -delete \
    | sed 's/^/removed (stale partial): /'

if [ -n "$NODE_EXPORTER_TEXTFILE_DIR" ]; then
    prom="$NODE_EXPORTER_TEXTFILE_DIR/loan_backup.prom"
    printf '# HELP loan_backup_last_success_timestamp_seconds Time of the last verified database backup.\n# TYPE loan_backup_last_success_timestamp_seconds gauge\nloan_backup_last_success_timestamp_seconds{database="%s"} %s\n' \
        "$PGDATABASE" "$(date +%s)" > "$prom.tmp" && chmod 0644 "$prom.tmp" && mv "$prom.tmp" "$prom"
fi
log "done"
