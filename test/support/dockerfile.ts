/**
 * Just enough of the Dockerfile and .dockerignore formats to check, without a Docker engine,
 * what an image build would copy: instructions with their stage, COPY sources, and whether the
 * build context (after .dockerignore) holds a path.
 */

export interface Instruction {
  readonly keyword: string;
  /** The instruction's text after the keyword, continuation lines joined. */
  readonly args: string;
  /** The stage's `AS` name (or its index, as a string, when unnamed); undefined before the first FROM. */
  readonly stage: string | undefined;
  readonly line: number;
}

export interface Copy {
  readonly from: string | undefined;
  readonly sources: string[];
  readonly destination: string;
  readonly stage: string | undefined;
  readonly line: number;
}

/** Splits a Dockerfile into instructions (comments dropped, `\` continuations joined). */
export function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let stage: string | undefined;
  let stageCount = 0;
  let pending = '';
  let pendingLine = 0;
  text.split('\n').forEach((raw, i) => {
    const trimmed = raw.trim();
    if (pending === '' && (trimmed === '' || trimmed.startsWith('#'))) return;
    if (pending !== '' && trimmed.startsWith('#')) return;
    if (pending === '') pendingLine = i + 1;
    if (trimmed.endsWith('\\')) {
      pending += trimmed.slice(0, -1) + ' ';
      return;
    }
    const whole = (pending + trimmed).trim();
    pending = '';
    const match = /^(\S+)\s*(.*)$/s.exec(whole);
    if (!match) return;
    const keyword = match[1]!.toUpperCase();
    const args = match[2]!.trim();
    if (keyword === 'FROM') {
      const as = /\s+AS\s+(\S+)\s*$/i.exec(args);
      stage = as?.[1] ?? String(stageCount);
      stageCount++;
    }
    instructions.push({ keyword, args, stage, line: pendingLine });
  });
  return instructions;
}

/** The stages in order, by name. */
export function stages(instructions: Instruction[]): string[] {
  return instructions.filter((i) => i.keyword === 'FROM').map((i) => i.stage!);
}

/** The COPY instructions, with `--from` and the source paths separated from the destination. */
export function copies(instructions: Instruction[]): Copy[] {
  return instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => {
      let words: string[];
      const flags: string[] = [];
      let rest = i.args;
      for (let flag = /^--\S+\s+/.exec(rest); flag; flag = /^--\S+\s+/.exec(rest)) {
        flags.push(flag[0].trim());
        rest = rest.slice(flag[0].length);
      }
      if (rest.startsWith('[')) words = JSON.parse(rest) as string[];
      else words = rest.split(/\s+/);
      const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
      return { from, sources: words.slice(0, -1), destination: words[words.length - 1]!, stage: i.stage, line: i.line };
    });
}

/** The exec-form ENTRYPOINT of the last stage (the image's). */
export function entrypoint(instructions: Instruction[]): string[] {
  const last = instructions.filter((i) => i.keyword === 'ENTRYPOINT').at(-1);
  if (!last?.args.startsWith('[')) throw new Error('the image needs an exec-form ENTRYPOINT (JSON array)');
  return JSON.parse(last.args) as string[];
}

/** The value of the last `keyword` instruction in `stage` (e.g. WORKDIR, USER). */
export function lastIn(instructions: Instruction[], stage: string, keyword: string): string | undefined {
  return instructions.filter((i) => i.stage === stage && i.keyword === keyword).at(-1)?.args;
}

function globToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      out += '.*';
      i++;
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/**
 * Whether `.dockerignore` keeps `path` (relative to the context) in the build context. As in
 * Docker, a pattern that matches a parent directory matches everything below it, a `!` pattern
 * re-includes, and the last matching pattern wins.
 */
export function inBuildContext(dockerignore: string, path: string): boolean {
  const rules = dockerignore
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negated = l.startsWith('!');
      const pattern = (negated ? l.slice(1) : l).replace(/^\/+|\/+$/g, '');
      return { negated, regexp: globToRegExp(pattern) };
    });
  const parts = path.replace(/^\.\/|\/+$/g, '').split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let included = true;
  for (const rule of rules) {
    if (candidates.some((candidate) => rule.regexp.test(candidate))) included = rule.negated;
  }
  return included;
}
