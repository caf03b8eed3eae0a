-- Database and roles for the loan backend on PostgreSQL 15/16. Run once, as the postgres superuser:
--   sudo -u postgres psql -v db=loan_db_prod -v owner=loan_owner -v app=loan_app -v backup=loan_backup \
--        -f deploy/postgres/roles.sql
--   then set the passwords (prompted, sent hashed, never on a command line):
--   sudo -u postgres psql -c '\password loan_owner'   (same for loan_app, loan_backup)
-- Safe to run again: existing roles and the database are left as they are, grants re-applied.
--
-- Why not the seed guide's `GRANT ALL PRIVILEGES ON DATABASE loan_db_prod TO loan_app`: since PostgreSQL 15
-- ordinary users have no CREATE on schema public, and that grant covers only CONNECT/CREATE SCHEMA/TEMP on the
-- database — migrations then fail with "permission denied for schema public". Here the database (and with it
-- schema public, owned by pg_database_owner in PG15) belongs to a migration role, and the app runs as a
-- least-privilege role that cannot CREATE, ALTER or DROP anything, nor UPDATE/DELETE the journal.
\set ON_ERROR_STOP on
\if :{?db}
\else
  \set db loan_db_prod
\endif
\if :{?owner}
\else
  \set owner loan_owner
\endif
\if :{?app}
\else
  \set app loan_app
\endif
\if :{?backup}
\else
  \set backup loan_backup
\endif

-- loan_owner: owns the database and every table; used only for migrations (deploy/postgres/migrate.sh).
SELECT format('CREATE ROLE %I LOGIN', :'owner')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
-- loan_app: what gunicorn, close-day and loanctl connect as (via PgBouncer). No ownership, no DDL.
SELECT format('CREATE ROLE %I LOGIN', :'app')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app') \gexec
-- loan_backup: pg_dump only; pg_read_all_data (PG14+) reads every table and sequence, writes nothing.
SELECT format('CREATE ROLE %I LOGIN', :'backup')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'backup') \gexec
SELECT format('GRANT pg_read_all_data TO %I', :'backup') \gexec

SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'db', :'owner', 'UTF8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec

-- Only our roles may connect (PUBLIC has CONNECT and TEMP on new databases by default).
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', :'db', :'app') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'db', :'backup') \gexec

-- A transaction left open by a bug must not hold locks (and block close of business) forever.
SELECT format('ALTER ROLE %I IN DATABASE %I SET idle_in_transaction_session_timeout = %L', :'app', :'db', '60s') \gexec

\connect :"db"
-- Explicit even though PG15 already does it: a cluster upgraded from PG14 or older still lets PUBLIC create.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SELECT format('GRANT USAGE ON SCHEMA public TO %I', :'app') \gexec
-- Tables and sequences that later migrations create (as the owner) are usable by the app at once...
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
              :'owner', :'app') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO %I',
              :'owner', :'app') \gexec
-- ...and grants.sql (run after every migration) takes UPDATE/DELETE on the append-only journal away again.
