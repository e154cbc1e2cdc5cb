/**
 * The benchmark's data sets, generated inside PostgreSQL with generate_series (no row passes
 * through Node), deterministic: every random choice is a hash of the row's coordinates
 * (`hashint8extended`, the function hash partitioning uses, so it is stable across versions),
 * never random().
 *
 * Shape (issue 5): 36 days ending on the anchor; students = attempts / 360; each student is
 * active on 30–70% of the days (about half), practises 1–3 topics of 40 on an active day (2 on
 * average) with 5–15 attempts each (10 on average), so 36 · ½ · 2 · 10 = 360 attempts per
 * student. Accuracy depends on the student and grows over the weeks. 1% of `correct` and
 * `hint_used` are NULL, 2% of response times NULL and 0.3% negative (clock skew), 0.2% of topics
 * empty and 0.1% of student ids NULL (rows the job must ignore). Rows are
 * inserted in completed_at order, as an append-only attempts table would hold them, and the
 * table is vacuumed (hint bits, visibility map) so every measured run sees the same pages.
 */
import type pg from 'pg';

/** The last day of the generated history; every scenario uses it as the run's anchor. */
export const anchorDay = '2025-11-01';
/** Days of history (the first is anchor − 35). */
export const historyDays = 36;
/** Bump when the generator changes, so a reused database is regenerated. */
export const generatorVersion = 3;

/** h(k, seed) in [0, 1), inlined by the planner (a single-expression SQL function). */
const createHash = `
create or replace function bench_u(k bigint, seed int) returns float8
language sql immutable parallel safe
as $$ select (hashint8extended(k, seed) & 2147483647)::float8 / 2147483648.0 $$`;

/**
 * A shape of the data (issue 14): the type of student_id, the length of topic names, how many
 * attempts a student makes per (topic, day), and how many days the history holds. The base
 * shape (`text`) is the issue-5 data set above; every other shape changes one thing, in its own
 * table `attempt_<name>` of the same database, generated the same way.
 */
export interface Shape {
  readonly name: string;
  /** The source table: `attempt` for the base shape, `attempt_<name>` otherwise. */
  readonly table: string;
  readonly idType: 'text' | 'uuid' | 'bigint';
  readonly topics: 'short' | 'long';
  /** Attempts per (student, topic, active day): min and max, uniform. */
  readonly perSession: readonly [number, number];
  /** Days of history, ending on the anchor. */
  readonly days: number;
  /**
   * How a student's 1–3 topics of a day are picked: `favourite`, near the student's favourite
   * topic (about 15 topics per student over the history); `uniform`, anywhere among the 40
   * (three distinct ones: a random start and a random step of 1–13), so a student touches most
   * topics, each on few days.
   */
  readonly topicChoice?: 'favourite' | 'uniform';
  /** Skewed activity: this share of the students makes `factor` times the attempts per (topic, day). */
  readonly heavy?: { readonly share: number; readonly factor: number };
  readonly description: string;
}

const shape = (name: string, s: Partial<Shape> & { description: string }): Shape => ({
  name,
  table: name === 'text' ? 'attempt' : `attempt_${name.replaceAll('-', '_')}`,
  idType: 'text',
  topics: 'short',
  perSession: [5, 15],
  days: historyDays,
  ...s,
});

