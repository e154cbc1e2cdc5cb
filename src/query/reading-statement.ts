/**
 * Whether a statement given to `sql` is one statement of the reading kinds, decided before it
 * is sent: it is read as PostgreSQL's lexer reads it (comments, '…' and E'…' strings,
 * $tag$…$tag$ bodies, "quoted" names), and only its words outside strings and comments count.
 *
 * Refused: anything that does not start with select, with, values, table, or explain of one of
 * them; a second statement; the words that write or lock inside one (insert, update, delete,
 * merge, copy, select … into, for update / for share); and the functions through which a
 * statement could take back the privileges `sql` dropped (set_config: `role`,
 * `session_authorization`) or run a query text of its own (query_to_xml, ts_stat, dblink…),
 * also when named inside a string. The read-only transaction and the reader role stay the
 * bounds that hold whatever this check misses; this one makes the refusal early and clear.
 */
import { ConfigError } from '../errors.js';

const readingKinds = new Set(['select', 'with', 'values', 'table']);

/** Words that write or lock, with why, as a reading statement never needs them outside a string. */
const writingWords: Record<string, string> = {
  insert: 'INSERT writes',
  update: 'UPDATE writes (and FOR UPDATE locks rows)',
  delete: 'DELETE writes',
  merge: 'MERGE writes',
  copy: 'COPY reads or writes server files and runs programs',
  into: 'SELECT … INTO creates a table',
  share: 'FOR SHARE locks rows',
};

/** Functions that could undo the role switch or run a query text the check never saw. */
const escapingFunctions = [/^set_config$/, /^query_to_xml/, /^cursor_to_xml/, /^ts_stat$/, /^ts_rewrite$/, /^dblink/];

interface Token {
  /** word: an unquoted word, lower-cased; name: a "quoted" name as written; symbol: one character. */
  readonly kind: 'word' | 'name' | 'symbol' | 'parameter';
  readonly text: string;
}

const refuse = (message: string) => new ConfigError(`${message}; nothing was sent to the database`);

