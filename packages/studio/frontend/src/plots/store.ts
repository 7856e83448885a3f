// The page's copy of the curves: filled incrementally through GetCurves' per-client cursor
// (`since_seq` → `next_seq`), one series per (signal, split, branch). Memory stays bounded: a
// series longer than 2 × `cap` is thinned to `cap` points with the extreme-preserving rule.

import { extremeIndices } from "./downsample.js";

export interface SeriesIn {
  signal: string;
  split: string;
  branch: string;
  steps: number[];
  values: number[];
}

export interface MarkerInfo {
  step: number;
  kind: string;
  text: string;
  branch: string;
}

export interface CurvesIn {
  series: SeriesIn[];
  nextSeq: number;
  branches: string[];
  markers: MarkerInfo[];
}

export interface Series {
  key: string;
  signal: string;
  split: string;
  branch: string;
  steps: number[];
  values: number[];
}

export const seriesKey = (signal: string, split: string, branch: string): string => `${signal}\u0000${split}\u0000${branch}`;

export class CurveStore {
  cursor = 0;
  branches: string[] = [];
  markers: MarkerInfo[] = [];
  /** Bumped on every change of a signal's series (cards redraw only what moved). */
  readonly versions = new Map<string, number>();
  private readonly bySignal = new Map<string, Map<string, Series>>();

  constructor(public cap = 4000) {}

  reset(): void {
    this.cursor = 0;
    this.branches = [];
    this.markers = [];
    for (const s of this.bySignal.keys()) this.bump(s);
    this.bySignal.clear();
  }

  signals(): string[] {
    return [...this.bySignal.keys()].sort();
  }

  series(signal: string): Series[] {
    return [...(this.bySignal.get(signal)?.values() ?? [])];
  }

  version(signal: string): number {
    return this.versions.get(signal) ?? 0;
  }

  private bump(signal: string): void {
    this.versions.set(signal, this.version(signal) + 1);
  }

  /**
   * Folds one GetCurves answer in. Returns the signals whose points changed, or `null` when the
   * server's cursor went backwards (a restarted backend): the caller resets and reads again.
   */
  ingest(res: CurvesIn): Set<string> | null {
    if (res.nextSeq < this.cursor) return null;
    const changed = new Set<string>();
    for (const s of res.series) {
      if (!s.steps.length) continue;
      let bySplit = this.bySignal.get(s.signal);
      if (!bySplit) {
        bySplit = new Map();
        this.bySignal.set(s.signal, bySplit);
      }
      const key = seriesKey(s.signal, s.split, s.branch);
      let cur = bySplit.get(key);
      if (!cur) {
        cur = { key, signal: s.signal, split: s.split, branch: s.branch, steps: [], values: [] };
        bySplit.set(key, cur);
      }
      append(cur, s.steps, s.values);
      if (this.cap > 0 && cur.steps.length > 2 * this.cap) {
        const keep = extremeIndices(cur.values, this.cap);
        cur.steps = keep.map((i) => cur!.steps[i]!);
        cur.values = keep.map((i) => cur!.values[i]!);
      }
      changed.add(s.signal);
    }
    if (!sameMarkers(this.markers, res.markers) || res.branches.length !== this.branches.length) {
      for (const s of this.bySignal.keys()) changed.add(s);
    }
    this.markers = res.markers;
    this.branches = res.branches;
    this.cursor = res.nextSeq;
    for (const s of changed) this.bump(s);
    return changed;
  }
}

/** Appends points kept in step order (a late point is inserted where it belongs). */
function append(cur: Series, steps: number[], values: number[]): void {
  const last = cur.steps.length ? cur.steps[cur.steps.length - 1]! : -Infinity;
  let sorted = steps[0]! >= last;
  for (let i = 1; sorted && i < steps.length; i++) sorted = steps[i]! >= steps[i - 1]!;
  if (sorted) {
    for (let i = 0; i < steps.length; i++) {
      cur.steps.push(steps[i]!);
      cur.values.push(values[i]!);
    }
    return;
  }
  const idx = [...cur.steps.map((s, i) => [s, cur.values[i]!] as const), ...steps.map((s, i) => [s, values[i]!] as const)];
  idx.sort((a, b) => a[0] - b[0]); // stable: equal steps keep their arrival order
  cur.steps = idx.map((p) => p[0]);
  cur.values = idx.map((p) => p[1]);
}

function sameMarkers(a: MarkerInfo[], b: MarkerInfo[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((m, i) => m.step === b[i]!.step && m.kind === b[i]!.kind && m.branch === b[i]!.branch && m.text === b[i]!.text);
}