/** The data shapes of the `shapes` scenario (the base shape first). */
export const shapes: Record<string, Shape> = {
  text: shape('text', { description: "student_id text ('student-000123'), topic 'topic-07', 5–15 attempts per (student, topic, day)" }),
  uuid: shape('uuid', { idType: 'uuid', description: 'student_id uuid' }),
  integer: shape('integer', { idType: 'bigint', description: 'student_id bigint' }),
  'long-topics': shape('long-topics', { topics: 'long', description: 'topic names of 66 characters' }),
  'few-students': shape('few-students', {
    perSession: [50, 150],
    description: 'few students with many attempts: 50–150 per (student, topic, day), a tenth of the students',
  }),
  'many-students': shape('many-students', {
    perSession: [1, 2],
    description: 'many students with few attempts: 1–2 per (student, topic, day), 6.7× the students',
  }),
  // The shapes of issue 23, where the job stood further from its floor than on the ones above.
  'shape-a': shape('shape-a', {
    idType: 'uuid',
    topicChoice: 'uniform',
    description:
      'shape A: student_id uuid, about 8,000 students at 3M (attempts / 360), active about half the days, 1–3 of 40 topics a day picked uniformly, 5–15 attempts per (student, topic, day)',
  }),
  'shape-b': shape('shape-b', {
    perSession: [1, 3],
    description: 'shape B: student_id text, many students (attempts / 72) with 1–3 attempts per (student, topic, day)',
  }),
  skewed: shape('skewed', {
    heavy: { share: 0.01, factor: 50 },
    description: 'skewed activity: 1% of the students make 50× the attempts per (topic, day), a third of all attempts',
  }),
};

/** A year of history (the 365-day backfill): the base shape over 365 days. */
export const yearShape: Shape = shape('year', { days: 365, description: 'a year of history, base shape' });

/** Attempts a student makes over the history, on average (active half the days, 2 topics a day). */
export function attemptsPerStudentOf(s: Shape): number {
  const skew = s.heavy ? 1 + s.heavy.share * (s.heavy.factor - 1) : 1;
  return s.days * 0.5 * 2 * ((s.perSession[0] + s.perSession[1]) / 2) * skew;
}

/** Expressions of the generator that depend on the shape (`a` an active day, `se` a session). */
function generatorParts(sh: Shape): { topic: string; attempts: string; stride: number; spacing: string } {
  const base = `${sh.perSession[0]} + floor(${sh.perSession[1] - sh.perSession[0] + 1} * bench_u(a.sd * 4 + k, 6))::int`;
  const topic =
    sh.topicChoice === 'uniform'
      ? '(floor(40 * bench_u(a.sd, 5))::int + k * (1 + floor(13 * bench_u(a.sd, 14))::int)) % 40 + 1'
      : '(a.favourite + k * 7 + floor(5 * bench_u(a.sd, 5))::int) % 40 + 1';
  if (!sh.heavy)
    return { topic, attempts: base, stride: sh.perSession[1] < 16 ? 16 : 256, spacing: String(sh.perSession[1] > 20 ? 5 : 50) };
  // The first share of the students (exactly, at least one) are heavy: their sessions are
  // `factor` times longer, their attempts 5 s apart so a day holds them.
  return {
    topic,
    attempts: `(${base}) * (case when a.s <= ceil(${sh.heavy.share} * $1::int) then ${sh.heavy.factor} else 1 end)`,
    stride: 2 ** Math.ceil(Math.log2(sh.perSession[1] * sh.heavy.factor + 1)),
    spacing: '(case when attempts > 20 then 5 else 50 end)',
  };
}

const studentExpr: Record<Shape['idType'], string> = {
  text: `'student-' || lpad(s::text, 6, '0')`,
  uuid: `md5('student-' || s::text)::uuid`,
  bigint: 's::bigint',
};

const topicExpr: Record<Shape['topics'], string> = {
  short: `'topic-' || lpad(topic_n::text, 2, '0')`,
  long: `'curriculum/mathematics/grade-07/unit-04/lesson-practice/skill-' || lpad(topic_n::text, 2, '0')`,
};

const createAttempt = (s: Shape) => `
create table "${s.table}" (
  student_id       ${s.idType},
  topic_id         text,
  completed_at     timestamptz not null,
  correct          boolean,
  response_time_ms integer,
  hint_used        boolean
)`;

