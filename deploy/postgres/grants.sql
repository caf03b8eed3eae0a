-- Runtime privileges of the app role; idempotent. Run after EVERY migration, as the migration role
-- (deploy/postgres/migrate.sh does both steps):
--   psql -h 127.0.0.1 -U loan_owner -d loan_db_prod -v app=loan_app -f deploy/postgres/grants.sql
-- Optional: -v append_only=journal_entries,journal_lines  (the tables the app may only SELECT and INSERT).
\set ON_ERROR_STOP on
\if :{?app}
\else
  \set app loan_app
\endif
\if :{?append_only}
\else
  \set append_only journal_entries,journal_lines
\endif

SELECT format('GRANT USAGE ON SCHEMA public TO %I', :'app') \gexec
-- Every table and sequence that exists now (the default privileges in roles.sql cover tables created later).
SELECT format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', :'app') \gexec
SELECT format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', :'app') \gexec
-- Nothing destructive beyond row DML, ever.
SELECT format('REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM %I', :'app') \gexec

-- The journal is append-only: the app may SELECT and INSERT, never UPDATE or DELETE (a correction is a
-- reversing entry). Applied to partitions too, which are tables in their own right when addressed directly.
SELECT format('REVOKE UPDATE, DELETE, TRUNCATE ON TABLE %s FROM %I', part.rel::regclass, :'app')
  FROM (SELECT to_regclass('public.' || quote_ident(trim(name))) AS parent
          FROM unnest(string_to_array(:'append_only', ',')) AS name) AS t
 CROSS JOIN LATERAL (SELECT t.parent AS rel
                     UNION SELECT relid FROM pg_partition_tree(t.parent)) AS part
 WHERE t.parent IS NOT NULL \gexec

-- What the app may do now, for the operator's eye (and the deploy checks).
SELECT c.relname AS append_only_table,
       has_table_privilege(:'app', c.oid, 'INSERT') AS can_insert,
       has_table_privilege(:'app', c.oid, 'UPDATE') AS can_update,
       has_table_privilege(:'app', c.oid, 'DELETE') AS can_delete
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relname = ANY (string_to_array(:'append_only', ','))
 ORDER BY 1;
