#!/usr/bin/env bash
# Print PgBouncer userlist.txt lines ("role" "SCRAM secret") for the given roles, read from pg_authid.
#   sudo -u postgres deploy/pgbouncer/userlist.sh loan_app | sudo tee /etc/pgbouncer/userlist.txt >/dev/null
#   sudo chown postgres:postgres /etc/pgbouncer/userlist.txt && sudo chmod 0640 /etc/pgbouncer/userlist.txt
# Re-run it after every password change (\password ROLE) and reload PgBouncer (systemctl reload pgbouncer).
# Needs superuser (pg_authid); connection settings from the environment (PGHOST, PGPORT, PGUSER).
set -euo pipefail
if [ $# -eq 0 ]; then
    echo "usage: $0 ROLE [ROLE ...]" >&2
    exit 2
fi
roles_csv=$(IFS=,; echo "$*")
out=$(psql -X -At -v ON_ERROR_STOP=1 -v roles="$roles_csv" -d postgres <<'SQL'
SELECT format('"%s" "%s"', replace(rolname, '"', '""'), replace(rolpassword, '"', '""'))
  FROM pg_authid
 WHERE rolname = ANY (string_to_array(:'roles', ','))
   AND rolpassword LIKE 'SCRAM-SHA-256$%'
 ORDER BY rolname;
SQL
)
found=$(printf '%s' "$out" | grep -c . || true)
if [ "$found" -ne $# ]; then
    echo "userlist.sh: $# role(s) asked, $found with a SCRAM password: set one with \\password ROLE first" >&2
    exit 1
fi
printf '%s\n' "$out"
