// Pure logic of label corrections in the Studio (relabel / accept the suggestion / revert):
// the class typed in "Relabel as…", and what a row's label columns say. No DOM; unit tested.

import type { Cell } from "./api/model.js";

export type RelabelKind = "relabel" | "accept" | "revert";

/** The largest class index the server takes (int32, as `operations.labels.class_index`). */
export const MAX_CLASS = 2 ** 31 - 1;

/**
 * "Relabel as…" text → a class index, or an error naming the value and what is accepted.
 * `classes` (when known: the label values seen, or the model's width) bounds it from above;
 * the server checks it again against the model's logits and its message is shown as it is.
 */
export function parseClassLabel(text: string, classes: number | null = null): number {
  const t = text.trim();
  if (!t) throw new Error("label: type a class index (an integer >= 0)");
  if (!/^\+?\d+$/.test(t)) throw new Error(`label: ${JSON.stringify(text)} is not a class index: expected an integer >= 0`);
  const n = Number(t.replace(/^\+/, ""));
  if (!Number.isSafeInteger(n) || n > MAX_CLASS) throw new Error(`label: ${t} is out of range: expected 0..${MAX_CLASS}`);
  if (classes !== null && classes > 0 && n >= classes) {
    throw new Error(`label: ${n} is out of range: expected 0..${classes - 1} (${classes} classes)`);
  }
  return n;
}

export interface LabelInfo {
  label: Cell;
  /** The label before the first correction; null when never corrected. */
  original: Cell;
  /** The class the run believes; null before the loss has seen the sample. */
  suggested: Cell;
  corrected: boolean;
  /** A suggestion exists and differs from the current label. */
  differs: boolean;
}

const known = (v: Cell | undefined): v is Exclude<Cell, null> =>
  v !== null && v !== undefined && !(typeof v === "number" && !Number.isFinite(v)) && v !== "";

/** A row's label columns (missing column or NaN = unknown) → what the grid and the modal show. */
export function labelInfo(label: Cell | undefined, original: Cell | undefined, suggested: Cell | undefined): LabelInfo {
  const l = known(label) ? label : null;
  const o = known(original) ? original : null;
  const s = known(suggested) ? suggested : null;
  return { label: l, original: o, suggested: s, corrected: o !== null, differs: s !== null && l !== null && String(s) !== String(l) };
}

/** Past tense of each action, for the toast. */
export const RELABEL_DONE: Record<RelabelKind, string> = {
  relabel: "Relabelled",
  accept: "Accepted the suggested label of",
  revert: "Reverted the label of",
};
