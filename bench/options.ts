/** The benchmark's command line: `npm run bench -- [--size small|1M,3M,10M] [--reps 3] …`. */
import { parseArgs } from 'node:util';
import { shapes as dataShapes } from './dataset.js';

const shapeNames = Object.keys(dataShapes);

export interface Size {
  readonly label: string;
  readonly attempts: number;
}

export const sizes: Record<string, Size> = {
  small: { label: 'small', attempts: 100_000 },
  '1M': { label: '1M', attempts: 1_000_000 },
  '3M': { label: '3M', attempts: 3_000_000 },
  '10M': { label: '10M', attempts: 10_000_000 },
};

export type Scenario =
  | 'floor'
  | 'daily'
  | 'baseline'
  | 'lookback'
  | 'pglite'
  | 'shards'
  | 'noindex'
  | 'history'
  | 'explain'
  | 'variants'
  | 'shapes'
  | 'ranges'
  | 'citus';
export const allScenarios: readonly Scenario[] = [
  'floor',
  'daily',
  'baseline',
  'lookback',
  'pglite',
  'shards',
  'noindex',
  'history',
  'explain',
  'variants',
  'shapes',
  'ranges',
  'citus',
];

export interface Options {
  readonly sizes: Size[];
  readonly reps: number;
  /** A prebuilt CLI to measure as it is; undefined: build one (see `ref`). */
  readonly cli: string | undefined;
  /** The git commit to build the job from; undefined: the working tree. */
  readonly ref: string | undefined;
  readonly workMem: string;
  readonly scenarios: ReadonlySet<Scenario>;
  /** Regenerate the data sets even when an identical one exists. */
  readonly fresh: boolean;
  /** Drop the benchmark databases at the end. */
  readonly drop: boolean;
  /** Replace the results block of BENCHMARKS.md. */
  readonly writeDocs: boolean;
  readonly baselineBudgetMs: number;
  readonly outDir: string;
  /** Longest wait for an idle machine before a measurement, in ms. */
  readonly maxQuietWaitMs: number;
  /** Data shapes of the `shapes` scenario (names of dataset.ts `shapes`). */
  readonly shapes: string[];
  /** Data shapes of the 36-day ranges of the `ranges` scenario. */
  readonly rangeShapes: string[];
  /** Attempts a month of the year the `ranges` scenario backfills (0: no year). */
  readonly yearRate: number;
}

const usage = `usage: npm run bench -- [options]
  --size <list>        small | 1M | 3M | 10M, comma-separated (default 1M,3M,10M)
  --reps <n>           repetitions per measurement, the median is reported (default 3)
  --only <list>        scenarios: ${allScenarios.join(', ')} (default all)
  --ref <commit>       build the job from this git commit (default: the working tree's src/)
  --cli <path>         measure this prebuilt CLI as it is (e.g. dist/cli.js) instead of building one
  --work-mem <size>    AGG_WORK_MEM of the job and the floor's work_mem (default 256MB)
  --baseline-budget <s> seconds the per-combination baseline may run per size (default 30; small 5)
  --out <dir>          plans, CSVs, PGlite directories, results (default .data/bench, git-ignored)
  --max-quiet-wait <s> wait at most this long for an idle machine before each measurement (default 90; small 30)
  --shapes <list>      data shapes of the shapes scenario: ${shapeNames.join(', ')} (default all; small: uuid,shape-a,shape-b,skewed)
  --range-shapes <list> shapes of the ranges scenario's 36-day backfill and verify (default text,uuid,shape-a,shape-b,skewed; small: uuid)
  --year-rate <n>      attempts a month of the 365-day backfill (default 1M; small 10k; 0 = none); extrapolated to 10M
  --fresh              regenerate the data sets
  --drop               drop the benchmark databases afterwards
  --write-docs / --no-write-docs   update BENCHMARKS.md (default: on unless --size small)
env: BENCH_PG_URL (default postgres://root@127.0.0.1:5432), the server; databases afd_bench_<size> are created there.
     BENCH_CITUS_URL (default CITUS_TEST_URL): a Citus coordinator database the citus scenario may overwrite; without
     either the citus scenario is skipped.`;

export function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string', default: '1M,3M,10M' },
      reps: { type: 'string', default: '3' },
      only: { type: 'string' },
      cli: { type: 'string' },
      ref: { type: 'string' },
      'work-mem': { type: 'string', default: '256MB' },
      'baseline-budget': { type: 'string' },
      fresh: { type: 'boolean', default: false },
      'max-quiet-wait': { type: 'string' },
      shapes: { type: 'string' },
      'range-shapes': { type: 'string' },
      'year-rate': { type: 'string' },
      drop: { type: 'boolean', default: false },
      'write-docs': { type: 'boolean' },
      'no-write-docs': { type: 'boolean' },
      out: { type: 'string', default: '.data/bench' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const chosen = values.size.split(',').map((s) => {
    const size = sizes[s.trim()];
    if (!size) throw new Error(`--size ${s}: use small, 1M, 3M or 10M\n${usage}`);
    return size;
  });
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive whole number\n${usage}`);
  const scenarios = new Set<Scenario>(
    values.only === undefined
      ? allScenarios
      : values.only.split(',').map((s) => {
          const name = s.trim() as Scenario;
          if (!allScenarios.includes(name)) throw new Error(`--only ${s}: use ${allScenarios.join(', ')}`);
          return name;
        }),
  );
  const onlySmall = chosen.every((s) => s.label === 'small');
  const budget = values['baseline-budget'] === undefined ? (onlySmall ? 5 : 30) : Number(values['baseline-budget']);
  const shapeList = (value: string | undefined, flag: string) =>
    value === undefined
      ? shapeNames
      : value.split(',').map((s) => {
          const name = s.trim();
          if (!shapeNames.includes(name)) throw new Error(`${flag} ${s}: use ${shapeNames.join(', ')}`);
          return name;
        });
  const rate = (value: string) => {
    const m = /^(\d+(?:\.\d+)?)([kM]?)$/.exec(value.trim());
    if (!m) throw new Error(`--year-rate ${value}: a number of attempts a month, e.g. 1M or 300k`);
    return Math.round(Number(m[1]) * (m[2] === 'M' ? 1e6 : m[2] === 'k' ? 1e3 : 1));
  };
  return {
    // --size small (CI) measures one shape of each kind of change, and the daily run on the shapes
    // of issue 23 (their rows checked against the oracle), to stay within minutes.
    shapes: shapeList(values.shapes ?? (onlySmall ? 'uuid,shape-a,shape-b,skewed' : undefined), '--shapes'),
    rangeShapes: shapeList(values['range-shapes'] ?? (onlySmall ? 'uuid' : 'text,uuid,shape-a,shape-b,skewed'), '--range-shapes'),
    yearRate: rate(values['year-rate'] ?? (onlySmall ? '10k' : '1M')),
    sizes: chosen,
    reps,
    cli: values.cli,
    ref: values.ref,
    workMem: values['work-mem'],
    scenarios,
    fresh: values.fresh,
    drop: values.drop,
    writeDocs: values['no-write-docs'] ? false : (values['write-docs'] ?? !onlySmall),
    baselineBudgetMs: budget * 1000,
    outDir: values.out,
    maxQuietWaitMs: Number(values['max-quiet-wait'] ?? (onlySmall ? 30 : 90)) * 1000,
  };
}
