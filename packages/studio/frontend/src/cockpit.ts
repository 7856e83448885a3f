// Pure logic of the training cockpit (header controls, hyperparameters, painter, keyboard,
// left-panel layout): no DOM, unit tested with vitest.

import type { Cell } from "./api/model.js";

// ---------------------------------------------------------------- run N steps
export const MAX_RUN_STEPS = 1_000_000_000;

/** "Run N steps" input → N, or an error naming the value and what is accepted (the server's range). */
export function parseSteps(text: string): number {
  const t = text.trim().replace(/[_,\s]/g, "");
  if (!/^\d+$/.test(t)) throw new Error(`steps: ${JSON.stringify(text)} is not a whole number: expected 1..${MAX_RUN_STEPS}`);
  const n = Number(t);
  if (n < 1 || n > MAX_RUN_STEPS) throw new Error(`steps: ${n} is out of range: expected 1..${MAX_RUN_STEPS}`);
  return n;
}

// ---------------------------------------------------------------- hyperparameters
export type HpKind = "number" | "int" | "bool" | "string" | "json" | "null";

/** The protobuf Value oneof as the UI sees it (int64 already a number/bigint). */
export type HpValue =
  | { case: "number"; value: number }
  | { case: "int"; value: bigint }
  | { case: "bool"; value: boolean }
  | { case: "string"; value: string }
  | { case: "json"; value: string }
  | { case: undefined; value?: undefined };

export function hpKind(v: HpValue | undefined): HpKind {
  return v?.case ?? "null";
}

/** The text an input shows for a value. */
export function hpText(v: HpValue | undefined): string {
  if (!v || v.case === undefined) return "";
  if (v.case === "int") return String(v.value);
  if (v.case === "number") return fmtNumber(v.value);
  if (v.case === "bool") return v.value ? "true" : "false";
  return v.value;
}

function fmtNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  // Shortest text that reads back as the same double (0.003, not 0.0030000000000000001).
  return String(x);
}

/**
 * What an edit sends, typed like the applied value where the text allows it. Text that does not
 * parse as the key's type goes as a string: the server validates it and its message (naming the
 * key, the value and the expected type) is shown inline.
 */
export function hpRequest(kind: HpKind, input: string | boolean): HpValue {
  if (typeof input === "boolean") return { case: "bool", value: input };
  const t = input.trim();
  if (kind === "number" && t !== "" && Number.isFinite(Number(t))) return { case: "number", value: Number(t) };
  if (kind === "int" && /^[-+]?\d+$/.test(t)) return { case: "int", value: BigInt(t) };
  if (kind === "bool" && /^(true|false)$/i.test(t)) return { case: "bool", value: t.toLowerCase() === "true" };
  if (kind === "json") return { case: "json", value: t };
  return { case: "string", value: kind === "string" ? input : t };
}

export type HpPhase = "applied" | "requested";

export interface HpRowState {
  key: string;
  kind: HpKind;
  applied: string;
  /** Set while the loop has not applied the request yet. */
  requested: string | null;
}

export function hpPhase(row: HpRowState): HpPhase {
  return row.requested === null ? "applied" : "requested";
}

/** The hyperparameters poll: fast while an edit waits for the loop, slow otherwise (spec: 2 s / 10 s). */
export function hpPollInterval(rows: readonly HpRowState[]): number {
  return rows.some((r) => r.requested !== null) ? 2000 : 10_000;
}

// ---------------------------------------------------------------- evaluation
export interface EvalView {
  state: string;
  progress: number;
  metrics: Record<string, number>;
  message: string;
}

export const EVAL_ACTIVE = new Set(["running", "queued", "waiting"]);

