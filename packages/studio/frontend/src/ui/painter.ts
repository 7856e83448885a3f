// Painter mode: with a tag picked, a click or a drag over grid cells adds (or removes) that tag on
// every cell passed over, in one edit per split when the pointer is released. It hooks the grid
// from outside: a capture-phase listener on the board takes the pointer before the grid's own
// lasso sees it, and uses the grid's public indexAt / the view's rows.

import { errorText } from "../api/client.js";
import { sampleKey, splitKey } from "../api/model.js";
import type { Studio } from "../app.js";
import { cellsBetween, PaintStroke } from "../cockpit.js";
import { Emitter } from "../events.js";
import { EditAction } from "../gen/weightslab/v1/experiment_pb.js";
import { fmtInt } from "./dom.js";
import type { GridView } from "./grid.js";
import { toast } from "./toast.js";

export type PaintMode = "add" | "remove";

export interface PainterState {
  /** "name" (boolean tag) or "name=value" (categorical); null = painter off. */
  tag: string | null;
  mode: PaintMode;
}

export class Painter {
  readonly changed = new Emitter<PainterState>();
  state: PainterState = { tag: null, mode: "add" };
  private stroke: PaintStroke | null = null;
  private last: number | null = null;
  private pointer = -1;

  constructor(private readonly app: Studio, private readonly grid: GridView) {
    const board = grid.el.parentElement ?? grid.el;
    board.addEventListener("pointerdown", (e) => this.down(e), { capture: true });
    board.addEventListener("pointermove", (e) => this.move(e), { capture: true });
    board.addEventListener("pointerup", (e) => void this.up(e), { capture: true });
    board.addEventListener("pointercancel", (e) => void this.up(e), { capture: true });
    board.addEventListener("dblclick", (e) => {
      if (this.active && grid.el.contains(e.target as Node)) e.stopPropagation(); // two strokes, not "open"
    }, { capture: true });
  }

  get active(): boolean {
    return this.state.tag !== null && !this.app.config.sandbox;
  }

  set(tag: string | null, mode: PaintMode = this.state.mode): void {
    this.state = { tag, mode };
    document.body.classList.toggle("wl-paint-on", this.active);
    document.body.dataset.paint = this.active ? mode : "";
    this.changed.emit(this.state);
  }

  private down(e: PointerEvent): void {
    if (!this.active || e.button !== 0 || this.grid.el.hidden || !this.grid.el.contains(e.target as Node)) return;
    const rect = this.grid.el.getBoundingClientRect();
    if (e.clientX > rect.left + this.grid.el.clientWidth) return; // the scrollbar scrolls
    e.stopPropagation(); // the grid's lasso / selection never sees a painting stroke
    e.preventDefault();
    this.grid.el.focus({ preventScroll: true }); // keys (Esc, B) work after painting, not in the last input
    this.stroke = new PaintStroke();
    this.last = null;
    this.pointer = e.pointerId;
    (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
    this.visit(this.grid.indexAt(e.clientX, e.clientY));
  }

  private move(e: PointerEvent): void {
    if (!this.stroke || e.pointerId !== this.pointer) return;
    e.stopPropagation();
    const rect = this.grid.el.getBoundingClientRect();
    if (e.clientY > rect.bottom - 20) this.grid.el.scrollTop += 14;
    else if (e.clientY < rect.top + 20) this.grid.el.scrollTop -= 14;
    this.visit(this.grid.indexAt(e.clientX, e.clientY));
  }

  private visit(i: number | null): void {
    if (i === null || !this.stroke) return;
    const path = this.last === null ? [i] : cellsBetween(this.last, i, this.grid.cols);
    this.last = i;
    for (const j of path) {
      if (!this.app.view.row(j) || !this.stroke.add(j)) continue;
      this.grid.el.querySelector(`.wl-cell[data-index="${j}"]`)?.classList.add("wl-painted");
    }
  }

  private async up(e: PointerEvent): Promise<void> {
    const stroke = this.stroke;
    if (!stroke || e.pointerId !== this.pointer) return;
    e.stopPropagation();
    this.stroke = null;
    const target = e.currentTarget as HTMLElement;
    if (target.hasPointerCapture(e.pointerId)) target.releasePointerCapture(e.pointerId);
    const keys: string[] = [];
    for (const i of stroke.order) {
      const row = this.app.view.row(i);
      if (row) keys.push(sampleKey(row.split, row.id));
    }
    try {
      if (keys.length && this.state.tag) await this.apply(this.state.tag, this.state.mode, keys);
    } finally {
      for (const el of this.grid.el.querySelectorAll(".wl-painted")) el.classList.remove("wl-painted");
    }
  }

  /** One edit per split for the painted keys, then counts, tags and the visible rows are re-read. */
  async apply(tag: string, mode: PaintMode, keys: string[]): Promise<number> {
    const eq = tag.indexOf("=");
    const name = eq > 0 ? tag.slice(0, eq) : tag;
    const value = eq > 0 ? tag.slice(eq + 1) : "";
    const action = eq > 0
      ? (mode === "add" ? EditAction.SET_CATEGORY : EditAction.CLEAR_CATEGORY)
      : (mode === "add" ? EditAction.TAG : EditAction.UNTAG);
    const bySplit = new Map<string, string[]>();
    for (const k of keys) {
      const { split, id } = splitKey(k);
      bySplit.set(split, [...(bySplit.get(split) ?? []), id]);
    }
    let changed = 0;
    try {
      for (const [split, ids] of bySplit) {
        const res = await this.app.api.editSamples({ action, target: { case: "ids", value: { ids } }, split, tag: name, value: mode === "add" ? value : "" });
        changed += Number(res.changed);
      }
      toast("success", `${mode === "add" ? "Painted" : "Erased"} ${tag} on ${fmtInt(keys.length)} sample${keys.length === 1 ? "" : "s"} (${fmtInt(changed)} changed)`);
    } catch (err) {
      toast("error", `painting ${tag} failed: ${errorText(err)}`);
    }
    await Promise.all([this.app.loadCounts(), this.app.loadTags()]);
    this.app.edited.emit();
    return changed;
  }
}
