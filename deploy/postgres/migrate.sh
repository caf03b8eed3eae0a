#!/usr/bin/env bash
# Migrate the schema as the migration role, then re-apply the app role's grants (deploy/postgres/grants.sql).
# Run as loanapp from the checkout, after `git pull` and `pip install -r requirements.txt`:
#   deploy/postgres/migrate.sh
# The password comes from ~/.pgpass (never from the command line). Migrations go straight to PostgreSQL on
# 5432, not through PgBouncer: DDL and Alembic's version bookkeeping want one session from start to end.
set -euo pipefail

APP_DIR=${APP_DIR:-/home/loanapp/loan-backend}
MIGRATION_DATABASE_URL=${MIGRATION_DATABASE_URL:-postgresql+psycopg://loan_owner@127.0.0.1:5432/loan_db_prod}
APP_ROLE=${APP_ROLE:-loan_app}

cd "$APP_DIR"
echo "migrating ${MIGRATION_DATABASE_URL%%\?*}" | sed -E 's#//([^:@/]+):[^@]*@#//\1:***@#'
DATABASE_URL="$MIGRATION_DATABASE_URL" .venv/bin/python -m app.cli init-db
# libpq does not know SQLAlchemy's "+psycopg" driver suffix.
psql "${MIGRATION_DATABASE_URL/+psycopg/}" -X -q -v ON_ERROR_STOP=1 -v app="$APP_ROLE" -f deploy/postgres/grants.sql
echo "migrations applied and grants for $APP_ROLE re-applied"