/** The tokens of `statement` outside comments and strings; throws ConfigError on an unterminated one. */
function tokenize(statement: string): { tokens: Token[]; statements: number } {
  const tokens: Token[] = [];
  let statements = 0;
  let pendingStatement = false;
  let i = 0;
  const n = statement.length;
  const unterminated = (what: string) => refuse(`sql: the statement ends inside ${what}`);
  const push = (token: Token) => {
    if (!pendingStatement) {
      statements += 1;
      pendingStatement = true;
    }
    tokens.push(token);
  };
  while (i < n) {
    const c = statement[i]!;
    const next = statement[i + 1];
    if (/\s/.test(c)) {
      i += 1;
    } else if (c === '-' && next === '-') {
      const end = statement.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (depth > 0) {
        if (i >= n) throw unterminated('a /* comment */');
        const step = statement.startsWith('/*', i) ? 1 : statement.startsWith('*/', i) ? -1 : 0;
        depth += step;
        i += step === 0 ? 1 : 2;
      }
    } else if (c === "'") {
      const backslashes = /[eE]$/.test(statement.slice(0, i)) && !/[\w$]/.test(statement[i - 2] ?? ' ');
      i += 1;
      for (;;) {
        if (i >= n) throw unterminated('a quoted string');
        if (backslashes && statement[i] === '\\') i += 2;
        else if (statement[i] === "'" && statement[i + 1] === "'") i += 2;
        else if (statement[i] === "'") break;
        else i += 1;
      }
      i += 1;
      push({ kind: 'symbol', text: "'" });
    } else if (c === '"') {
      const quoted = /^"((?:[^"]|"")*)"/.exec(statement.slice(i));
      if (quoted === null) throw unterminated('a quoted name');
      i += quoted[0].length;
      push({ kind: 'name', text: quoted[1]!.replace(/""/g, '"') });
    } else if (c === '$' && next !== undefined && /\d/.test(next)) {
      const digits = /^\$\d+/.exec(statement.slice(i))![0];
      push({ kind: 'parameter', text: digits });
      i += digits.length;
    } else if (c === '$' && /^\$([A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$/.test(statement.slice(i))) {
      const tag = /^\$([A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$/.exec(statement.slice(i))![0];
      const end = statement.indexOf(tag, i + tag.length);
      if (end < 0) throw unterminated(`a ${tag}…${tag} string`);
      i = end + tag.length;
      push({ kind: 'symbol', text: "'" });
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      const word = /^[A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*/.exec(statement.slice(i))![0];
      i += word.length;
      if (/^u&$/i.test(word + (statement[i] ?? '')) && /['"]/.test(statement[i + 1] ?? '')) {
        throw refuse('sql does not take U&"…" or U&\'…\' (Unicode escapes): write the characters themselves');
      }
      push({ kind: 'word', text: word.toLowerCase() });
    } else if (c === ';') {
      pendingStatement = false;
      i += 1;
    } else {
      push({ kind: 'symbol', text: c });
      i += 1;
    }
  }
  return { tokens, statements };
}

/**
 * Throws ConfigError (exit 2) unless `statement` is one reading statement: see the module
 * comment for what is refused. Runs before anything is sent to the database.
 */
export function checkReadingStatement(statement: string): void {
  if (statement.trim() === '') throw new ConfigError('sql needs a statement, e.g. sql "select count(*) from features_topic_daily"');
  const { tokens, statements } = tokenize(statement);
  if (statements === 0) throw new ConfigError('sql needs a statement, e.g. sql "select count(*) from features_topic_daily"');
  if (statements > 1) throw refuse('sql runs one statement at a time: remove the extra statements');
  if (tokens.some((t) => t.kind === 'parameter')) {
    throw refuse('sql takes no parameters ($1, $2 …): write the values into the statement');
  }
  const kind = statementKind(tokens);
  if (kind === undefined || !readingKinds.has(kind)) {
    throw refuse(
      `sql runs read-only statements only: one select, with, values, table, or explain of one of them, and ${JSON.stringify(kind ?? tokens[0]?.text ?? '')} is none`,
    );
  }
  for (const token of tokens) {
    if (token.kind === 'word' && token.text in writingWords) {
      throw refuse(
        `sql runs read-only statements only: ${writingWords[token.text]} (a column of that name: double-quote it, "${token.text}")`,
      );
    }
    const name = token.kind === 'word' || token.kind === 'name' ? token.text.toLowerCase() : '';
    if (escapingFunctions.some((f) => f.test(name))) throw refuse(escapingMessage(name));
  }
  // A function name inside a string is a query text for a function that runs one.
  if (/set_config/i.test(statement)) throw refuse(escapingMessage('set_config'));
}

function escapingMessage(name: string): string {
  return `sql does not run ${name}(): it could take back the privileges sql dropped (set_config of role) or run a query text of its own`;
}

/** The first word of the statement after leading parentheses; for explain, the first word of what it explains. */
function statementKind(tokens: readonly Token[]): string | undefined {
  let i = 0;
  while (tokens[i]?.kind === 'symbol' && tokens[i]!.text === '(') i += 1;
  const first = tokens[i];
  if (first?.kind !== 'word') return undefined;
  if (first.text !== 'explain') return first.text;
  i += 1;
  if (tokens[i]?.kind === 'symbol' && tokens[i]!.text === '(') {
    let depth = 0;
    do {
      const t = tokens[i];
      if (t === undefined) return undefined;
      if (t.kind === 'symbol' && t.text === '(') depth += 1;
      if (t.kind === 'symbol' && t.text === ')') depth -= 1;
      i += 1;
    } while (depth > 0);
  } else {
    while (tokens[i]?.kind === 'word' && ['analyze', 'analyse', 'verbose'].includes(tokens[i]!.text)) i += 1;
  }
  while (tokens[i]?.kind === 'symbol' && tokens[i]!.text === '(') i += 1;
  const target = tokens[i];
  return target?.kind === 'word' ? target.text : undefined;
}
