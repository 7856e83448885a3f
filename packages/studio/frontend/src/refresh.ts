// Auto-refresh settings of the page (header → refresh popover): whether data rows and plots
// refresh on their own and how often. One typed store, persisted in localStorage; the data
// board (app.ts) and the plots board subscribe to it.

import { Emitter } from "./events.js";

export interface RefreshSettings {
  /** Visible rows are re-read when the training step moved. */
  dataAuto: boolean;
  /** At most one visible-rows refresh per this many ms. */
  dataIntervalMs: number;
  /** Plots poll their incremental cursor on their own. */
  plotsAuto: boolean;
  plotsIntervalMs: number;
}

export const DEFAULT_REFRESH: Readonly<RefreshSettings> = Object.freeze({
  dataAuto: true,
  dataIntervalMs: 2500,
  plotsAuto: true,
  plotsIntervalMs: 2000,
});

/** Intervals a person may choose (ms): below 0.5 s the server would mostly answer "nothing new". */
export const MIN_INTERVAL_MS = 500;
export const MAX_INTERVAL_MS = 600_000;

const KEY = "wl-refresh";

export class RefreshSettingsError extends Error {}

/** Seconds typed in the popover → ms, or an error naming the field and what is accepted. */
export function parseIntervalSeconds(field: string, text: string): number {
  const t = text.trim();
  const v = Number(t);
  if (!t || !Number.isFinite(v)) {
    throw new RefreshSettingsError(`${field}: ${JSON.stringify(text)} is not a number of seconds`);
  }
  const ms = Math.round(v * 1000);
  if (ms < MIN_INTERVAL_MS || ms > MAX_INTERVAL_MS) {
    throw new RefreshSettingsError(`${field}: ${t} s is out of range: expected ${MIN_INTERVAL_MS / 1000}..${MAX_INTERVAL_MS / 1000} s`);
  }
  return ms;
}

/** A stored (possibly old or hand-edited) value → valid settings; bad fields fall back to the defaults. */
export function sanitizeRefresh(raw: unknown): RefreshSettings {
  const out: RefreshSettings = { ...DEFAULT_REFRESH };
  if (!raw || typeof raw !== "object") return out;
  const r = raw as Record<string, unknown>;
  for (const k of ["dataAuto", "plotsAuto"] as const) if (typeof r[k] === "boolean") out[k] = r[k];
  for (const k of ["dataIntervalMs", "plotsIntervalMs"] as const) {
    const v = r[k];
    if (typeof v === "number" && Number.isFinite(v) && v >= MIN_INTERVAL_MS && v <= MAX_INTERVAL_MS) out[k] = Math.round(v);
  }
  return out;
}

type Store = Pick<Storage, "getItem" | "setItem">;

export class RefreshStore {
  /** Fires with the new settings after every change. */
  readonly changed = new Emitter<RefreshSettings>();
  private value: RefreshSettings;

  constructor(private readonly storage: Store | null) {
    let raw: unknown = null;
    try {
      const text = storage?.getItem(KEY);
      raw = text ? JSON.parse(text) : null;
    } catch {
      raw = null; // unreadable: the defaults
    }
    this.value = sanitizeRefresh(raw);
  }

  get(): RefreshSettings {
    return { ...this.value };
  }

  /** Merges a change (validated like a stored value) and notifies subscribers. */
  set(patch: Partial<RefreshSettings>): RefreshSettings {
    const next = sanitizeRefresh({ ...this.value, ...patch });
    const same = (Object.keys(next) as Array<keyof RefreshSettings>).every((k) => next[k] === this.value[k]);
    if (same) return this.get();
    this.value = next;
    try {
      this.storage?.setItem(KEY, JSON.stringify(next));
    } catch {
      /* not persisted: still applied */
    }
    this.changed.emit(this.get());
    return this.get();
  }

  /** Calls `fn` now and after every change; returns the unsubscribe function. */
  subscribe(fn: (s: RefreshSettings) => void): () => void {
    fn(this.get());
    return this.changed.on(fn);
  }
}

function browserStorage(): Store | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null;
  }
}

/** The page's one store (plots: `refresh.subscribe((s) => ...)`, read `s.plotsAuto` / `s.plotsIntervalMs`). */
export const refresh = new RefreshStore(browserStorage());

/** "Clear caches and reload" pressed: every board empties its caches and reads again. */
export const clearCaches = new Emitter<void>();
