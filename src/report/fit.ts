/**
 * Tables and charts that fit a terminal: a table whose widest columns are shortened (with …)
 * and whose last columns are left out when shortening is not enough, and bars and sparklines
 * drawn with Unicode block characters. Full values stay available in `--json`.
 */
import { displayValue } from '../format.js';

/** Shortens text to `width` characters, marking the cut with …. */
export function shorten(text: string, width: number): string {
  if (text.length <= width) return text;
  return width <= 1 ? '…'.slice(0, width) : `${text.slice(0, width - 1)}…`;
}

export interface FittedTable {
  readonly lines: string[];
  /** Columns left out because the table did not fit even with shortened values. */
  readonly hidden: string[];
}

/** Text wrapped at spaces into lines of at most `width` characters; continuation lines indented. */
export function wrap(text: string, width: number, indent = '    '): string[] {
  const lines: string[] = [];
  const lead = /^ */.exec(text)![0];
  let line = lead;
  for (const word of text.slice(lead.length).split(' ')) {
    const next = line === lead ? `${lead}${word}` : `${line} ${word}`;
    if (next.length <= width || line === lead || line === indent) line = next;
    else {
      lines.push(line);
      line = `${indent}${word}`;
    }
  }
  lines.push(line);
  return lines.map((l) => shorten(l, width));
}

/**
 * Rows as an aligned table at most `width` characters wide. Columns listed in `rightAlign`
 * are right-aligned (numbers). Columns listed in `shrink` (names: user_id, topic_id, error)
 * are shortened first (the widest first) to 20 characters, then trailing columns after the
 * first `keep` are left out, then names are shortened down to `minColumn` characters, and
 * last any trailing column goes.
 */
export function fitTable(
  rows: Record<string, unknown>[],
  width: number,
  options: { rightAlign?: readonly string[]; shrink?: readonly string[]; minColumn?: number; keep?: number } = {},
): FittedTable {
  if (rows.length === 0) return { lines: ['(no rows)'], hidden: [] };
  const minColumn = options.minColumn ?? 8;
  let columns = Object.keys(rows[0]!);
  const cells = new Map(columns.map((c) => [c, rows.map((r) => displayValue(r[c]))]));
  const natural = (c: string) => Math.max(c.length, ...cells.get(c)!.map((v) => v.length));
  const widths = new Map(columns.map((c) => [c, natural(c)]));
  const total = () => columns.reduce((sum, c) => sum + widths.get(c)!, 0) + 2 * (columns.length - 1);
  const hidden: string[] = [];
  const shrinkable = new Set(options.shrink ?? []);
  // Names are shortened to `softMinimum` first, then trailing columns beyond the first `keep`
  // are left out, then names are shortened to `minColumn`, then any trailing column goes.
  const shrinkTo = (floor: number): boolean => {
    const widest = columns.filter((c) => shrinkable.has(c) && widths.get(c)! > floor).sort((a, b) => widths.get(b)! - widths.get(a)!)[0];
    if (widest === undefined) return false;
    widths.set(widest, Math.max(floor, widths.get(widest)! - (total() - width)));
    return true;
  };
  const dropLast = (keep: number): boolean => {
    if (columns.length <= keep) return false;
    hidden.unshift(columns[columns.length - 1]!);
    columns = columns.slice(0, -1);
    return true;
  };
  const keep = options.keep ?? 1;
  while (total() > width) {
    if (!(shrinkTo(Math.max(minColumn, 20)) || dropLast(keep) || shrinkTo(minColumn) || dropLast(1))) break;
  }
  const right = new Set(options.rightAlign ?? []);
  const line = (values: string[]) =>
    values
      .map((v, i) => {
        const c = columns[i]!;
        const w = widths.get(c)!;
        const cut = shorten(v, w);
        return right.has(c) ? cut.padStart(w) : cut.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return {
    lines: [
      line(columns),
      columns.map((c) => '-'.repeat(widths.get(c)!)).join('  '),
      ...rows.map((_, i) => line(columns.map((c) => cells.get(c)![i]!))),
    ],
    hidden,
  };
}

const eighths = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A horizontal bar of `value / max` of `width` characters, in eighths of a character. */
export function bar(value: number, max: number, width: number): string {
  if (max <= 0 || value <= 0) return '';
  const units = Math.max(1, Math.round((value / max) * width * 8));
  return '█'.repeat(Math.floor(units / 8)) + eighths[units % 8]!;
}

const levels = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/** A sparkline of the values, oldest first: one character per value, scaled to the largest. */
export function sparkline(values: readonly number[]): string {
  const max = Math.max(0, ...values);
  return values.map((v) => (max <= 0 || v <= 0 ? '·' : levels[Math.min(7, Math.floor((v / max) * 7.999))]!)).join('');
}
