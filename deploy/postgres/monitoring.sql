-- Monitoring queries for the loan backend's database, as documented in docs/DEPLOY.md ("Monitoring").
-- Run all:  sudo -u postgres psql -d loan_db_prod -f deploy/postgres/monitoring.sql
-- Needs shared_preload_libraries = 'pg_stat_statements' (postgresql.conf.d/loan-backend.conf) and, once:
--   sudo -u postgres psql -d loan_db_prod -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements'
-- Column names are those of PostgreSQL 13+ (total_exec_time/mean_exec_time; total_time/mean_time are gone).
\set ON_ERROR_STOP on
\pset footer off

\echo '== Top 10 statements by total execution time =='
SELECT round(total_exec_time::numeric, 1)                             AS total_ms,
       calls,
       round(mean_exec_time::numeric, 2)                              AS mean_ms,
       round((100 * total_exec_time / nullif(sum(total_exec_time) OVER (), 0))::numeric, 1) AS pct,
       rows,
       left(regexp_replace(query, '\s+', ' ', 'g'), 120)              AS query
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
 ORDER BY total_exec_time DESC
 LIMIT 10;

\echo '== Top 10 statements by mean execution time (called at least 10 times) =='
SELECT round(mean_exec_time::numeric, 2)   AS mean_ms,
       round(stddev_exec_time::numeric, 2) AS stddev_ms,
       calls,
       left(regexp_replace(query, '\s+', ' ', 'g'), 120) AS query
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND calls >= 10
 ORDER BY mean_exec_time DESC
 LIMIT 10;

\echo '== Connections by database, user and state =='
SELECT datname, usename, application_name, state, count(*) AS connections,
       max(now() - state_change) AS longest_in_state
  FROM pg_stat_activity
 WHERE backend_type = 'client backend'
 GROUP BY datname, usename, application_name, state
 ORDER BY connections DESC;

\echo '== Connections used vs max_connections =='
SELECT count(*) AS used, current_setting('max_connections')::int AS max,
       round(100.0 * count(*) / current_setting('max_connections')::int, 1) AS pct
  FROM pg_stat_activity;

\echo '== Long-running transactions (> 1 minute) =='
SELECT pid, usename, state, now() - xact_start AS xact_age, wait_event_type, wait_event,
       left(regexp_replace(query, '\s+', ' ', 'g'), 120) AS query
  FROM pg_stat_activity
 WHERE xact_start IS NOT NULL AND now() - xact_start > interval '1 minute'
 ORDER BY xact_start;

\echo '== Blocked sessions and who blocks them =='
SELECT blocked.pid                    AS blocked_pid,
       blocked.usename                AS blocked_user,
       now() - blocked.query_start    AS waiting_for,
       pg_blocking_pids(blocked.pid)  AS blocked_by,
       left(regexp_replace(blocked.query, '\s+', ' ', 'g'), 120) AS blocked_query
  FROM pg_stat_activity AS blocked
 WHERE cardinality(pg_blocking_pids(blocked.pid)) > 0;

\echo '== Locks held or awaited, by table and mode =='
SELECT l.relation::regclass AS relation, l.mode, l.granted, count(*) AS locks
  FROM pg_locks l
 WHERE l.relation IS NOT NULL AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
 GROUP BY 1, 2, 3
 ORDER BY locks DESC;

\echo '== Replication lag (on the primary; one row per standby) =='
SELECT application_name, client_addr, state, sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS replay_lag_bytes,
       write_lag, flush_lag, replay_lag
  FROM pg_stat_replication;

\echo '== Replica delay (on a standby; NULL on the primary) =='
SELECT pg_is_in_recovery() AS is_standby,
       CASE WHEN pg_is_in_recovery() THEN now() - pg_last_xact_replay_timestamp() END AS replay_delay;

\echo '== Database size =='
SELECT current_database() AS database, pg_size_pretty(pg_database_size(current_database())) AS size;

\echo '== Largest tables, dead rows and last (auto)vacuum (bloat indicators) =='
SELECT relname                                           AS table,
       pg_size_pretty(pg_total_relation_size(relid))     AS total_size,
       pg_size_pretty(pg_relation_size(relid))           AS table_size,
       n_live_tup, n_dead_tup,
       round(100.0 * n_dead_tup / nullif(n_live_tup + n_dead_tup, 0), 1) AS dead_pct,
       greatest(last_vacuum, last_autovacuum)            AS last_vacuum,
       greatest(last_analyze, last_autoanalyze)          AS last_analyze
  FROM pg_stat_user_tables
 ORDER BY pg_total_relation_size(relid) DESC
 LIMIT 15;

\echo '== Cache hit ratio (should stay above 0.99) =='
SELECT round(sum(blks_hit)::numeric / nullif(sum(blks_hit) + sum(blks_read), 0), 4) AS cache_hit_ratio
  FROM pg_stat_database
 WHERE datname = current_database();

\echo '== Unused indexes (candidates to drop; check replicas before dropping) =='
SELECT s.relname AS table, s.indexrelname AS index, pg_size_pretty(pg_relation_size(s.indexrelid)) AS size
  FROM pg_stat_user_indexes s
  JOIN pg_index i ON i.indexrelid = s.indexrelid
 WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
 ORDER BY pg_relation_size(s.indexrelid) DESC
 LIMIT 10;
