/**
 * The documentation matches the code and stands alone: the README's configuration table lists
 * exactly the variables config.ts parses, with the defaults it uses; any other table row in
 * docs/ that names a variable gives the same default; every file the docs cite exists. The
 * README stays a short front door that shows the commands CI runs and names every command and
 * flag; docs/development.md lists every variable the tests read.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { variables } from '../src/config/index.js';
import { runMain } from './support/cli.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const tracked = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
const docs = tracked.filter((f) => f === 'README.md' || f === 'BENCHMARKS.md' || /^docs\/.*\.md$/.test(f));
const read = (file: string) => readFileSync(`${root}/${file}`, 'utf8');

interface Row {
  readonly names: string[];
  readonly default: string;
  readonly line: number;
}

/** The rows of the Markdown table that starts right after `heading` (the first table below it). */
function configurationTable(markdown: string, heading: string): { rows: Row[]; after: string } {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.trim() === heading);
  expect(start, `heading ${heading}`).toBeGreaterThanOrEqual(0);
  const first = lines.findIndex((l, i) => i > start && l.startsWith('|'));
  const rows: Row[] = [];
  let i = first + 2; // header and rule
  for (; i < lines.length && lines[i]!.startsWith('|'); i++) rows.push(parseRow(lines[i]!, i + 1));
  return { rows, after: lines.slice(i, i + 3).join('\n') };
}

function parseRow(line: string, number: number): Row {
  const cells = line.split('|').slice(1, -1);
  return {
    names: [...(cells[0] ?? '').matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!),
    default: (cells[1] ?? '').trim(),
    line: number,
  };
}

/** What a table's default cell must start with for a variable: its default in backticks, or a dash. */
function expectedDefault(name: string): string {
  const variable = variables.find((v) => v.name === name);
  return variable?.default === undefined ? '—' : `\`${variable.default}\``;
}

describe('the README configuration table and the config definitions', () => {
  const { rows, after } = configurationTable(read('README.md'), '## Configuration');

  test('name the same variables, each once, in one unbroken table', () => {
    const names = rows.flatMap((r) => r.names);
    expect(names).toEqual(variables.map((v) => v.name));
    // A blank line inside the table would leave the rows after it as loose text.
    expect(after).not.toMatch(/^\s*\n\|/);
    expect(rows.every((r) => r.names.length === 1)).toBe(true);
  });

  test('give the same defaults', () => {
    for (const row of rows) {
      const name = row.names[0]!;
      expect(row.default.startsWith(expectedDefault(name)), `README.md:${row.line} ${name} default ${row.default}`).toBe(true);
    }
  });
});

