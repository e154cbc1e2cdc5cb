-- One row per run that writes (dry runs write nothing, not even here): its window, flags,
-- counts, timings and outcome. Operators read it; the job reads the last success of its shard
-- to widen the window over missed nights (SPEC §7).
create table aggregate_features_runs (
  run_id        text primary key,
  job_version   text not null,
  command       text not null,
  shard         text not null default '1/1',
  since         date not null,
  anchor        date not null,
  widened_from  date,
  flags         jsonb not null default '{}',
  started_at    timestamptz not null,
  finished_at   timestamptz,
  outcome       text not null default 'running' check (outcome in ('running', 'success', 'failed')),
  combinations  int,
  inserted      int,
  updated       int,
  unchanged     int,
  deleted       int,
  failed        int,
  error         text
);

create index aggregate_features_runs_last_success_idx
  on aggregate_features_runs (shard, anchor desc) where outcome = 'success';
