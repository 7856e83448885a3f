// What a card draws, computed from the points it holds: lines on one shared x axis (uPlot's data
// model), a min/max band per line, EMA smoothing, and the CSV of the points. Pure functions.

export interface Line {
  steps: number[];
  values: number[];
}

export interface ChartData {
  x: number[];
  /** Per line: the (smoothed) value shown at each x, null where the line has no point. */
  y: Array<Array<number | null>>;
  /** Per line: the smallest / largest raw value folded into each x (the band). */
  lo: Array<Array<number | null>>;
  hi: Array<Array<number | null>>;
  /** Raw points inside [xmin, xmax], all lines together. */
  points: number;
}

/**
 * Exponential moving average, debiased like TensorBoard's (the first points are not pulled
 * towards 0). `weight` in [0, 1): 0 = raw values. Non-finite values pass through untouched.
 */
export function ema(values: number[], weight: number): number[] {
  if (!(weight > 0)) return values.slice();
  const w = Math.min(weight, 0.999);
  const out = new Array<number>(values.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * w + (1 - w) * v;
    n++;
    out[i] = last / (1 - w ** n);
  }
  return out;
}

function lowerBound(a: number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Raw points of `line` with xmin <= step <= xmax: [first index, end index). */
export function rangeOf(steps: number[], xmin: number, xmax: number): [number, number] {
  return [lowerBound(steps, xmin), lowerBound(steps, xmax + 1e-9 * Math.max(1, Math.abs(xmax)))];
}

export interface BuildOptions {
  /** At most this many x positions (about 2 per pixel). */
  buckets: number;
  smoothing?: number;
  xmin?: number;
  xmax?: number;
}

/**
 * Lines → one shared x axis. Few points: their exact steps (union). More points than `buckets`:
 * equal-width buckets over [xmin, xmax]; each line shows its mean per bucket, its band the
 * bucket's min and max (so a spike stays visible however many points share a pixel).
 */
export function buildChartData(lines: Line[], opts: BuildOptions): ChartData {
  let xmin = opts.xmin ?? Infinity;
  let xmax = opts.xmax ?? -Infinity;
  if (opts.xmin === undefined || opts.xmax === undefined) {
    for (const l of lines) {
      if (!l.steps.length) continue;
      if (opts.xmin === undefined) xmin = Math.min(xmin, l.steps[0]!);
      if (opts.xmax === undefined) xmax = Math.max(xmax, l.steps[l.steps.length - 1]!);
    }
  }
  const empty: ChartData = { x: [], y: lines.map(() => []), lo: lines.map(() => []), hi: lines.map(() => []), points: 0 };
  if (!(xmin <= xmax)) return empty;
  const smoothed = lines.map((l) => ema(l.values, opts.smoothing ?? 0));
  const ranges = lines.map((l) => rangeOf(l.steps, xmin, xmax));
  const points = ranges.reduce((a, [s, e]) => a + (e - s), 0);
  const steps = new Set<number>();
  let exact = true;
  for (let k = 0; k < lines.length && exact; k++) {
    const [s, e] = ranges[k]!;
    for (let i = s; i < e; i++) {
      steps.add(lines[k]!.steps[i]!);
      if (steps.size > opts.buckets) {
        exact = false;
        break;
      }
    }
  }
  if (exact) {
    const x = [...steps].sort((a, b) => a - b);
    const pos = new Map(x.map((v, i) => [v, i]));
    const out: ChartData = { x, y: [], lo: [], hi: [], points };
    lines.forEach((l, k) => {
      const y = new Array<number | null>(x.length).fill(null);
      const lo = new Array<number | null>(x.length).fill(null);
      const hi = new Array<number | null>(x.length).fill(null);
      const [s, e] = ranges[k]!;
      for (let i = s; i < e; i++) {
        const j = pos.get(l.steps[i]!)!;
        const v = l.values[i]!;
        y[j] = finite(smoothed[k]![i]!);
        if (Number.isFinite(v)) {
          lo[j] = lo[j] === null ? v : Math.min(lo[j]!, v);
          hi[j] = hi[j] === null ? v : Math.max(hi[j]!, v);
        }
      }
      out.y.push(y);
      out.lo.push(lo);
      out.hi.push(hi);
    });
    return out;
  }
  const n = Math.max(1, Math.floor(opts.buckets));
  const width = (xmax - xmin) / n || 1;
  const x = Array.from({ length: n }, (_, i) => xmin + (i + 0.5) * width);
  const out: ChartData = { x, y: [], lo: [], hi: [], points };
  lines.forEach((l, k) => {
    const sum = new Float64Array(n);
    const cnt = new Uint32Array(n);
    const lo = new Array<number | null>(n).fill(null);
    const hi = new Array<number | null>(n).fill(null);
    const [s, e] = ranges[k]!;
    for (let i = s; i < e; i++) {
      const b = Math.min(n - 1, Math.floor((l.steps[i]! - xmin) / width));
      const sv = smoothed[k]![i]!;
      if (Number.isFinite(sv)) {
        sum[b] += sv;
        cnt[b]++;
      }
      const v = l.values[i]!;
      if (Number.isFinite(v)) {
        lo[b] = lo[b] === null ? v : Math.min(lo[b]!, v);
        hi[b] = hi[b] === null ? v : Math.max(hi[b]!, v);
      }
    }
    out.y.push(Array.from(cnt, (c, b) => (c ? sum[b]! / c : null)));
    out.lo.push(lo);
    out.hi.push(hi);
  });
  return out;
}

const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);

export interface CsvRow {
  signal: string;
  split: string;
  branch: string;
  step: number;
  value: number;
}

function csvField(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** `signal,split,branch,step,value`; values at full precision (shortest round-trip form). */
export function toCsv(rows: CsvRow[]): string {
  const out = ["signal,split,branch,step,value"];
  for (const r of rows) {
    out.push([csvField(r.signal), csvField(r.split), csvField(r.branch), String(r.step), String(r.value)].join(","));
  }
  return out.join("\n") + "\n";
}

/** The point of `steps` nearest to `x` (for the step under the mouse). */
export function nearestStep(steps: number[], x: number): number | null {
  if (!steps.length) return null;
  const i = lowerBound(steps, x);
  if (i <= 0) return steps[0]!;
  if (i >= steps.length) return steps[steps.length - 1]!;
  return x - steps[i - 1]! <= steps[i]! - x ? steps[i - 1]! : steps[i]!;
}
