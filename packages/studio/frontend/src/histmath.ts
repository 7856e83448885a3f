// Histogram bars in the order of the view: with the view sorted by the binned column, the
// bars' cumulative counts are positions in the view, so a bar maps to a slider range.

export interface HistSeries {
  split: string;
  discarded: boolean;
  counts: number[];
}

export interface Bar {
  /** Bin index in the server's answer. */
  bin: number;
  label: string;
  bySplit: Map<string, { active: number; discarded: number }>;
  total: number;
  /** First view position of the bar's rows. */
  start: number;
}

export function binLabel(edges: number[], categories: string[], bin: number, fmt: (v: number) => string): string {
  if (categories.length) return categories[bin] ?? "";
  const lo = edges[bin];
  const hi = edges[bin + 1];
  if (lo === undefined || hi === undefined) return "";
  return `${fmt(lo)} – ${fmt(hi)}`;
}

export function buildBars(
  series: HistSeries[],
  nbins: number,
  descending: boolean,
  label: (bin: number) => string,
): Bar[] {
  const bars: Bar[] = [];
  for (let b = 0; b < nbins; b++) {
    const bySplit = new Map<string, { active: number; discarded: number }>();
    let total = 0;
    for (const s of series) {
      const c = s.counts[b] ?? 0;
      if (!c) continue;
      const e = bySplit.get(s.split) ?? { active: 0, discarded: 0 };
      if (s.discarded) e.discarded += c;
      else e.active += c;
      bySplit.set(s.split, e);
      total += c;
    }
    bars.push({ bin: b, label: label(b), bySplit, total, start: 0 });
  }
  if (descending) bars.reverse();
  let pos = 0;
  for (const bar of bars) {
    bar.start = pos;
    pos += bar.total;
  }
  return bars;
}

/** The bar holding view position `pos` (the last bar for positions past the binned rows). */
export function barAt(bars: Bar[], pos: number): number {
  if (!bars.length) return -1;
  let lo = 0;
  let hi = bars.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (bars[mid]!.start <= pos) lo = mid;
    else hi = mid - 1;
  }
  // skip empty bars that share the start position
  while (lo > 0 && bars[lo]!.total === 0 && bars[lo - 1]!.start === bars[lo]!.start) lo--;
  return lo;
}

/** The column a query's own `sort by` names (first key), if any. */
export function sortOfQuery(clauses: string): { column: string; descending: boolean } | null {
  const m = /\bsort\s+by\s+(`(?:[^`\\]|\\.)*`|[^\s,]+)(?:\s+(asc|desc)\b)?/i.exec(clauses);
  if (!m) return null;
  let col = m[1]!;
  if (col.startsWith("`")) col = col.slice(1, -1).replace(/\\(.)/g, "$1");
  return { column: col, descending: (m[2] ?? "").toLowerCase() === "desc" };
}
