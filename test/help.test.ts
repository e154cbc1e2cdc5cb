/**
 * What the command line says about itself: each command's help lists the flags that command
 * takes (no --lookback-days where no window is computed), defaults as typed values, every
 * command in the listing, and a flag a command does not know named as unknown, with the flag
 * meant, before a required flag is reported missing. No database needed.
 */
import { describe, expect, test } from 'vitest';
import { runMain } from './support/cli.js';

const env = { DATABASE_URL: 'postgres://x@127.0.0.1:1/db' };

/** The long flags a command's help lists under "Options:" (not the global ones). */
async function flagsOf(command: string): Promise<string[]> {
  const help = await runMain([command, '--help']);
  expect(help.code).toBe(0);
  const own = help.stdout.split('Global Options:')[0]!.split('Options:')[1] ?? '';
  return [...own.matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]!);
}

describe('help', () => {
  test('the listing names every command, run included', async () => {
    const help = await runMain(['--help']);
    for (const command of ['run', 'backfill', 'verify', 'report', 'explain', 'sql', 'migrate', 'demo', 'import-attempts']) {
      expect(help.stdout).toMatch(new RegExp(`^ {2}${command} `, 'm'));
    }
    // The program itself takes no setting flags: they belong to the commands they change.
    expect(help.stdout.split('Commands:')[0]).not.toMatch(/--lookback-days|--timezone/);
  });

  test.each([
    ['run', ['--lookback-days', '--timezone'], []],
    ['verify', ['--lookback-days', '--timezone'], []],
    ['backfill', ['--timezone', '--progress-interval'], ['--lookback-days']],
    ['report', ['--timezone', '--limit'], ['--lookback-days']],
    ['explain', ['--timezone'], ['--lookback-days']],
    ['sql', [], ['--lookback-days', '--timezone']],
    ['migrate', [], ['--lookback-days', '--timezone']],
    ['demo', [], ['--lookback-days', '--timezone']],
    ['import-attempts', [], ['--lookback-days', '--timezone']],
  ])('%s --help lists its own flags only', async (command, present, absent) => {
    const flags = await flagsOf(command);
    for (const flag of present) expect(flags, `${command} ${flag}`).toContain(flag);
    for (const flag of absent) expect(flags, `${command} ${flag}`).not.toContain(flag);
    const all = (await runMain([command, '--help'])).stdout;
    for (const flag of absent) expect(all, `${command} ${flag}`).not.toContain(flag);
  });

  test('defaults print as the values they are: (default: 30), not (default: "30")', async () => {
    const expected: [string, RegExp][] = [
      ['run', /--max-catch-up-days <n>[^]*?\(default: 30\)/],
      ['backfill', /--max-days <n>[^]*?\(default: 366\)/],
      ['backfill', /--progress-interval <seconds>[^]*?\(default: 10\)/],
      ['verify', /--limit <n>[^]*?\(default: 20\)/],
      ['report', /--days <n>[^]*?\(default: 7\)/],
      ['report', /--limit <n>[^]*?\(default: 10\)/],
      ['demo', /--students <n>[^]*?\(default: 2500\)/],
    ];
    for (const [command, pattern] of expected) {
      const help = (await runMain([command, '--help'])).stdout;
      expect(help, command).toMatch(pattern);
      expect(help, command).not.toMatch(/\(default: "\d+"\)/);
    }
  });
});

describe('flags a command does not know', () => {
  test.each([
    [['backfill', '--start', '2025-01-01'], "unknown option '--start' for backfill — did you mean --from?"],
    [['backfill', '--from', '2025-01-01', '--end', '2025-01-02'], "unknown option '--end' for backfill — did you mean --to?"],
    [['backfill', '--form', '2025-01-01', '--to', '2025-01-02'], "unknown option '--form' for backfill — did you mean --from?"],
    [['report', '--lookback-days', '3'], "unknown option '--lookback-days' for report"],
    [['sql', '--timezone', 'UTC', 'select 1'], "unknown option '--timezone' for sql"],
    [['verify', '--since', '2025-01-01'], "unknown option '--since' for verify — did you mean --from?"],
    [['explain', '--user', 'u', '--topic', 't', '--day', '2025-01-01'], "unknown option '--day' for explain — did you mean --date?"],
  ])('%j is named as unknown (exit 2)', async (args, message) => {
    const result = await runMain(args, env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`error: ${message}`);
    expect(result.stderr).not.toMatch(/required option/);
  });

  test('a required flag that is really missing is still reported as missing', async () => {
    const result = await runMain(['backfill', '--from', '2025-01-01'], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/required option '--to <YYYY-MM-DD>' not specified/);
  });

  test('a bad number names its flag (parsed when read)', async () => {
    for (const [args, message] of [
      [['report', '--limit', 'x'], '--limit "x" is not accepted: use a whole number from 0 to 1000'],
      [['demo', '--students', '0'], '--students "0" is not accepted: use a whole number from 1 to 100000'],
      [['run', '--max-catch-up-days', '400'], '--max-catch-up-days "400" is not accepted: use a whole number from 0 to 366'],
    ] as const) {
      const result = await runMain([...args], env);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`[ERROR] ${message}`);
    }
  });
});
