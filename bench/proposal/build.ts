/**
 * Builds a copy of the job outside src/ for the benchmark to measure: from the working tree or
 * from a git commit (`--ref`, so a long run measures one fixed version while others edit src/),
 * optionally with the changes proposed in bench/proposal/patches.ts (`--proposal`). Copies src/,
 * migrations/ and package.json into <outDir>/<name>, applies the proposal, and compiles with the
 * project's compiler settings. Returns the copy's cli.js, which is run exactly like dist/cli.js.
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { patches } from './patches.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = resolve(here, '..', '..');

export interface BuildRequest {
  /** A git commit (e.g. HEAD), or undefined for the working tree. */
  readonly ref: string | undefined;
  readonly proposal: boolean;
  readonly outDir: string;
}

/** Builds the requested job; returns the path of its cli.js. */
export async function buildJob(request: BuildRequest): Promise<string> {
  const dir = resolve(request.outDir, request.proposal ? 'proposal' : 'shipped');
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
  if (request.proposal) {
    for (const patch of patches) {
      const path = join(dir, 'src', patch.file);
      const text = readFileSync(path, 'utf8');
      const applies = typeof patch.from === 'string' ? text.includes(patch.from) : patch.from.test(text);
      if (!applies) {
        throw new Error(
          `the proposal's patch of src/${patch.file} no longer applies (${String(patch.from).slice(0, 60)}…): update bench/proposal/patches.ts`,
        );
      }
      // A replacement function, so a `$` in the new text is taken literally.
      writeFileSync(
        path,
        text.replace(patch.from, () => patch.to),
      );
    }
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