export function evalSummary(e: EvalView): string {
  const pct = `${Math.round(Math.max(0, Math.min(1, e.progress)) * 100)}%`;
  const metrics = Object.entries(e.metrics).sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${fmtMetric(v)}`).join(" · ");
  if (EVAL_ACTIVE.has(e.state)) return `${e.state} ${pct}${e.message ? ` — ${e.message}` : ""}`;
  if (e.state === "done") return metrics ? `done: ${metrics}` : `done${e.message ? `: ${e.message}` : ""}`;
  if (!e.state || e.state === "idle") return "no evaluation yet";
  return `${e.state}${e.message ? `: ${e.message}` : ""}`;
}

export function fmtMetric(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return v.toFixed(4).replace(/0+$/, "").replace(/\.$/, "");
}

// ---------------------------------------------------------------- painter
/** Cells of a drag: positions visited, deduplicated, in visiting order. */
export class PaintStroke {
  private readonly seen = new Set<number>();
  readonly order: number[] = [];

  add(index: number | null): boolean {
    if (index === null || index < 0 || this.seen.has(index)) return false;
    this.seen.add(index);
    this.order.push(index);
    return true;
  }

  get size(): number {
    return this.order.length;
  }
}

/** Positions between two cells of a fast drag (pointer events skip cells): the straight line in grid space. */
export function cellsBetween(a: number, b: number, cols: number): number[] {
  if (cols < 1) return [b];
  const [ar, ac] = [Math.floor(a / cols), a % cols];
  const [br, bc] = [Math.floor(b / cols), b % cols];
  const n = Math.max(Math.abs(br - ar), Math.abs(bc - ac));
  const out: number[] = [];
  for (let i = 1; i <= n; i++) {
    const r = Math.round(ar + ((br - ar) * i) / n);
    const c = Math.round(ac + ((bc - ac) * i) / n);
    out.push(r * cols + c);
  }
  return n === 0 ? [b] : out;
}

/** "name" or "name=value" typed for a new tag → its parts, or an error naming what is wrong. */
export function parseTagName(text: string): { name: string; value: string | null } {
  const t = text.trim();
  if (!t) throw new Error("tag: type a name (or name=value for a categorical tag)");
  const eq = t.indexOf("=");
  const name = (eq >= 0 ? t.slice(0, eq) : t).trim();
  const value = eq >= 0 ? t.slice(eq + 1).trim() : null;
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(name)) {
    throw new Error(`tag: ${JSON.stringify(name)} is not a tag name: use 1..64 letters, digits, _ . : -`);
  }
  if (value !== null && !value) throw new Error(`tag: ${JSON.stringify(t)} has no value after '='`);
  return { name, value };
}

// ---------------------------------------------------------------- grid overlays
export interface Overlays {
  label: boolean;
  prediction: boolean;
  correct: boolean;
  split: boolean;
  discarded: boolean;
}

export const DEFAULT_OVERLAYS: Readonly<Overlays> = Object.freeze({ label: true, prediction: true, correct: true, split: true, discarded: true });

/** The badge of a cell: label, prediction or both; `wrong` only when both are known and differ. */
export function labelBadge(label: Cell, pred: Cell, o: Pick<Overlays, "label" | "prediction" | "correct">,
  fmt: (v: Exclude<Cell, null>) => string = String): { text: string; wrong: boolean | null } | null {
  const has = (v: Cell): v is Exclude<Cell, null> => v !== null && v !== undefined;
  const parts: string[] = [];
  if (o.label && has(label)) parts.push(fmt(label));
  if (o.prediction && has(pred)) parts.push(fmt(pred));
  if (!parts.length) return null;
  const wrong = o.correct && has(label) && has(pred) ? String(label) !== String(pred) : null;
  return { text: parts.join("→"), wrong };
}

// ---------------------------------------------------------------- left panel
export const SIDE_MIN = 180;
export const SIDE_MAX = 560;

/** Panel width kept within [180, min(560, half the window)]. */
export function clampSideWidth(px: number, viewport: number): number {
  const max = Math.max(SIDE_MIN, Math.min(SIDE_MAX, Math.floor(viewport / 2)));
  if (!Number.isFinite(px)) return 248;
  return Math.round(Math.max(SIDE_MIN, Math.min(max, px)));
}

// ---------------------------------------------------------------- keyboard
export interface KeyLike {
  key: string;
  shiftKey: boolean;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
}

export type ShortcutAction =
  | "toggle-run" | "run-n" | "evaluate" | "tag" | "discard" | "restore" | "next" | "prev" | "query" | "help"
  | "view" | "paint";

export interface Shortcut {
  keys: string;
  action: ShortcutAction | null;
  what: string;
}

/** Every shortcut the `?` overlay lists (null action: handled elsewhere: the grid or the modal). */
export const SHORTCUTS: readonly Shortcut[] = [
  { keys: "Shift+P", action: "toggle-run", what: "pause / resume training" },
  { keys: "Shift+N", action: "run-n", what: "run N steps…" },
  { keys: "Shift+E", action: "evaluate", what: "evaluate…" },
  { keys: "/", action: "query", what: "focus the query box" },
  { keys: "j · k", action: null, what: "next / previous sample (outside the grid too)" },
  { keys: "← ↑ → ↓", action: null, what: "move in the grid (Shift extends the selection)" },
  { keys: "Space", action: null, what: "select / unselect the focused sample (in the grid)" },
  { keys: "Enter", action: null, what: "open the focused sample" },
  { keys: "← →  in a sample", action: null, what: "previous / next sample" },
  { keys: "T", action: "tag", what: "tag the selection (or the focused sample)" },
  { keys: "D", action: "discard", what: "discard the selection (or the focused sample)" },
  { keys: "R", action: "restore", what: "restore the selection" },
  { keys: "L", action: null, what: "relabel the selection (or the focused / open sample): type the class, Enter" },
  { keys: "B", action: "paint", what: "painter mode on / off (with the picked tag)" },
  { keys: "v", action: "view", what: "grid / list" },
  { keys: "Ctrl+A", action: null, what: "select the loaded samples" },
  { keys: "Esc", action: null, what: "close · clear the selection · leave painter mode" },
  { keys: "?", action: "help", what: "this list" },
];

/** The cockpit's own shortcuts (the grid, the modal and main.ts handle the rest). */
export function shortcutOf(e: KeyLike): ShortcutAction | "next" | "prev" | null {
  if (e.ctrlKey || e.metaKey || e.altKey) return null;
  const k = e.key;
  if (e.shiftKey) {
    if (k === "P") return "toggle-run";
    if (k === "N") return "run-n";
    if (k === "E") return "evaluate";
    if (k === "T") return "tag";
    if (k === "D") return "discard";
    if (k === "R") return "restore";
    return null;
  }
  if (k === "j") return "next";
  if (k === "k") return "prev";
  if (k === "b") return "paint";
  return null;
}

// ---------------------------------------------------------------- display settings (persisted)
export interface DisplaySettings {
  cellSize: number;
  /** Thumbnail resolution in px; 0 = from the cell size. */
  thumbRes: number;
  overlays: Overlays;
}

export const DEFAULT_DISPLAY: Readonly<DisplaySettings> = Object.freeze({ cellSize: 128, thumbRes: 0, overlays: { ...DEFAULT_OVERLAYS } });
export const THUMB_RESOLUTIONS: readonly number[] = [0, 64, 96, 160, 256, 384];

/** A stored value → valid settings (each bad or missing field: its default). */
export function sanitizeDisplay(raw: unknown): DisplaySettings {
  const out: DisplaySettings = { ...DEFAULT_DISPLAY, overlays: { ...DEFAULT_OVERLAYS } };
  if (!raw || typeof raw !== "object") return out;
  const r = raw as Record<string, unknown>;
  if (typeof r.cellSize === "number" && Number.isFinite(r.cellSize)) out.cellSize = Math.round(Math.max(72, Math.min(240, r.cellSize)));
  if (typeof r.thumbRes === "number" && THUMB_RESOLUTIONS.includes(r.thumbRes)) out.thumbRes = r.thumbRes;
  const o = r.overlays;
  if (o && typeof o === "object") {
    for (const k of Object.keys(DEFAULT_OVERLAYS) as Array<keyof Overlays>) {
      const v = (o as Record<string, unknown>)[k];
      if (typeof v === "boolean") out.overlays[k] = v;
    }
  }
  return out;
}
