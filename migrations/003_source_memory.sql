-- What the job remembers of its source (docs/operations.md, "What the job remembers").
--
-- aggregate_features_source_days: per shard and day the job has written, the attempts the
-- source delivered: the first time, at its highest and the last time. Written in the same
-- transaction as the day's rows. The shrink guard compares a day with its highest count, the
-- newest-day check compares a day that has no rows yet with the same weekday of the weeks
-- before. `accepted` marks a day an operator let through below its baseline (--allow-shrink,
-- --allow-incomplete), so `report` does not flag it again.
create table aggregate_features_source_days (
  shard            text not null,
  date             date not null,
  first_attempts   bigint not null,
  first_at         timestamptz not null,
  highest_attempts bigint not null,
  highest_at       timestamptz not null,
  last_attempts    bigint not null,
  last_at          timestamptz not null,
  accepted         boolean not null default false,
  primary key (shard, date)
);

-- The definition the stored rows were computed in: the time zone that cuts days and the
-- improvement mode. One row, recorded by the first run that writes; a run with other values
-- refuses. `rebuild_from`/`rebuild_to` are set while `backfill --redefine` rebuilds the
-- history in a new definition, and cleared when it has finished.
create table aggregate_features_definition (
  singleton        boolean primary key default true check (singleton),
  timezone         text not null,
  improvement_mode text not null,
  recorded_at      timestamptz not null,
  rebuild_from     date,
  rebuild_to       date
);
