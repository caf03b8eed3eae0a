#!/usr/bin/env bash
# The deployment-kit checks: every file in deploy/ exercised by the program it is written for
# (nginx -t and a live nginx, PostgreSQL 15 roles, PgBouncer, gunicorn, supervisord, systemd-analyze, logrotate,
# backup/restore). `make deploy-check` and .ci/run call this. Missing Debian packages are installed by the checks
# (as root); without apt they are skipped with the reason, except under CI=true, where that is a failure.
# Extra arguments go to pytest, e.g.  deploy/check.sh -k nginx -x
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/pytest ]; then
    echo "deploy/check.sh: .venv/bin/pytest is missing; run 'make deploy-check' (it installs the dev requirements)" >&2
    exit 2
fi
exec .venv/bin/pytest tests/deploy -m deploy "$@"
