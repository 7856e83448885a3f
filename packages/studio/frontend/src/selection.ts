// Selection over the current view: keys (split + id), an anchor for shift-ranges and the
// position of the focused sample. Pure logic; the grid and the list render it.

import { Emitter } from "./events.js";

export interface Mods {
  shift: boolean;
  toggle: boolean; // ctrl / cmd
}

export class Selection {
  readonly changed = new Emitter<void>();
  private keys = new Set<string>();
  anchor: number | null = null;
  focus = 0;

  get size(): number {
    return this.keys.size;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  all(): string[] {
    return [...this.keys];
  }

  clear(): void {
    if (!this.keys.size) return;
    this.keys.clear();
    this.anchor = null;
    this.changed.emit();
  }

  /** A click (or Space) at `index` on `key`; `rangeKeys(a, b)` gives the keys of positions a..b. */
  click(index: number, key: string, mods: Mods, rangeKeys: (a: number, b: number) => string[]): void {
    if (mods.shift && this.anchor !== null) {
      if (!mods.toggle) this.keys.clear();
      const [a, b] = this.anchor <= index ? [this.anchor, index] : [index, this.anchor];
      for (const k of rangeKeys(a, b)) this.keys.add(k);
    } else if (mods.toggle) {
      if (this.keys.has(key)) this.keys.delete(key);
      else this.keys.add(key);
      this.anchor = index;
    } else {
      const only = this.keys.size === 1 && this.keys.has(key);
      this.keys.clear();
      if (!only) this.keys.add(key);
      this.anchor = index;
    }
    this.focus = index;
    this.changed.emit();
  }

  /** Lasso: replaces the selection (or adds to the one at drag start, `base`). */
  setMany(keys: Iterable<string>, base: Iterable<string> = []): void {
    this.keys = new Set(base);
    for (const k of keys) this.keys.add(k);
    this.changed.emit();
  }

  toggleOne(key: string, index: number): void {
    if (this.keys.has(key)) this.keys.delete(key);
    else this.keys.add(key);
    this.anchor = index;
    this.changed.emit();
  }
}
