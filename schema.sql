CREATE TABLE public.aggregate_features_definition (
    singleton boolean DEFAULT true NOT NULL,
    timezone text NOT NULL,
    improvement_mode text NOT NULL,
    recorded_at timestamp with time zone NOT NULL,
    rebuild_from date,
    rebuild_to date,
    CONSTRAINT aggregate_features_definition_singleton_check CHECK (singleton)
);

CREATE TABLE public.aggregate_features_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.aggregate_features_runs (
    run_id text NOT NULL,
    job_version text NOT NULL,
    command text NOT NULL,
    shard text DEFAULT '1/1'::text NOT NULL,
    since date NOT NULL,
    anchor date NOT NULL,
    widened_from date,
    flags jsonb DEFAULT '{}'::jsonb NOT NULL,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone,
    outcome text DEFAULT 'running'::text NOT NULL,
    combinations integer,
    inserted integer,
    updated integer,
    unchanged integer,
    deleted integer,
    failed integer,
    error text,
    CONSTRAINT aggregate_features_runs_outcome_check CHECK ((outcome = ANY (ARRAY['running'::text, 'success'::text, 'failed'::text])))
);

CREATE TABLE public.aggregate_features_source_days (
    shard text NOT NULL,
    date date NOT NULL,
    first_attempts bigint NOT NULL,
    first_at timestamp with time zone NOT NULL,
    highest_attempts bigint NOT NULL,
    highest_at timestamp with time zone NOT NULL,
    last_attempts bigint NOT NULL,
    last_at timestamp with time zone NOT NULL,
    accepted boolean DEFAULT false NOT NULL
);

CREATE TABLE public.features_topic_daily (
    user_id text NOT NULL,
    topic_id text NOT NULL,
    date date NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    correct integer DEFAULT 0 NOT NULL,
    avg_time_ms integer,
    hints integer DEFAULT 0 NOT NULL,
    theta_estimate numeric(6,3),
    theta_sd numeric(6,3),
    rt_median integer,
    improvement numeric(6,3),
    last_seen_at timestamp with time zone,
    computed_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.aggregate_features_definition
    ADD CONSTRAINT aggregate_features_definition_pkey PRIMARY KEY (singleton);

ALTER TABLE ONLY public.aggregate_features_migrations
    ADD CONSTRAINT aggregate_features_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY public.aggregate_features_runs
    ADD CONSTRAINT aggregate_features_runs_pkey PRIMARY KEY (run_id);

ALTER TABLE ONLY public.aggregate_features_source_days
    ADD CONSTRAINT aggregate_features_source_days_pkey PRIMARY KEY (shard, date);

ALTER TABLE ONLY public.features_topic_daily
    ADD CONSTRAINT features_topic_daily_pkey PRIMARY KEY (user_id, topic_id, date);

CREATE INDEX aggregate_features_runs_last_success_idx ON public.aggregate_features_runs USING btree (shard, anchor DESC) WHERE (outcome = 'success'::text);

CREATE INDEX features_topic_daily_topic_date_idx ON public.features_topic_daily USING btree (topic_id, date);

CREATE INDEX features_topic_daily_user_date_idx ON public.features_topic_daily USING btree (user_id, date);
