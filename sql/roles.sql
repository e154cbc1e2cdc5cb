-- Least-privilege roles for aggregate-features-daily (see docs/security.md).
--
-- Creates (or updates) two login roles:
--   job_role     runs the daily job: reads the attempts source (and the theta tables if they
--                exist), reads and writes features_topic_daily, aggregate_features_runs and
--                what the job remembers (aggregate_features_source_days, _definition),
--                creates its temporary table. It cannot create, alter, drop or truncate tables.
--   dryrun_role  can only run `--dry-run` (and read the job's tables): SELECT, nothing else,
--                not even TEMP.
-- Neither can run `migrate`: run that as the tables' owner (a migrator role, docs/security.md).
--
-- Run it as a superuser or the owner of the job's tables, in the job's database, AFTER
-- `aggregate-features-daily migrate` (the grants name the tables migrate creates):
--
--   psql -X -v ON_ERROR_STOP=1 -d features \
--        -v job_role=aggregate_features_job   -v job_password="$JOB_PASSWORD" \
--        -v dryrun_role=aggregate_features_ro -v dryrun_password="$RO_PASSWORD" \
--        -v schema=public -v source=attempt \
--        -f sql/roles.sql
--
-- Variables (all optional):
--   job_role         default aggregate_features_job
--   job_password     set the job role's password (plain text or a SCRAM-SHA-256 verifier);
--                    better: leave it off the command line and export AFD_JOB_PASSWORD.
--                    Neither given: the password is left as it is (none for a new role, e.g.
--                    for certificate or IAM authentication)
--   dryrun_role      default aggregate_features_readonly
--   dryrun_password  as job_password, for dryrun_role (or export AFD_DRYRUN_PASSWORD)
--   schema           the schema of the job's tables, default public
--   source           the attempts table or view, the same text as AGG_SOURCE (optionally
--                    schema.name), default attempt; it must exist. Both follow SQL's rule:
--                    a plain name folds to lower case (Attempt is attempt), a double-quoted
--                    one keeps its case: -v source='"Attempts"'
--   theta_table      default student_topic_theta; granted only if it exists
--   mirt_table       default mirt_ability; granted only if it exists
--
-- Idempotent: run it again after every `migrate` that adds a table, or after a new source.
-- A password (-v or environment) is sent to the server inside ALTER ROLE: with log_statement=ddl or
-- all the server logs it. Pass a SCRAM verifier instead (psql's \password, or
-- `SELECT 'SCRAM-SHA-256$…'` from a role created elsewhere) or set passwords with \password.

\set ON_ERROR_STOP on
\if :{?job_role}
\else
  \set job_role aggregate_features_job
\endif
\if :{?dryrun_role}
\else
  \set dryrun_role aggregate_features_readonly
\endif
\if :{?schema}
\else
  \set schema public
\endif
\if :{?source}
\else
  \set source attempt
\endif
\if :{?theta_table}
\else
  \set theta_table student_topic_theta
\endif
\if :{?mirt_table}
\else
  \set mirt_table mirt_ability
\endif
\if :{?job_password}
\else
  \getenv job_password AFD_JOB_PASSWORD
\endif
\if :{?dryrun_password}
\else
  \getenv dryrun_password AFD_DRYRUN_PASSWORD
\endif

-- The job's tables must exist: migrate first.
select to_regclass(format('%I.features_topic_daily', :'schema')) is null
    or to_regclass(format('%I.aggregate_features_runs', :'schema')) is null
    or to_regclass(format('%I.aggregate_features_migrations', :'schema')) is null as schema_missing \gset
\if :schema_missing
  \warn 'the job''s tables are missing in schema' :schema
  do $$ begin raise exception 'run `aggregate-features-daily migrate` first (as the migrator), then this script'; end $$;
\endif
-- The source must exist (a typo would otherwise leave the job without its input).
select to_regclass(:'source') is null as source_missing \gset
\if :source_missing
  \warn 'the attempts source' :source 'does not exist'
  do $$ begin raise exception 'set -v source=... to the attempts table or view, as AGG_SOURCE names it'; end $$;
\endif

begin;

-- The roles: LOGIN, nothing else (no CREATEDB, CREATEROLE, superuser, replication, bypassrls).
select format('create role %I login', :'job_role')
where not exists (select from pg_roles where rolname = :'job_role') \gexec
select format('create role %I login', :'dryrun_role')
where not exists (select from pg_roles where rolname = :'dryrun_role') \gexec
select format('alter role %I with login nosuperuser nocreatedb nocreaterole noreplication nobypassrls inherit', r)
from unnest(array[:'job_role', :'dryrun_role']) as r \gexec
-- Never echo the statements that carry a password, even under psql -e.
\set ECHO none
\if :{?job_password}
  select format('alter role %I password %L', :'job_role', :'job_password') \gexec
\endif
\if :{?dryrun_password}
  select format('alter role %I password %L', :'dryrun_role', :'dryrun_password') \gexec
\endif

-- Database: both connect; only the job may create temporary tables (its agg_computed).
-- The dry run is one read-only SELECT and needs no TEMP.
select format('grant connect on database %I to %I, %I', current_database(), :'job_role', :'dryrun_role') \gexec
select format('grant temporary on database %I to %I', current_database(), :'job_role') \gexec
select format('revoke temporary on database %I from %I', current_database(), :'dryrun_role') \gexec

-- The job's schema: USAGE only, never CREATE (the daily run never creates tables).
select format('grant usage on schema %I to %I, %I', :'schema', :'job_role', :'dryrun_role') \gexec
select format('revoke create on schema %I from %I, %I', :'schema', :'job_role', :'dryrun_role') \gexec

-- The job's tables. The run checks the applied migrations, reads and writes the features and
-- its run log; the dry run reads all three (the run log for the catch-up window).
select format('grant select, insert, update, delete on %I.features_topic_daily, %I.aggregate_features_runs to %I',
              :'schema', :'schema', :'job_role') \gexec
select format('grant select on %I.aggregate_features_migrations to %I', :'schema', :'job_role') \gexec
select format('revoke truncate, references, trigger on %I.features_topic_daily, %I.aggregate_features_runs from %I',
              :'schema', :'schema', :'job_role') \gexec
select format('revoke insert, update, delete, truncate, references, trigger on %I.aggregate_features_migrations from %I',
              :'schema', :'job_role') \gexec
select format('grant select on %I.features_topic_daily, %I.aggregate_features_runs, %I.aggregate_features_migrations to %I',
              :'schema', :'schema', :'schema', :'dryrun_role') \gexec
select format('revoke insert, update, delete, truncate, references, trigger on %I.features_topic_daily, %I.aggregate_features_runs, %I.aggregate_features_migrations from %I',
              :'schema', :'schema', :'schema', :'dryrun_role') \gexec

-- What the job remembers (migration 003): the run reads and writes it in the transaction that
-- writes the rows (a rebuild deletes it); the dry run reads it for the same verdict.
select format('grant select, insert, update, delete on %I.aggregate_features_source_days, %I.aggregate_features_definition to %I',
              :'schema', :'schema', :'job_role') \gexec
select format('revoke truncate, references, trigger on %I.aggregate_features_source_days, %I.aggregate_features_definition from %I',
              :'schema', :'schema', :'job_role') \gexec
select format('grant select on %I.aggregate_features_source_days, %I.aggregate_features_definition to %I',
              :'schema', :'schema', :'dryrun_role') \gexec
select format('revoke insert, update, delete, truncate, references, trigger on %I.aggregate_features_source_days, %I.aggregate_features_definition from %I',
              :'schema', :'schema', :'dryrun_role') \gexec

-- On Citus, after `migrate --distribute`: the run stages its rows in two distributed tables
-- instead of temporary ones (docs/scale-out.md); it inserts, reads and deletes its own rows.
select format('grant select, insert, delete on %s to %I', t, :'job_role')
from (values (to_regclass(format('%I.aggregate_features_computed', :'schema'))),
             (to_regclass(format('%I.aggregate_features_failed', :'schema')))) as v(t)
where t is not null \gexec

-- The inputs: SELECT on the source (and USAGE on its schema), and on the theta tables if present.
select format('grant usage on schema %I to %I, %I', n.nspname, :'job_role', :'dryrun_role')
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.oid = to_regclass(:'source') \gexec
select format('grant select on %s to %I, %I', to_regclass(:'source'), :'job_role', :'dryrun_role') \gexec
select format('grant select on %s to %I, %I', t, :'job_role', :'dryrun_role')
from (values (to_regclass(format('%I.%I', :'schema', :'theta_table'))),
             (to_regclass(format('%I.%I', :'schema', :'mirt_table')))) as v(t)
where t is not null \gexec

commit;

-- What the roles can do now, and a warning if they can do more than they should.
select r as role,
       has_database_privilege(r, current_database(), 'TEMP') as temp,
       has_schema_privilege(r, :'schema', 'CREATE') as create_in_schema,
       has_table_privilege(r, format('%I.features_topic_daily', :'schema'), 'INSERT,UPDATE,DELETE') as write_features,
       has_table_privilege(r, to_regclass(:'source'), 'SELECT') as read_source
from unnest(array[:'job_role', :'dryrun_role']) as r;

select has_schema_privilege(:'job_role', :'schema', 'CREATE')
    or has_schema_privilege(:'dryrun_role', :'schema', 'CREATE') as can_create \gset
\if :can_create
  \warn 'WARNING: the roles can still CREATE in schema' :schema 'through PUBLIC (a database created before PostgreSQL 15). To close it: REVOKE CREATE ON SCHEMA' :schema 'FROM PUBLIC;'
\endif
select has_database_privilege(:'dryrun_role', current_database(), 'TEMP') as dryrun_temp \gset
\if :dryrun_temp
  \echo 'note: the dry-run role still has TEMP through PUBLIC (the default); it does not need it. To remove it: REVOKE TEMPORARY ON DATABASE <db> FROM PUBLIC (then grant TEMP to the roles that need it).'
\endif
