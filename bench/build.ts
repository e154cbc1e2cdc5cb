/**
 * Builds a copy of the job outside src/ for the benchmark to measure: from the working tree or
 * from a git commit (`--ref`, so a long run measures one fixed version while others edit src/).
 * Copies src/, migrations/ and package.json into <outDir>/job and compiles them with the
 * project's compiler settings. Returns the copy's cli.js, which is run exactly like dist/cli.js.
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = resolve(here, '..');

export interface BuildRequest {
  /** A git commit (e.g. HEAD), or undefined for the working tree. */
  readonly ref: string | undefined;
  readonly outDir: string;
}

/** Builds the requested job; returns the path of its cli.js. */
export async function buildJob(request: BuildRequest): Promise<string> {
  const dir = resolve(request.outDir, 'job');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  if (request.ref === undefined) {
    cpSync(join(root, 'src'), join(dir, 'src'), { recursive: true });
    cpSync(join(root, 'migrations'), join(dir, 'migrations'), { recursive: true });
    copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
  } else {
    const archive = execFileSync('git', ['archive', '--format=tar', request.ref, 'src', 'migrations', 'package.json'], {
      cwd: root,
      maxBuffer: 1 << 28,
    });
    execFileSync('tar', ['-x', '-C', dir], { input: archive });
  }
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify(
      {
        extends: relative(dir, join(root, 'tsconfig.json')),
        compilerOptions: { rootDir: 'src', outDir: 'dist', sourceMap: false },
        include: ['src'],
      },
      null,
      2,
    ),
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  await new Promise<void>((done, fail) => {
    const child = spawn(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', fail);
    child.on('close', (code) =>
      code === 0 ? done() : fail(new Error(`building the job (${request.ref ?? 'working tree'}) failed:\n${output}`)),
    );
  });
  return join(dir, 'dist', 'cli.js');
}

/** The commit a build is from, for the report. */
export function describeSource(ref: string | undefined): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', ref ?? 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    if (ref !== undefined) return `commit ${commit}`;
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'migrations'], { cwd: root, encoding: 'utf8' }).trim() !== '';
    return `the working tree at commit ${commit}${dirty ? ' (with uncommitted changes in src/)' : ''}`;
  } catch {
    return 'an unknown commit';
  }
}
