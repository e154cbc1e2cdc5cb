/**
 * The container image, checked without a Docker engine: the Dockerfile copies only what exists
 * and what .dockerignore lets into the build context; its first two stages are replayed here
 * (the build stage's files copied as its COPY lines say, built and packed with `npm pack`; the
 * tarball unpacked and its production dependencies installed from the lockfile), and the result
 * runs `--help` and `--version` as the image's ENTRYPOINT would. The packed tarball also
 * installs and runs in a clean directory, as a user's `npm install` would. The registry must be
 * reachable (the npm cache makes it quick).
 */
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import { beforeAll, describe, expect, test } from 'vitest';
import { copies, entrypoint, inBuildContext, lastIn, parseDockerfile, stages, type Instruction } from '../support/dockerfile.js';
import { k8sDir, parseYaml, repoRoot } from '../support/kubernetes.js';
import { testTempDir } from '../support/resources.js';

const dockerfile: Instruction[] = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
const dockerignore = readFileSync(join(repoRoot, '.dockerignore'), 'utf8');
const stageNames = stages(dockerfile);
const buildStage = stageNames[0]!;
const packageJson = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(file: string, args: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env },
        timeout: 55_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

async function npm(args: string[], cwd: string): Promise<string> {
  const result = await run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd });
  if (result.code !== 0) throw new Error(`npm ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

const work = testTempDir('package');
let tarball = '';
let packedFiles: string[] = [];

beforeAll(async () => {
  // The build stage: its COPY lines, relative to its WORKDIR, then `npm run build` and `npm pack`.
  // node_modules is linked from this checkout instead of `npm ci` (the lockfile install is
  // replayed below, for the production dependencies that the image keeps).
  const context = join(work, 'build');
  mkdirSync(context);
  for (const copy of copies(dockerfile).filter((c) => c.stage === buildStage && c.from === undefined)) {
    for (const source of copy.sources) {
      const target =
        copy.sources.length > 1 || copy.destination.endsWith('/')
          ? join(context, copy.destination, source)
          : join(context, copy.destination);
      cpSync(join(repoRoot, source), target, { recursive: true });
    }
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(context, 'node_modules'), 'dir');
  await npm(['run', 'build'], context);
  const packed = JSON.parse(await npm(['pack', '--json', '--pack-destination', work], context)) as {
    filename: string;
    files: { path: string }[];
  }[];
  tarball = join(work, packed[0]!.filename);
  packedFiles = packed[0]!.files.map((f) => f.path);
}, 90_000);

describe('the Dockerfile', () => {
  test('is multi-stage: build, production dependencies, runtime', () => {
    expect(stageNames.length).toBeGreaterThanOrEqual(3);
    const runs = (stage: string) =>
      dockerfile
        .filter((i) => i.stage === stage && i.keyword === 'RUN')
        .map((i) => i.args)
        .join('\n');
    expect(runs(buildStage)).toMatch(/npm ci\b/);
    expect(runs(buildStage)).toMatch(/npm run build/);
    expect(runs(buildStage)).toMatch(/npm pack/);
    const depsStage = stageNames.find((s) => /npm ci\b.*--omit=dev/.test(runs(s)));
    expect(depsStage).toBeDefined();
    const runtime = stageNames.at(-1)!;
    expect(runs(runtime)).not.toMatch(/npm (ci|install)/);
    expect(
      copies(dockerfile)
        .filter((c) => c.stage === runtime)
        .map((c) => c.from),
    ).toEqual([depsStage]);
    expect(lastIn(dockerfile, runtime, 'USER')).toMatch(/^[1-9]\d*:[1-9]\d*$/); // numeric, not root
    expect(entrypoint(dockerfile).slice(-2)).toEqual(['node', `${lastIn(dockerfile, runtime, 'WORKDIR')}/dist/cli.js`]);
  });

  test('copies from the build context only paths that exist and that .dockerignore keeps', () => {
    const fromContext = copies(dockerfile).filter((c) => c.from === undefined);
    expect(fromContext.length).toBeGreaterThan(0);
    for (const copy of fromContext) {
      for (const source of copy.sources) {
        expect(existsSync(join(repoRoot, source)), `Dockerfile line ${copy.line}: ${source} exists`).toBe(true);
        expect(inBuildContext(dockerignore, source), `.dockerignore keeps ${source}`).toBe(true);
      }
    }
    expect(inBuildContext(dockerignore, 'src/program/main.ts')).toBe(true);
    expect(inBuildContext(dockerignore, 'migrations/001_features_topic_daily.sql')).toBe(true);
    for (const local of ['node_modules', 'dist/cli.js', '.git', '.data', 'test/cli.test.ts', '.env']) {
      expect(inBuildContext(dockerignore, local), `.dockerignore drops ${local}`).toBe(false);
    }
  });

  test('copies between stages only what the earlier stage makes', () => {
    for (const copy of copies(dockerfile).filter((c) => c.from !== undefined)) {
      const index = stageNames.indexOf(copy.from!);
      expect(index, `line ${copy.line}: --from=${copy.from} is an earlier stage`).toBeGreaterThanOrEqual(0);
      expect(index).toBeLessThan(stageNames.indexOf(copy.stage!));
      const made = dockerfile
        .filter((i) => i.stage === copy.from && (i.keyword === 'RUN' || i.keyword === 'WORKDIR'))
        .map((i) => i.args)
        .join('\n');
      for (const source of copy.sources)
        expect(made, `line ${copy.line}: ${copy.from} makes ${source}`).toContain(source.replace(/\/$/, ''));
    }
  });
});

describe('the packed package (what the image holds)', () => {
  test('contains the CLI, its migrations and package.json, and no sources or tests', () => {
    expect(packedFiles).toContain('package.json');
    expect(packedFiles).toContain('dist/cli.js');
    const migrations = readdirSync(join(repoRoot, 'migrations')).filter((f) => f.endsWith('.sql'));
    expect(migrations.length).toBeGreaterThan(0);
    for (const m of migrations) expect(packedFiles).toContain(`migrations/${m}`);
    expect(packedFiles.filter((f) => /^(src|test|bench|deploy|node_modules)\//.test(f))).toEqual([]);
    expect(Object.values(packageJson.bin)).toEqual(['dist/cli.js']);
  });

  test('unpacked with its lockfile, as the production-deps stage does, it has production dependencies only and runs', async () => {
    const app = join(work, 'app');
    mkdirSync(app);
    execFileSync('tar', ['-xzf', tarball, '-C', app, '--strip-components=1']);
    cpSync(join(repoRoot, 'package-lock.json'), join(app, 'package-lock.json'));
    await npm(['ci', '--omit=dev', '--ignore-scripts'], app);
    for (const dependency of Object.keys(packageJson.dependencies)) {
      expect(existsSync(join(app, 'node_modules', dependency, 'package.json')), `${dependency} installed`).toBe(true);
    }
    for (const dev of Object.keys(packageJson.devDependencies)) {
      expect(existsSync(join(app, 'node_modules', dev)), `${dev} (dev) not installed`).toBe(false);
    }

    // ENTRYPOINT is `tini -- node /app/dist/cli.js`: node and the script, from an unrelated directory.
    const help = await run(process.execPath, [join(app, 'dist/cli.js'), '--help'], { cwd: tmpdir() });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: aggregate-features-daily/);
    expect(help.stdout).toMatch(/\bmigrate\b/);
    const version = await run(process.execPath, [join(app, 'dist/cli.js'), '--version'], { cwd: tmpdir() });
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(packageJson.version);
  }, 60_000);

  test("the backfill Job's shard wrapper turns JOB_COMPLETION_INDEX into --shard i/N", async () => {
    const app = join(work, 'app');
    expect(existsSync(join(app, 'dist/cli.js')), 'the previous test installed the package').toBe(true);
    const job = parseYaml(readFileSync(join(k8sDir, 'backfill/job-backfill.yaml'), 'utf8'), 'job-backfill.yaml')[0] as unknown as IJob;
    const container = job.spec!.template.spec!.containers[0]!;
    // The command after the image's init (tini, not installed here): node, its flags, the script, `--`.
    const command = container.command!.slice(container.command!.indexOf('node'));
    const wrapper = (env: Record<string, string | undefined>, args: string[]) =>
      run(process.execPath, [...command.slice(1), ...args], { cwd: app, env });
    // `backfill` is not a command yet, so the daily command stands in: without DATABASE_URL it
    // stops with exit 2 right after validating its flags, --shard included.
    const args = ['run', '--dry-run', '--date', '2025-11-01'];

    const third = await wrapper({ JOB_COMPLETION_INDEX: '2', SHARD_COUNT: '4' }, args);
    expect(third.stderr).toMatch(/DATABASE_URL is not set/);
    expect(third.code).toBe(2);
    const passedThrough = await wrapper({ JOB_COMPLETION_INDEX: '2', SHARD_COUNT: '2000' }, args);
    expect(passedThrough.stderr).toMatch(/--shard "3\/2000" is not accepted/);
    expect(passedThrough.code).toBe(2);
    for (const env of [{ SHARD_COUNT: '4' }, { JOB_COMPLETION_INDEX: '4', SHARD_COUNT: '4' }, { JOB_COMPLETION_INDEX: '0' }]) {
      const bad = await wrapper(env, args);
      expect(bad.stderr).toMatch(/do not name a shard/);
      expect(bad.code).toBe(2);
    }
    const help = await wrapper({ JOB_COMPLETION_INDEX: '0', SHARD_COUNT: '4' }, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: aggregate-features-daily/);
  }, 60_000);

  test('installs with `npm install --omit=dev` in a clean directory and its bin runs --help and --version', async () => {
    const clean = join(work, 'clean');
    mkdirSync(clean);
    await npm(['init', '-y'], clean);
    await npm(['install', '--omit=dev', tarball], clean);
    const bin = join(clean, 'node_modules/.bin', Object.keys(packageJson.bin)[0]!);
    const help = await run(bin, ['--help'], { cwd: clean });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: aggregate-features-daily/);
    const version = await run(bin, ['--version'], { cwd: clean });
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(packageJson.version);
  }, 60_000);
});