/** $1 students, $2 first day of the history. */
const insertAttempts = (sh: Shape, g = generatorParts(sh)) => `
insert into "${sh.table}" (student_id, topic_id, completed_at, correct, response_time_ms, hint_used)
with students as (
  select s,
         0.3 + 0.4 * bench_u(s, 1)        as activity,
         0.35 + 0.4 * bench_u(s, 2)       as skill,
         floor(40 * bench_u(s, 3))::int   as favourite
  from generate_series(1, $1::int) s
),
active_days as (
  select st.*, d, st.s * 512 + d as sd
  from students st, generate_series(0, ${sh.days - 1}) d
  where bench_u(st.s * 512 + d, 4) < st.activity
),
sessions as (
  select a.*, k, a.sd * 4 + k as sdk,
         ${g.topic} as topic_n,
         ${g.attempts} as attempts,
         floor(46800 * bench_u(a.sd, 7))::int                               as start_s
  from active_days a, generate_series(0, 2) k
  where k <= floor(3 * bench_u(a.sd, 8))
),
attempt_rows as (
  select se.*, i, bench_u(se.sdk::bigint * ${g.stride} + i, 9) as r1, bench_u(se.sdk::bigint * ${g.stride} + i, 10) as r2
  from sessions se, generate_series(1, se.attempts) i
)
select case when r2 >= 0.8 and r2 < 0.801 then null else ${studentExpr[sh.idType]} end,
       case when r2 >= 0.7 and r2 < 0.702 then '' else ${topicExpr[sh.topics]} end,
       ($2::date + d)::timestamp at time zone 'UTC'
         + make_interval(secs => 25200 + start_s + k * 900 + i * ${g.spacing} + floor(40 * r1)::int),
       case when r2 < 0.01 then null else r1 < skill + 0.15 * d / ${sh.days - 1}.0 end,
       case when r2 >= 0.01 and r2 < 0.03 then null
            when r2 >= 0.03 and r2 < 0.033 then -1
            else (1500 + 45000 * r2 * r2 + 5000 * r1)::int end,
       case when r2 >= 0.5 and r2 < 0.51 then null else r1 > 0.85 end
from attempt_rows
order by 3`;

/**
 * Late-arriving attempts: 1% of the attempts of the window's past days (since … anchor − 1)
 * again, 20.5 s later (the half second marks them, base rows are on whole seconds), with the
 * opposite answer; one in ten on another topic, so some combinations are new. As a SELECT, so
 * the same rows can be inserted on the server or exported for PGlite. $1 since, $2 anchor.
 */
export const selectLateAttempts = `
select student_id,
       case when bench_u(hashtext(student_id) + extract(epoch from completed_at)::bigint, 12) < 0.1
            then 'topic-' || lpad((substr(topic_id, 7)::int % 40 + 1)::text, 2, '0')
            else topic_id end as topic_id,
       completed_at + interval '20.5 seconds' as completed_at,
       not correct as correct,
       response_time_ms + 250 as response_time_ms,
       hint_used
from attempt
where completed_at >= ($1::date::timestamp at time zone 'UTC')
  and completed_at <  ($2::date::timestamp at time zone 'UTC')
  and extract(microseconds from completed_at)::bigint % 1000000 = 0
  and student_id is not null and topic_id <> ''
  and bench_u(hashtext(student_id) + extract(epoch from completed_at)::bigint, 11) < 0.01`;

/** Removes the late attempts again (the marker: a fractional second). $1 since, $2 anchor. */
const deleteLateAttempts = `
delete from attempt
where completed_at >= ($1::date::timestamp at time zone 'UTC')
  and completed_at <  (($2::date + 1)::timestamp at time zone 'UTC')
  and extract(microseconds from completed_at)::bigint % 1000000 <> 0`;

export interface DatasetInfo {
  readonly attempts: number;
  readonly students: number;
  readonly generatedSeconds: number | undefined;
  readonly tableMb: number;
}

/**
 * Generates the data set of `sh` (default: the base shape, table `attempt`) with about
 * `targetAttempts` attempts, unless an identical one is already there; returns its facts.
 */
