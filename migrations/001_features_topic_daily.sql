-- The output table of SPEC §4. Written so that it also adopts a features_topic_daily made by
-- the original Python stack: every column it may lack is added with its default, and no row
-- is rewritten or lost.
create table if not exists features_topic_daily (
  user_id        text not null,
  topic_id       text not null,
  date           date not null,
  attempts       int not null default 0,
  correct        int not null default 0,
  avg_time_ms    int,
  hints          int not null default 0,
  theta_estimate numeric(6,3),
  theta_sd       numeric(6,3),
  rt_median      int,
  improvement    numeric(6,3),
  last_seen_at   timestamptz,
  computed_at    timestamptz not null default now(),
  primary key (user_id, topic_id, date)
);

alter table features_topic_daily add column if not exists attempts int not null default 0;
alter table features_topic_daily add column if not exists correct int not null default 0;
alter table features_topic_daily add column if not exists avg_time_ms int;
alter table features_topic_daily add column if not exists hints int not null default 0;
alter table features_topic_daily add column if not exists theta_estimate numeric(6,3);
alter table features_topic_daily add column if not exists theta_sd numeric(6,3);
alter table features_topic_daily add column if not exists rt_median int;
alter table features_topic_daily add column if not exists improvement numeric(6,3);
alter table features_topic_daily add column if not exists last_seen_at timestamptz;
alter table features_topic_daily add column if not exists computed_at timestamptz not null default now();

-- The upsert needs a unique index on exactly (user_id, topic_id, date). An adopted table may
-- have none (then it gets the primary key) or a primary key on other columns (then it gets a
-- unique index). Duplicate keys in an adopted table make this fail, and nothing is changed.
do $$
begin
  if not exists (
    select 1
    from pg_index i
    where i.indrelid = 'features_topic_daily'::regclass
      and i.indisunique
      and i.indpred is null
      and (select array_agg(a.attname::text order by a.attname)
           from pg_attribute a
           where a.attrelid = i.indrelid and a.attnum = any (i.indkey))
          = array['date', 'topic_id', 'user_id']
      and cardinality(i.indkey::int2[]) = 3
  ) then
    if exists (select 1 from pg_index i where i.indrelid = 'features_topic_daily'::regclass and i.indisprimary) then
      create unique index features_topic_daily_key on features_topic_daily (user_id, topic_id, date);
    else
      alter table features_topic_daily alter column user_id set not null,
                                       alter column topic_id set not null,
                                       alter column date set not null,
                                       add primary key (user_id, topic_id, date);
    end if;
  end if;
end
$$;

create index if not exists features_topic_daily_topic_date_idx on features_topic_daily (topic_id, date);
create index if not exists features_topic_daily_user_date_idx on features_topic_daily (user_id, date);
