/** How a database value is shown in log lines and tables: NULL for null, text otherwise. */
export function displayValue(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return value.toString();
  return JSON.stringify(value);
}

// C0 and C1 control characters (newline, carriage return, ESC that starts an ANSI sequence, …),
// the Unicode line and paragraph separators, and the bidirectional controls that reorder text.
const beyondC0 = '\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069';
const invisible = new RegExp(`[\\u0000-\\u001f${beyondC0}]`, 'g');
// The same but tab, newline and carriage return: JSON's whitespace outside strings, escaped by JSON.stringify inside them.
const invisibleInJson = new RegExp(`[\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f${beyondC0}]`, 'g');
const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * A text with its control characters written out (`\n`, `\x1b`, `\u202e`), so that a value
 * printed on a line (an id, a topic, an error text, a path) can neither start a new line of its
 * own, nor colour or clear the terminal, nor reorder what follows: one event stays one line.
 */
export function visible(text: string): string {
  return text.replace(invisible, (c) => {
    const code = c.charCodeAt(0);
    return named[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
  });
}

/**
 * A value with every text in it (strings at any depth of arrays and plain objects) passed
 * through `visible`: a report or an explanation made inert once, before it is laid out, so the
 * widths it is fitted to are those of what is printed. Numbers, booleans, null and dates stay.
 */
export function visibleDeep<T>(value: T): T {
  const walk = (v: unknown): unknown =>
    typeof v === 'string'
      ? visible(v)
      : Array.isArray(v)
        ? v.map(walk)
        : typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [visible(k), walk(x)]))
          : v;
  return walk(value) as T;
}

/**
 * `value` as JSON (JSON.stringify, `indent` spaces) in which the characters `visible` writes
 * out are `\uXXXX` escapes: JSON.stringify escapes the C0 controls but leaves DEL, the C1
 * controls, the line separators and the bidirectional controls as they are, and a terminal acts
 * on them. Still valid JSON that parses to the same values: outside strings JSON has none of
 * these characters.
 */
export function inertJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(invisibleInJson, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Rows as an aligned text table (header, rule, rows); NULL printed as NULL. `columns` names them when there may be no rows. */
export function formatTable(rows: Record<string, unknown>[], columns: string[] = rows.length === 0 ? [] : Object.keys(rows[0]!)): string[] {
  if (columns.length === 0) return ['(no rows)'];
  const cells = rows.map((row) => columns.map((c) => visible(displayValue(row[c]))));
  const header = columns.map(visible);
  const widths = header.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)];
}

/** A duration for people: 850ms, 12s, 5m30s, 2h05m. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}