describe('every doc', () => {
  test.each(docs.filter((d) => d !== 'README.md'))('%s: a table row naming a variable gives its default', (doc) => {
    const known = new Set(variables.map((v) => v.name));
    read(doc)
      .split('\n')
      .forEach((line, i) => {
        if (!line.startsWith('|')) return;
        const row = parseRow(line, i + 1);
        if (row.names.length !== 1 || !known.has(row.names[0]!) || !/^`[A-Z]/.test(line.split('|')[1]!.trim())) return;
        const cell = row.default.replace(/^none\b.*/, '—');
        expect(cell.startsWith(expectedDefault(row.names[0]!)), `${doc}:${row.line} ${row.names[0]} default ${row.default}`).toBe(true);
      });
  });

  // Names that look like files but are not files of the repository: build output and placeholders.
  const notFiles = [/^dist\//, /^\/app\/dist\//, /^cli\.js$/, /^FILE\.csv$/, /^Node\.js$/, /^[\w-]+\.prom$/, /^path\/to\//];

  test.each(docs)('%s cites only files that are in the repository', (doc) => {
    const cited = new Set<string>();
    const text = read(doc);
    for (const m of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) if (!/^[a-z]+:/.test(m[1]!)) cited.add(m[1]!);
    for (const m of text.matchAll(/[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.(?:md|ts|sql|js|json|ya?ml|sh|csv|prom|mjs)\b/g)) cited.add(m[0]);
    const missing = [...cited].filter((file) => {
      const path = file.replace(/^\.\//, '').replace(/\/$/, '');
      if (notFiles.some((p) => p.test(path))) return false;
      const dir = doc.includes('/') ? doc.slice(0, doc.lastIndexOf('/') + 1) : '';
      const relative = posix.normalize(dir + path); // a link from docs/ to ../README.md
      return !tracked.some((t) => t === path || t === relative || t.startsWith(`${path}/`) || t.endsWith(`/${path}`));
    });
    expect(missing, `${doc} cites files that are not in the repository`).toEqual([]);
  });

  test.each(docs)('%s links only to headings that exist', (doc) => {
    const dir = doc.includes('/') ? doc.slice(0, doc.lastIndexOf('/') + 1) : '';
    const broken = [...read(doc).matchAll(/\]\(([^)#\s]*)#([^)\s]+)\)/g)]
      .map((m) => ({ file: m[1] === '' ? doc : posix.normalize(dir + m[1]!), anchor: m[2]! }))
      .filter(({ file }) => file.endsWith('.md'))
      .filter(({ file, anchor }) => !anchors(read(file)).has(anchor))
      .map(({ file, anchor }) => `${file}#${anchor}`);
    expect(broken).toEqual([]);
  });

  test.each(docs)('%s does not cite SPEC.md, issues or the shared workspace', (doc) => {
    expect(read(doc)).not.toMatch(/SPEC(\.md)?\s*§|\bSPEC\.md\b|\bissue \d+|\/work\/shared/);
  });
});

/** The anchors GitHub gives a Markdown file's headings (lower case, punctuation dropped, spaces as -, repeats numbered). */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6} (.+)$/.exec(line);
    if (!heading) continue;
    const slug = heading[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

describe('the README is the front door', () => {
  const readme = read('README.md');

  test('at most 300 lines', () => {
    expect(readme.trimEnd().split('\n').length).toBeLessThanOrEqual(300);
  });

  test('shows the demo and the test command that .ci/run relies on', () => {
    expect(readme).toMatch(/^npm ci && npm run demo$/m);
    expect(readme).toMatch(/^npm ci && TEST_DATABASE_URL=postgres:\/\/root@127\.0\.0\.1:5432\/test npm test$/m);
  });

  test("names every command in 'Commands in brief', each with every flag its help lists", async () => {
    const start = readme.indexOf('## Commands in brief');
    expect(start).toBeGreaterThanOrEqual(0);
    const block = readme.slice(start).split('```')[1]!;
    const usage = (command: string) =>
      block.split('\n').find((line) => line.startsWith(`aggregate-features-daily ${command === 'run' ? '[run]' : command}`));
    const help = await runMain(['--help']);
    const commands = [...help.stdout.slice(help.stdout.indexOf('Commands:')).matchAll(/^ {2}([a-z][a-z-]*)/gm)]
      .map((m) => m[1]!)
      .filter((c) => c !== 'help');
    expect(commands).toEqual(expect.arrayContaining(['run', 'backfill', 'verify', 'report', 'explain', 'sql', 'migrate', 'demo']));
    for (const command of commands) {
      const line = usage(command);
      expect(line, `README names ${command}`).toBeDefined();
      const flags = [...(await runMain([command, '--help'])).stdout.matchAll(/^ {2}(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1]!);
      // --lookback-days and --timezone override the variables of the configuration table.
      const own = flags.filter((f) => !['--help', '--version', '--lookback-days', '--timezone'].includes(f));
      expect(
        own.filter((flag) => !new RegExp(`${flag}\\b`).test(line!)),
        `README's ${command} line`,
      ).toEqual([]);
    }
  });
});

describe('docs/development.md', () => {
  test('lists every variable the tests read', () => {
    const table = read('docs/development.md')
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .map((l) => /^\| `([A-Z_]+)/.exec(l)?.[1]);
    const files = readdirSync(`${root}/test`, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    const used = new Set(files.flatMap((f) => [...read(`test/${f}`).matchAll(/process\.env\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!)));
    for (const common of ['PATH', 'HOME']) used.delete(common);
    expect([...used].filter((name) => !table.includes(name)).sort()).toEqual([]);
  });
});
