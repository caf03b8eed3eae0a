"""PostgreSQL roles on the real server (15+): the seed guide's GRANT ALL ON DATABASE cannot migrate; the shipped
roles.sql + migrate.sh + grants.sql can, and leave the app a least-privilege role that cannot change the schema
nor rewrite the journal."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.deploy.kit import (
    DEPLOY,
    REPO,
    app_ready,
    apply_grants,
    create_prod_database,
    drop_database,
    drop_roles,
    pg_server_major,
    pg_url,
    psql,
    unique,
)

pytestmark = pytest.mark.deploy

# Stand-ins for the ledger tables while the app's migrations do not create them yet (a later migration will);
# created as the owner, exactly as a migration would.
STAND_IN_JOURNAL = """
CREATE TABLE IF NOT EXISTS journal_entries (id bigserial PRIMARY KEY, posted_on date NOT NULL, memo text);
CREATE TABLE IF NOT EXISTS journal_lines (
    id bigserial PRIMARY KEY,
    entry_id bigint NOT NULL REFERENCES journal_entries (id),
    account_code text NOT NULL,
    debit bigint NOT NULL DEFAULT 0,
    credit bigint NOT NULL DEFAULT 0
);
"""


def denied(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode != 0 and ("permission denied" in result.stderr or "must be owner" in result.stderr)


def migrate(names: dict[str, str]) -> None:
    """deploy/postgres/migrate.sh as docs/DEPLOY.md runs it (app migrations as the owner, then grants.sql)."""
    if app_ready():
        env = dict(os.environ, APP_DIR=str(REPO), APP_ROLE=names["app"],
                   MIGRATION_DATABASE_URL=pg_url(names["db"], names["owner"], driver="postgresql+psycopg"))
        r = subprocess.run([str(DEPLOY / "postgres" / "migrate.sh")], env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    else:
        apply_grants(names)


def test_grant_all_on_database_cannot_create_tables_on_pg15() -> None:
    """The trap in the seed guide: on PostgreSQL 15 ordinary roles lost CREATE on schema public."""
    if pg_server_major() < 15:
        pytest.skip("the trap exists from PostgreSQL 15 on")
    db, role = unique("seedway_db"), unique("seedway_app")
    try:
        psql(f'CREATE DATABASE "{db}"')
        psql(f'CREATE ROLE "{role}" LOGIN')
        psql(f'GRANT ALL PRIVILEGES ON DATABASE "{db}" TO "{role}"')
        r = psql("CREATE TABLE loans (id int)", db=db, user=role, check=False)
        assert r.returncode != 0 and "permission denied for schema public" in r.stderr, r.stderr
    finally:
        drop_database(db)
        drop_roles(role)


def test_roles_sql_migrations_and_least_privilege_runtime_role(prod_roles: dict[str, str]) -> None:
    names = prod_roles
    db, owner, app, backup = names["db"], names["owner"], names["app"], names["backup"]
    create_prod_database(names)
    create_prod_database(names)  # idempotent: a second run changes nothing and does not fail
    assert psql(f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{db}'").stdout.strip() == owner

    migrate(names)
    app_journal = psql("SELECT to_regclass('public.journal_lines') IS NOT NULL", db=db).stdout.strip() == "t"
    if app_ready():
        tables = int(psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", db=db).stdout.strip())
        assert tables >= 2, "the app's migrations created its tables as the owner"
        owners = psql("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'", db=db).stdout.split()
        assert owners == [owner], owners
    if not app_journal:
        psql(STAND_IN_JOURNAL, db=db, user=owner)  # what the ledger migration will create
    apply_grants(names)
    apply_grants(names)  # idempotent

    # The runtime role: row DML where the app needs it ...
    if app_journal:  # any schema: INSERT … SELECT … WHERE false needs the INSERT privilege, inserts nothing
        for table in ("journal_entries", "journal_lines"):
            psql(f"INSERT INTO {table} SELECT * FROM {table} WHERE false", db=db, user=app)
    else:
        psql("INSERT INTO journal_entries (posted_on, memo) VALUES (current_date, 'check') ", db=db, user=app)
        entry = psql("SELECT max(id) FROM journal_entries", db=db, user=app).stdout.strip()
        psql(f"INSERT INTO journal_lines (entry_id, account_code, debit, credit) VALUES ({entry}, '1000', 500, 0), "
             f"({entry}, '2000', 0, 500)", db=db, user=app)
    assert psql("SELECT coalesce(sum(debit) - sum(credit), 0) FROM journal_lines", db=db,
                user=app).stdout.strip() == "0"
    some_table = psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE "
                      "'journal%' AND tablename <> 'alembic_version' ORDER BY 1 LIMIT 1", db=db).stdout.strip()
    if some_table:
        psql(f'DELETE FROM "{some_table}" WHERE false', db=db, user=app)
        psql(f'UPDATE "{some_table}" SET {first_column(db, some_table)} = {first_column(db, some_table)} '
             "WHERE false", db=db, user=app)

    # ... but the journal is append-only ...
    for sql in ("UPDATE journal_lines SET debit = debit + 1",
                "DELETE FROM journal_lines",
                "TRUNCATE journal_lines",
                "UPDATE journal_entries SET id = id",
                "DELETE FROM journal_entries"):
        assert denied(psql(sql, db=db, user=app, check=False)), sql
    # ... and the schema is not the app's to change.
    for sql in ("DROP TABLE journal_lines",
                "ALTER TABLE journal_entries ADD COLUMN x int",
                "CREATE TABLE sneaky (id int)",
                "CREATE SCHEMA sneaky"):
        assert denied(psql(sql, db=db, user=app, check=False)), sql
    r = psql("SELECT has_schema_privilege(current_user, 'public', 'CREATE')", db=db, user=app)
    assert r.stdout.strip() == "f"

    # A table a later migration creates (as the owner) is usable by the app at once (default privileges).
    psql("CREATE TABLE later_feature (id bigserial PRIMARY KEY, note text)", db=db, user=owner)
    psql("INSERT INTO later_feature (note) VALUES ('x'); UPDATE later_feature SET note = 'y'; "
         "DELETE FROM later_feature", db=db, user=app)

    # Partitions of an append-only table are protected too when addressed directly.
    psql("CREATE TABLE ledger_archive (id bigint, posted_on date NOT NULL) PARTITION BY RANGE (posted_on); "
         "CREATE TABLE ledger_archive_2026 PARTITION OF ledger_archive "
         "FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')", db=db, user=owner)
    apply_grants(names, append_only="journal_entries,journal_lines,ledger_archive")
    psql("INSERT INTO ledger_archive VALUES (1, '2026-03-01')", db=db, user=app)
    for table in ("ledger_archive", "ledger_archive_2026"):
        assert denied(psql(f"DELETE FROM {table}", db=db, user=app, check=False)), table
        assert denied(psql(f"UPDATE {table} SET id = 2", db=db, user=app, check=False)), table

    # The backup role reads everything and writes nothing; other roles cannot even connect.
    lines = psql("SELECT count(*) FROM journal_lines", db=db).stdout.strip()
    assert psql("SELECT count(*) FROM journal_lines", db=db, user=backup).stdout.strip() == lines
    assert denied(psql("INSERT INTO later_feature (note) VALUES ('x')", db=db, user=backup, check=False))
    stranger = unique("stranger")
    try:
        psql(f'CREATE ROLE "{stranger}" LOGIN')
        r = psql("SELECT 1", db=db, user=stranger, check=False)
        assert r.returncode != 0 and "permission denied for database" in r.stderr, r.stderr
    finally:
        drop_roles(stranger)


def first_column(db: str, table: str) -> str:
    col = psql(f"SELECT attname FROM pg_attribute WHERE attrelid = 'public.\"{table}\"'::regclass AND attnum = 1",
               db=db).stdout.strip()
    return f'"{col}"'
