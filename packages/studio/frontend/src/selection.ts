// Selection over the current view: keys (split + id), an anchor for shift-ranges and the
// position of the focused sample. Pure logic; the grid and the list render it.
// A lasso may cover rows not loaded yet: those are kept as positions of the view ("spans") and
// resolved to keys through the view when an action runs (`resolve`).

import { Emitter } from "./events.js";

export interface Mods {
  shift: boolean;
  toggle: boolean; // ctrl / cmd
}

export type Span = [start: number, end: number];

/** Sorted, merged [start, end) spans of the given positions and spans. */
export function toSpans(positions: Iterable<number>, spans: readonly Span[] = []): Span[] {
  const all: Span[] = [...spans.map(([a, b]): Span => [a, b])];
  for (const p of positions) all.push([p, p + 1]);
  all.sort((x, y) => x[0] - y[0]);
  const out: Span[] = [];
  for (const [a, b] of all) {
    const last = out[out.length - 1];
    if (b <= a) continue;
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** Grid geometry of `positionsInRect`: columns, cell pitch, padding, the view's length. */
export interface GridGeometry {
  cols: number;
  cellW: number;
  cellH: number;
  gap: number;
  pad: number;
  total: number;
}

/** Positions of the cells a rectangle (content coordinates) touches, in view order. */
export function positionsInRect(x0: number, y0: number, x1: number, y1: number, g: GridGeometry): number[] {
  const cw = g.cellW + g.gap;
  const rh = g.cellH + g.gap;
  const c0 = Math.max(0, Math.floor((x0 - g.pad) / cw));
  const c1 = Math.min(g.cols - 1, Math.floor((x1 - g.pad) / cw));
  const r0 = Math.max(0, Math.floor((y0 - g.pad) / rh));
  const r1 = Math.floor((y1 - g.pad) / rh);
  const out: number[] = [];
  for (let r = r0; r <= r1; r++) {
    for (let c = c0; c <= c1; c++) {
      const i = r * g.cols + c;
      if (i < g.total) out.push(i);
    }
  }
  return out;
}

export class Selection {
  readonly changed = new Emitter<void>();
  private keys = new Set<string>();
  /** Positions lassoed before their rows were loaded (sorted, merged). */
  private spans: Span[] = [];
  anchor: number | null = null;
  focus = 0;

  get size(): number {
    return this.keys.size + this.spans.reduce((n, [a, b]) => n + b - a, 0);
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Whether the sample `key` at position `index` is selected (by key, or by a lassoed position). */
  hasAt(key: string, index: number): boolean {
    return this.keys.has(key) || this.inSpans(index);
  }

  /** The selected keys (positions not resolved yet are not among them: see `resolve`). */
  all(): string[] {
    return [...this.keys];
  }

  /** Lassoed positions still to resolve. */
  pending(): Span[] {
    return this.spans.map(([a, b]): Span => [a, b]);
  }

  private inSpans(i: number): boolean {
    let lo = 0;
    let hi = this.spans.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [a, b] = this.spans[mid]!;
      if (i < a) hi = mid - 1;
      else if (i >= b) lo = mid + 1;
      else return true;
    }
    return false;
  }

  private dropPosition(i: number): void {
    const out: Span[] = [];
    for (const [a, b] of this.spans) {
      if (i < a || i >= b) out.push([a, b]);
      else {
        if (i > a) out.push([a, i]);
        if (b > i + 1) out.push([i + 1, b]);
      }
    }
    this.spans = out;
  }

  /**
   * Replaces lassoed positions by the keys of the rows at those positions now, through
   * `keysAt` (the view: loaded pages, else one query per span). Called before an action.
   */
  async resolve(keysAt: (spans: Span[]) => Promise<string[]>): Promise<void> {
    if (!this.spans.length) return;
    const spans = this.pending();
    const keys = await keysAt(spans);
    for (const k of keys) this.keys.add(k);
    // spans lassoed meanwhile stay for the next action
    this.spans = this.spans.filter(([a, b]) => !spans.some(([x, y]) => x === a && y === b));
    this.changed.emit();
  }

  clear(): void {
    if (!this.keys.size && !this.spans.length) return;
    this.keys.clear();
    this.spans = [];
    this.anchor = null;
    this.changed.emit();
  }

  /** A click (or Space) at `index` on `key`; `rangeKeys(a, b)` gives the keys of positions a..b. */
  click(index: number, key: string, mods: Mods, rangeKeys: (a: number, b: number) => string[]): void {
    if (mods.shift && this.anchor !== null) {
      if (!mods.toggle) {
        this.keys.clear();
        this.spans = [];
      }
      const [a, b] = this.anchor <= index ? [this.anchor, index] : [index, this.anchor];
      for (const k of rangeKeys(a, b)) this.keys.add(k);
    } else if (mods.toggle) {
      if (this.inSpans(index)) this.dropPosition(index);
      else if (this.keys.has(key)) this.keys.delete(key);
      else this.keys.add(key);
      this.anchor = index;
    } else {
      const only = this.keys.size === 1 && this.keys.has(key) && !this.spans.length;
      this.keys.clear();
      this.spans = [];
      if (!only) this.keys.add(key);
      this.anchor = index;
    }
    this.focus = index;
    this.changed.emit();
  }

  /**
   * Lasso: replaces the selection (or adds to the one at drag start, `base` / `baseSpans`);
   * `positions` are cells whose rows are not loaded yet (selected by position).
   */
  setMany(keys: Iterable<string>, base: Iterable<string> = [], positions: Iterable<number> = [], baseSpans: readonly Span[] = []): void {
    this.keys = new Set(base);
    for (const k of keys) this.keys.add(k);
    this.spans = toSpans(positions, baseSpans);
    this.changed.emit();
  }

  toggleOne(key: string, index: number): void {
    if (this.inSpans(index)) this.dropPosition(index);
    else if (this.keys.has(key)) this.keys.delete(key);
    else this.keys.add(key);
    this.anchor = index;
    this.changed.emit();
  }
}
