/**
 * The command line two ways: `runCli` runs the built CLI as a subprocess, as a user or a
 * CronJob does (for what only a process shows: its exit status, signals, a second process on
 * the same database, output nothing else could catch); `runMain` calls the same `main()` in
 * this process, with the same arguments, environment and captured output, for tests about
 * what a command does rather than about the process (no Node start-up and no PGlite start
 * in a fresh process for each call, which cost seconds of CPU each).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/program/main.js';

export const cliPath = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr lines, stderr first (the log), without empty lines. */
  readonly lines: string[];
}

const linesOf = (stdout: string, stderr: string) => `${stderr}\n${stdout}`.split('\n').filter((l) => l !== '');

/** Runs `node dist/cli.js ...args` with exactly `env` (plus PATH), never the caller's environment. */
export function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  options: { timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliPath, ...args],
      { env: { PATH: process.env.PATH, ...env }, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr, lines: linesOf(stdout, stderr) });
      },
    );
  });
}

/**
 * Runs `main(args)` in this process with exactly `env` (plus PATH), as dist/cli.js would in a
 * process of its own (which sets the process's exit code to the number returned here), and
 * collects what it writes to stdout and stderr.
 */
export async function runMain(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    env: { PATH: process.env.PATH, ...env },
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
  });
  return { code, stdout, stderr, lines: linesOf(stdout, stderr) };
}
