/**
 * Passwords are masked where they can appear (URLs, driver and connection errors) and nowhere
 * else. The proof is differential: the same commands run with a password P and with a control
 * password that appears nowhere, and the outputs must be equal line for line (durations aside).
 * Equal outputs mean that nothing was rewritten (a password `0` or `2019` leaves `failed=0` and
 * `since=2019-08-18` alone) and that P shows up nowhere the control does not.
 * The server trusts local connections, so any password logs in: runs succeed with each.
 * The writing run is a process of its own (`node dist/cli.js`: all it prints, Node's own
 * output included); the other commands call main() in this process, and the control's output
 * of each command is taken once, the same way.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { maskCredentials, maskPasswords } from '../../src/database/redact.js';
import { serverBackend } from '../support/backends.js';
import { runCli, runMain, type CliResult } from '../support/cli.js';
import { testTempDir } from '../support/resources.js';

const server = await serverBackend('hardening_secrets');

const randomPassword = randomBytes(48).toString('base64url').slice(0, 64);
const passwords = ['0', 'a', '2019', 'inserted', '%40', randomPassword, '@/#?:'];
const control = 'Ctl-Qz7Wx9Vb3Nm5';

/** The URL of `base` with user `root` and `password`, percent-encoded as the docs say. */
function urlWith(base: URL, password: string, overrides: { port?: string; database?: string } = {}): string {
  const url = new URL(base.toString());
  url.password = encodeURIComponent(password);
  if (overrides.port) url.port = overrides.port;
  if (overrides.database) url.pathname = `/${overrides.database}`;
  return url.toString();
}

const normalise = (text: string) => text.replace(/duration_ms=\d+/g, 'duration_ms=N');

describe('masking rewrites nothing but the secret', () => {
  test.each([
    ['0', 'connect ECONNREFUSED 127.0.0.1:5432 failed=0', 'connect ECONNREFUSED 127.0.0.1:5432 failed=0'],
    ['2019', 'since=2019-08-18 port 2019', 'since=2019-08-18 port ***'],
    ['inserted', 'inserted=3 "inserted"', 'inserted=3 "***"'],
    ['p@ss', 'postgres://u:p@ss@h/db', 'postgres://u:***@h/db'],
  ])('maskPasswords with %j', (password, text, expected) => {
    expect(maskPasswords(text, [password])).toBe(expected);
  });

  test('URL credentials and password= parameters are masked in any text, nothing else', () => {
    expect(maskCredentials('at postgres://svc:s3cret@db:5432/x and http://u:p@gw:9091 ok')).toBe(
      'at postgres://svc:***@db:5432/x and http://u:***@gw:9091 ok',
    );
    expect(maskCredentials('host=db password=s3cret user=svc')).toBe('host=db password=*** user=svc');
    expect(maskCredentials('since=2019-08-18, failed=0, user=a@b')).toBe('since=2019-08-18, failed=0, user=a@b');
  });
});

describe.runIf(server)('the job with each password, against the server', () => {
  const base = new URL(server?.url ?? 'postgres://x@localhost/x');
  const csv = join(testTempDir('secrets'), 'attempts.csv');
  const lines = ['student_id,topic_id,completed_at,correct,response_time_ms,hint_used'];
  for (let day = 10; day <= 25; day++) {
    lines.push(`s1,algebra,2019-08-${day}T10:00:00Z,true,1000,false`, `s2,geometry,2019-08-${day}T11:00:00Z,false,2019,true`);
    lines.push(`s1,algebra,2019-09-${day}T10:00:00Z,false,500,false`);
  }
  writeFileSync(csv, lines.join('\n') + '\n');

  beforeAll(async () => {
    const env = { DATABASE_URL: server!.url };
    expect((await runMain(['migrate'], env)).code).toBe(0);
    expect((await runMain(['import-attempts', csv], env)).code).toBe(0);
    expect((await runMain(['--date', '2019-08-25'], env)).code).toBe(0);
  });

  /** Scenario `i` run as it is compared: the first as a process, the others in this process. */
  const run = (i: number, args: string[], env: Record<string, string>) => (i === 0 ? runCli(args, env) : runMain(args, env));
  const controls = new Map<number, Promise<CliResult>>();
  /** The control's output of scenario `i`, the same for every password: taken once. */
  const controlOutput = (i: number) => {
    if (!controls.has(i)) controls.set(i, run(i, scenarios(control)[i]![1], scenarios(control)[i]![2]));
    return controls.get(i)!;
  };

  /** The commands compared: a writing run (nothing left to change), a dry run, two connection failures. */
  const scenarios = (password: string): [string, string[], Record<string, string>][] => [
    ['run', ['--date', '2019-08-25'], { DATABASE_URL: urlWith(base, password) }],
    ['dry run', ['--date', '2019-09-25', '--dry-run'], { DATABASE_URL: urlWith(base, password) }],
    ['unreachable', ['--date', '2019-08-25'], { DATABASE_URL: urlWith(base, password, { port: '1' }), AGG_CONNECT_ATTEMPTS: '1' }],
    ['no such database', ['--date', '2019-08-25'], { DATABASE_URL: urlWith(base, password, { database: 'afd_no_such_db' }) }],
  ];

  test.each(passwords.map((p) => [p]))('password %j: the output equals the control run', async (password) => {
    const actual = scenarios(password);
    for (let i = 0; i < actual.length; i++) {
      const [what, args, env] = actual[i]!;
      const mine = await run(i, args, env);
      const theirs = await controlOutput(i);
      console.log(`[secrets] password ${JSON.stringify(password)}, ${what}: exit ${mine.code}\n${mine.stderr.trimEnd()}`);
      expect(mine.code, what).toBe(theirs.code);
      expect(normalise(mine.stderr + mine.stdout), what).toBe(normalise(theirs.stderr + theirs.stdout));
      // Equal to the control, so P is printed only where it is ordinary text (`2019` of a date);
      // a password that is no ordinary text is not printed at all.
      if (password === randomPassword || password === '@/#?:') {
        expect(mine.stderr + mine.stdout).not.toContain(password);
        expect(mine.stderr + mine.stdout).not.toContain(encodeURIComponent(password));
      }
    }
  });

  test('a password with unencoded @ / # ? : is refused (exit 2) without printing it', async () => {
    for (const url of [
      `postgres://root:@/#?:@${base.host}${base.pathname}`,
      `postgres://root:a/b@${base.host}${base.pathname}`,
      `postgres://root:2019/x@${base.host}${base.pathname}`,
    ]) {
      const result = await runCli(['--date', '2019-08-25'], { DATABASE_URL: url });
      console.log(`[secrets] ${url.replace(/:[^:]*@(?=[^@]*$)/, ':<password>@')}: exit ${result.code}\n${result.stderr.trimEnd()}`);
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).not.toMatch(/@\/#\?:|a\/b|2019\/x/);
    }
  });
});