export async function ensureDataset(
  client: pg.Client,
  targetAttempts: number,
  fresh: boolean,
  sh: Shape = shapes.text!,
): Promise<DatasetInfo> {
  const students = Math.max(1, Math.round(targetAttempts / attemptsPerStudentOf(sh)));
  const key = `v${generatorVersion}:${JSON.stringify({ ...sh, description: undefined })}:students=${students}:anchor=${anchorDay}`;
  await client.query('create table if not exists bench_datasets (tbl text primary key, key text not null, attempts bigint not null)');
  const existing = await client.query<{ attempts: string }>('select attempts from bench_datasets where tbl = $1 and key = $2', [
    sh.table,
    key,
  ]);
  const haveTable = (await client.query('select to_regclass($1) is not null as ok', [`"${sh.table}"`])).rows[0] as { ok: boolean };
  let generatedSeconds: number | undefined;
  await client.query(createHash);
  if (fresh || existing.rowCount === 0 || !haveTable.ok) {
    const t0 = performance.now();
    await client.query(`drop table if exists "${sh.table}"`);
    await client.query('delete from bench_datasets where tbl = $1', [sh.table]);
    await client.query(createAttempt(sh));
    await client.query("set work_mem = '1GB'");
    const firstDay = (await client.query<{ d: string }>(`select ($1::date - ${sh.days - 1})::text as d`, [anchorDay])).rows[0]!.d;
    const inserted = await client.query(insertAttempts(sh), [students, firstDay]);
    await client.query('reset work_mem');
    await createCompletedAtIndex(client, sh.table);
    await client.query(`vacuum (freeze, analyze) "${sh.table}"`);
    await client.query('insert into bench_datasets values ($1, $2, $3)', [sh.table, key, inserted.rowCount ?? 0]);
    generatedSeconds = (performance.now() - t0) / 1000;
  } else {
    if (sh.table === 'attempt') await removeLateAttempts(client, '1900-01-01', anchorDay);
    await createCompletedAtIndex(client, sh.table);
  }
  const facts = await client.query<{ attempts: string; mb: string }>(
    'select attempts, (pg_total_relation_size($1) / 1048576)::bigint as mb from bench_datasets where tbl = $2',
    [`"${sh.table}"`, sh.table],
  );
  return { attempts: Number(facts.rows[0]!.attempts), students, generatedSeconds, tableMb: Number(facts.rows[0]!.mb) };
}

/** The index the job's range scan needs (the same name `import-attempts` gives it). */
export async function createCompletedAtIndex(client: pg.Client, table = 'attempt'): Promise<void> {
  await client.query(`create index if not exists "${table}_completed_at_idx" on "${table}" (completed_at)`);
}

export async function dropCompletedAtIndex(client: pg.Client): Promise<void> {
  await client.query('drop index if exists attempt_completed_at_idx');
}

/** Adds the late attempts; returns how many. */
export async function addLateAttempts(client: pg.Client, since: string, anchor: string): Promise<number> {
  const result = await client.query(
    `insert into attempt (student_id, topic_id, completed_at, correct, response_time_ms, hint_used) ${selectLateAttempts}`,
    [since, anchor],
  );
  return result.rowCount ?? 0;
}

/** Deletes the late attempts and vacuums, so the next repetition starts from the same table. */
export async function removeLateAttempts(client: pg.Client, since: string, anchor: string): Promise<void> {
  const result = await client.query(deleteLateAttempts, [since, anchor]);
  if ((result.rowCount ?? 0) > 0) await client.query('vacuum attempt');
}

/** Attempts of the window (since … anchor), and of the whole range the job reads (since − 27 … anchor). */
export async function windowFacts(
  client: pg.Client,
  since: string,
  anchor: string,
  table = 'attempt',
): Promise<{ window: number; read: number }> {
  const r = await client.query<{ w: string; r: string }>(
    `select count(*) filter (where completed_at >= ($1::date::timestamp at time zone 'UTC')) as w, count(*) as r
     from "${table}"
     where completed_at >= (($1::date - 27)::timestamp at time zone 'UTC')
       and completed_at <  (($2::date + 1)::timestamp at time zone 'UTC')`,
    [since, anchor],
  );
  return { window: Number(r.rows[0]!.w), read: Number(r.rows[0]!.r) };
}
