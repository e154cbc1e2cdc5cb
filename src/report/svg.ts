/**
 * Bar charts as inline SVG text, for the report page. Hand-written on purpose: the page must
 * open without network access and without a script, and four bar charts need a few dozen
 * lines of SVG, not a charting library and its bundle (chart.js draws on a canvas with a
 * script; @observablehq/plot needs d3 and a DOM to render). Every value is escaped; every bar
 * carries a <title> so hovering shows its exact value.
 */
import { visible } from '../format.js';

/**
 * Escapes text for HTML and SVG content and attribute values; its control and bidirectional
 * characters are written out first (`visible`), so an id cannot reorder the text of the page.
 */
export function escapeXml(text: string): string {
  return visible(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export interface Bar {
  /** Label under the bar (shown for some bars when there are many). */
  readonly label: string;
  /** A second line under the label, e.g. the time under a command's name. */
  readonly sublabel?: string;
  readonly value: number;
  /** Text of the bar's tooltip. */
  readonly title: string;
  /** Fill colour; default the chart's. */
  readonly color?: string;
}

export interface BarChart {
  /** Identifies the chart in the page (data-chart), e.g. "coverage-users". */
  readonly id: string;
  readonly bars: readonly Bar[];
  /** The top of the value axis; default the largest value. */
  readonly max?: number;
  /** How axis values are written, e.g. as a percentage. */
  readonly format?: (value: number) => string;
  readonly color?: string;
  /** Width of the drawing in px (default 560, half a row of the page; 1120 for a whole row). */
  readonly width?: number;
}

const halfRow = 560;
const height = 220;
const left = 56;
const bottom = 40;
const top = 12;

/** A bar chart as an <svg> element that scales to its container's width. */
export function barChart(chart: BarChart): string {
  const format = chart.format ?? ((v: number) => (Number.isInteger(v) ? v.toString() : v.toFixed(1)));
  const max = Math.max(chart.max ?? 0, ...chart.bars.map((b) => b.value), 1e-9);
  const width = chart.width ?? halfRow;
  const plotWidth = width - left - 8;
  const plotHeight = height - top - bottom;
  // At least 8 slots, so two bars are not each half the chart wide.
  const step = plotWidth / Math.max(8, chart.bars.length);
  const y = (v: number) => top + plotHeight - (v / max) * plotHeight;
  const parts: string[] = [];
  for (const tick of [0, max / 2, max]) {
    parts.push(
      `<line class="grid" x1="${left}" x2="${width - 8}" y1="${y(tick).toFixed(1)}" y2="${y(tick).toFixed(1)}"/>`,
      `<text class="tick" x="${left - 6}" y="${(y(tick) + 4).toFixed(1)}" text-anchor="end">${escapeXml(format(tick))}</text>`,
    );
  }
  // As many labels under the bars as fit side by side (11 px text, about 7 px a character, 8 px
  // apart), always the first and the last.
  const longest = Math.max(1, ...chart.bars.map((b) => Math.max(b.label.length, b.sublabel?.length ?? 0)));
  const every = Math.max(1, Math.ceil((longest * 7 + 8) / step));
  chart.bars.forEach((b, i) => {
    const x = left + i * step + step * 0.1;
    const h = Math.max(0, y(0) - y(b.value));
    parts.push(
      `<rect class="bar" x="${x.toFixed(1)}" y="${(y(0) - h).toFixed(1)}" width="${(step * 0.8).toFixed(1)}" height="${h.toFixed(1)}" fill="${escapeXml(b.color ?? chart.color ?? '#3b6ea8')}"><title>${escapeXml(b.title)}</title></rect>`,
    );
    const last = i === chart.bars.length - 1;
    if ((i % every === 0 && (last || chart.bars.length - 1 - i >= every)) || last) {
      const at = (x + step * 0.4).toFixed(1);
      parts.push(`<text class="label" x="${at}" y="${height - bottom + 16}" text-anchor="middle">${escapeXml(b.label)}</text>`);
      if (b.sublabel !== undefined) {
        parts.push(`<text class="sublabel" x="${at}" y="${height - bottom + 30}" text-anchor="middle">${escapeXml(b.sublabel)}</text>`);
      }
    }
  });
  if (chart.bars.length === 0) parts.push(`<text class="empty" x="${width / 2}" y="${height / 2}" text-anchor="middle">no data</text>`);
  return `<svg class="chart" data-chart="${escapeXml(chart.id)}" viewBox="0 0 ${width} ${height}" role="img" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg>`;
}
