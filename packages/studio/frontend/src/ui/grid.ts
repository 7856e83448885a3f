// The virtualised thumbnail grid: a pool of absolutely positioned cells for the visible rows
// (plus a small overscan), recycled while scrolling; rows and thumbnails are fetched for the
// visible range first, then the prefetch window in the direction of travel.

import { formatCell, sampleKey, type Row } from "../api/model.js";
import { labelBadge } from "../cockpit.js";
import { labelInfo } from "../labels.js";
import type { Studio } from "../app.js";
import { positionsInRect, type Span } from "../selection.js";
import { h } from "./dom.js";
import { splitColor } from "./palette.js";

const GAP = 6;
const PAD = 8;
const META_H = 34;
const OVERSCAN_ROWS = 2;

interface CellEl {
  el: HTMLDivElement;
  box: HTMLDivElement;
  lab: HTMLSpanElement;
  line1: HTMLDivElement;
  line2: HTMLDivElement;
  index: number;
  key: string | null;
  img: HTMLImageElement | null;
  /** The pinned thumbnail (ref + URL) this cell shows. */
  shown: { id: string; split: string; url: string } | null;
  /** The cell width its size styles were written for. */
  w: number;
}

export interface GridCallbacks {
  open(index: number): void;
}

export class GridView {
  cellW = 128;
  /** The cell size asked for in the Display card (cells widen to fill the row). */
  private targetW = 128;
  cols = 1;
  private cellH = 128 + META_H;
  private readonly cells = new Map<number, CellEl>();
  private readonly free: CellEl[] = [];
  private readonly byKey = new Map<string, CellEl>();
  private frame = 0;
  private lastTop = 0;
  private direction = 1;
  // Geometry read once per frame (scroll) or per resize, never between DOM writes: reading
  // clientHeight / scrollTop after a write forces a synchronous layout (the scroll's main cost).
  private top = 0;
  private viewH = 0;
  /** Thumbnails that arrived since the last frame: written to the cells in one batch. */
  private readonly thumbQueue = new Map<string, { url: string | null; error?: string }>();
  private orderTimer: ReturnType<typeof setTimeout> | undefined;
  private refillPending = false;
  private lasso: { x0: number; y0: number; base: string[]; baseSpans: Span[]; active: boolean; pointer: number; cellIndex: number | null } | null = null;
  showLabels = true;
  showSplit = true;
  /** Display card: the prediction in the badge, and the badge red when it differs from the label. */
  showPrediction = true;
  showCorrect = true;
  /** Display card: a fixed thumbnail resolution (px), or null = from the cell size. */
  thumbRes: number | null = null;
  displayCols: string[] = ["loss", "suspected_mislabel"];
  onScrollIndex: (first: number) => void = () => {};

  constructor(
    private readonly app: Studio,
    readonly el: HTMLElement,
    private readonly spacer: HTMLElement,
    private readonly lassoEl: HTMLElement,
    private readonly cb: GridCallbacks,
  ) {
    el.addEventListener("scroll", () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.layout()).observe(el);
    app.view.events.on((e) => {
      if (e.type === "reset") {
        this.recycleAll();
        this.layout();
      } else if (e.type === "rows") {
        // rows arrive between frames: written with the next frame's other DOM writes
        this.refillPending = true;
        this.schedule();
      }
    });
    app.thumbs.events.on((e) => {
      if (!this.byKey.has(e.key)) return;
      this.thumbQueue.set(e.key, { url: e.url, error: e.error });
      this.schedule();
    });
    app.selection.changed.on(() => this.paintSelection());
    const refreshVisible = (): void => {
      if (this.el.hidden) return;
      const [s, e] = this.range();
      void app.view.refresh(s, e);
    };
    app.stepMoved.on(refreshVisible);
    app.edited.on(refreshVisible); // discarded / tags of the rows on screen changed
    this.bindPointer();
  }

  get hidden(): boolean {
    return this.el.hidden;
  }

  setCellSize(px: number): void {
    const first = this.firstVisible();
    this.targetW = px;
    this.layout();
    this.scrollToIndex(first, "start");
  }

  /** Columns / rows geometry from the element's size. */
  layout(): void {
    this.viewH = this.el.clientHeight;
    this.top = this.el.scrollTop;
    const width = this.el.clientWidth - PAD * 2;
    // As many columns of the chosen size as fit, then widened to use the whole row.
    this.cols = Math.max(1, Math.floor((width + GAP) / (this.targetW + GAP)));
    this.cellW = Math.max(48, Math.floor((width + GAP) / this.cols) - GAP);
    this.cellH = this.cellW + META_H;
    const rows = Math.ceil(this.app.view.total / this.cols);
    this.spacer.style.height = `${PAD * 2 + rows * (this.cellH + GAP)}px`;
    const dpr = window.devicePixelRatio || 1;
    const want = this.cellW * dpr;
    this.app.thumbs.setSize(this.thumbRes ?? (want <= 96 ? 96 : want <= 160 ? 160 : want <= 256 ? 256 : 384));
    this.app.thumbs.batchSize = this.batchSize();
    if (this.app.config.maxImageCacheSize === null) {
      const limits = this.app.thumbs.cache.currentLimits;
      this.app.thumbs.cache.setLimits({ ...limits, maxEntries: (this.app.config.maxPrefetchBatches + 4) * this.batchSize() });
    }
    this.recycleAll();
    this.render();
    this.keepDomOrder();
  }

  /** Cells of one screen: the thumbnail batch size. */
  batchSize(): number {
    const visibleRows = Math.ceil(this.viewH / (this.cellH + GAP)) + 1;
    return Math.max(16, Math.min(512, visibleRows * this.cols));
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const top = this.el.scrollTop; // the frame's one read, before any write
      this.top = top;
      const moved = top !== this.lastTop;
      if (moved) this.direction = top > this.lastTop ? 1 : -1;
      this.lastTop = top;
      this.flushThumbs();
      const refill = this.refillPending;
      this.refillPending = false;
      if (!moved && this.cells.size) {
        if (refill) this.refill();
        return;
      }
      this.render();
      if (refill) this.refill();
      this.onScrollIndex(this.firstVisible());
      // Reordering the DOM moves nodes (style + layout of each): done once scrolling rests.
      clearTimeout(this.orderTimer);
      this.orderTimer = setTimeout(() => this.keepDomOrder(), 150);
    });
  }

  /** [first, end) positions on screen. */
  range(): [number, number] {
    const rowH = this.cellH + GAP;
    const top = Math.max(0, this.top - PAD);
    const r0 = Math.floor(top / rowH);
    const r1 = Math.ceil((top + this.viewH) / rowH);
    return [r0 * this.cols, Math.min(this.app.view.total, r1 * this.cols)];
  }

  firstVisible(): number {
    const rowH = this.cellH + GAP;
    return Math.min(Math.max(0, this.app.view.total - 1), Math.floor(Math.max(0, this.top - PAD) / rowH + 0.5) * this.cols);
  }

  scrollToIndex(i: number, mode: "start" | "nearest" = "nearest"): void {
    const rowH = this.cellH + GAP;
    const y = PAD + Math.floor(i / this.cols) * rowH;
    if (mode === "start") this.el.scrollTop = y - PAD;
    else if (y < this.el.scrollTop) this.el.scrollTop = y - PAD;
    else if (y + rowH > this.el.scrollTop + this.el.clientHeight) this.el.scrollTop = y + rowH - this.el.clientHeight + PAD;
    this.top = this.el.scrollTop;
    this.render();
    this.keepDomOrder();
  }

  private recycleAll(): void {
    for (const [i, c] of this.cells) {
      this.cells.delete(i);
      this.release(c);
    }
  }

  private release(c: CellEl): void {
    this.unpin(c);
    if (c.key && this.byKey.get(c.key) === c) this.byKey.delete(c.key);
    c.key = null;
    c.index = -1;
    c.el.hidden = true;
    // A pooled cell is no sample: nothing may find it by id.
    delete c.el.dataset.sampleId;
    delete c.el.dataset.split;
    delete c.el.dataset.index;
    c.el.classList.remove("wl-cell", "selected", "discarded", "focused", "relabeled");
    this.free.push(c);
  }

  private make(): CellEl {
    const box = h("div", { class: "wl-thumb-box" });
    const lab = h("span", { class: "wl-lab" });
    const line1 = h("div", { class: "wl-meta-line" });
    const line2 = h("div", { class: "wl-meta-line" });
    // A pooled slot is a `.wl-cell` only while it holds a loaded sample.
    const el = h("div", { class: "wl-slot", role: "gridcell" },
      h("span", { class: "wl-split" }), box, lab, h("span", { class: "wl-fix", text: "✎" }), h("span", { class: "wl-disc", text: "discarded" }),
      h("div", { class: "wl-meta" }, line1, line2));
    this.el.append(el);
    return { el, box, lab, line1, line2, index: -1, key: null, img: null, shown: null, w: -1 };
  }

  render(): void {
    if (this.el.hidden) return;
    const total = this.app.view.total;
    const [s, e] = this.range();
    const start = Math.max(0, s - OVERSCAN_ROWS * this.cols);
    const end = Math.min(total, e + OVERSCAN_ROWS * this.cols);
    for (const [i, c] of this.cells) {
      if (i < start || i >= end) {
        this.cells.delete(i);
        this.release(c);
      }
    }
    for (let i = start; i < end; i++) {
      let c = this.cells.get(i);
      if (!c) {
        c = this.free.pop() ?? this.make();
        this.cells.set(i, c);
        c.index = i;
        this.place(c, i);
        c.el.hidden = false;
        this.fill(c, i);
      }
    }
    this.fetchAround(s, e);
  }

  /** The thumbnails that arrived since the last frame, written in one batch. */
  private flushThumbs(): void {
    if (!this.thumbQueue.size) return;
    for (const [key, t] of this.thumbQueue) {
      const cell = this.byKey.get(key);
      if (cell) this.setThumb(cell, t.url, t.error);
    }
    this.thumbQueue.clear();
  }

  /** Live cells in document order = view order (screen readers, tests, tab order). */
  private keepDomOrder(): void {
    let prev: Element = this.spacer;
    const order = [...this.cells.keys()].sort((a, b) => a - b);
    for (const i of order) {
      const el = this.cells.get(i)!.el;
      if (prev.nextElementSibling !== el) prev.after(el);
      prev = el;
    }
  }

  private place(c: CellEl, i: number): void {
    const col = i % this.cols;
    const row = Math.floor(i / this.cols);
    const x = PAD + col * (this.cellW + GAP);
    const y = PAD + row * (this.cellH + GAP);
    c.el.style.transform = `translate(${x}px, ${y}px)`;
    if (c.w !== this.cellW) {
      // the size changes with the layout only, not while scrolling
      c.w = this.cellW;
      c.el.style.width = `${this.cellW}px`;
      c.el.style.height = `${this.cellH}px`;
      c.box.style.height = `${this.cellW - 8}px`;
    }
  }

  /** Refreshes the content of every live cell (rows arrived or changed). */
  refill(): void {
    for (const [i, c] of this.cells) this.fill(c, i);
    const [s, e] = this.range();
    this.fetchAround(s, e);
  }

  private fill(c: CellEl, i: number): void {
    const row = this.app.view.row(i);
    const key = row ? sampleKey(row.split, row.id) : null;
    c.el.dataset.index = String(i);
    if (key !== c.key) {
      if (c.key && this.byKey.get(c.key) === c) this.byKey.delete(c.key);
      c.key = key;
      if (key) this.byKey.set(key, c);
      this.setThumb(c, row ? this.app.thumbs.url(row) ?? null : null, row ? this.app.thumbs.error(row) : undefined, row);
    }
    if (!row) {
      // a recycled slot must not show the previous sample's picture while its row loads
      if (c.img || c.shown) this.setThumb(c, null);
      delete c.el.dataset.sampleId;
      delete c.el.dataset.split;
      c.el.classList.remove("wl-cell", "discarded", "selected", "relabeled");
      c.el.classList.add("wl-loading");
      c.line1.textContent = "";
      c.line2.textContent = "";
      c.lab.hidden = true;
      return;
    }
    c.el.classList.remove("wl-loading");
    c.el.classList.add("wl-cell");
    c.el.dataset.sampleId = row.id;
    c.el.dataset.split = row.split;
    c.el.classList.toggle("discarded", row.discarded);
    c.el.classList.toggle("selected", this.app.selection.hasAt(key!, i));
    c.el.classList.toggle("focused", this.app.selection.focus === i && document.activeElement === this.el);
    c.el.setAttribute("aria-selected", String(this.app.selection.hasAt(key!, i)));
    c.el.style.setProperty("--swatch", this.showSplit ? splitColor(row.split, this.app.counts.map((x) => x.name)) : "transparent");
    this.fillMeta(c, row);
  }

  private fillMeta(c: CellEl, row: Row): void {
    const view = this.app.view;
    const label = view.columnIndex("label");
    const pred = view.columnIndex("prediction");
    const lv = label >= 0 ? row.values[label] : null;
    const pv = pred >= 0 ? row.values[pred] : null;
    const badge = labelBadge(lv ?? null, pv ?? null, { label: this.showLabels, prediction: this.showPrediction, correct: this.showCorrect }, formatCell);
    if (badge) {
      c.lab.hidden = false;
      c.lab.textContent = badge.text;
      c.lab.classList.toggle("wrong", badge.wrong === true);
      c.lab.classList.toggle("right", badge.wrong === false);
      c.lab.title = `label ${formatCell(lv ?? null)} · prediction ${formatCell(pv ?? null)}`;
    } else c.lab.hidden = true;
    // a corrected label: the pen mark (and the original in the tooltips)
    const oi = view.columnIndex("original_label");
    const li = labelInfo(lv ?? null, oi >= 0 ? row.values[oi] : null, null);
    c.el.classList.toggle("relabeled", li.corrected);
    if (li.corrected) {
      const was = `label corrected: was ${formatCell(li.original)}, now ${formatCell(li.label)}`;
      (c.lab.nextElementSibling as HTMLElement).title = was;
      c.lab.title = `${c.lab.title} · ${was}`;
    }
    const tagged = row.tags.length > 0 || Object.keys(row.categories).length > 0;
    const tagText = [...row.tags, ...Object.entries(row.categories).map(([k, v]) => `${k}=${v}`)].join(", ");
    c.line1.replaceChildren(
      h("span", { class: "wl-id", title: `${row.id} (${row.split})`, text: `#${row.id}` }),
      tagged ? h("span", { class: "wl-metric wl-tagtext", title: tagText }, h("span", { class: "wl-tagdot" }), ` ${tagText}`) : h("span", { class: "wl-metric wl-muted", text: row.split }),
    );
    const parts: Node[] = [];
    for (const name of this.displayCols.slice(0, 2)) {
      const ci = view.columnIndex(name);
      if (ci < 0) continue;
      parts.push(h("span", { class: "wl-metric", title: `${name} = ${String(row.values[ci] ?? "—")}` }, h("i", { text: `${abbrev(name)} ` }), formatShort(row.values[ci] ?? null)));
    }
    c.line2.replaceChildren(...parts);
  }

  private unpin(c: CellEl): void {
    if (c.shown) this.app.thumbs.unpin(c.shown, c.shown.url);
    c.shown = null;
  }

  private setThumb(c: CellEl, url: string | null, error?: string, ref?: { id: string; split: string }): void {
    if (c.shown?.url !== url) {
      this.unpin(c);
      const r = ref ?? (c.index >= 0 ? this.app.view.row(c.index) : undefined);
      if (url && r) {
        c.shown = { id: r.id, split: r.split, url };
        this.app.thumbs.pin(c.shown, url);
      }
    }
    if (url) {
      if (!c.img) {
        c.img = h("img", { class: "wl-thumb", alt: "", draggable: "false", decoding: "async" });
        c.box.replaceChildren(c.img);
      }
      if (c.img.src !== url) c.img.src = url;
      c.box.classList.toggle("pixelated", true);
    } else {
      c.img = null;
      c.box.replaceChildren(...(error ? [h("div", { class: "wl-thumb-err", title: error, text: "no preview" })] : []));
    }
  }

  private paintSelection(): void {
    for (const c of this.cells.values()) {
      if (!c.key) continue;
      const sel = this.app.selection.hasAt(c.key, c.index);
      c.el.classList.toggle("selected", sel);
      c.el.setAttribute("aria-selected", String(sel));
      c.el.classList.toggle("focused", this.app.selection.focus === c.index && document.activeElement === this.el);
    }
  }

  /** Rows for the screen and the prefetch window; thumbnails visible first, then ahead. */
  private fetchAround(s: number, e: number): void {
    const view = this.app.view;
    const batch = this.batchSize();
    const ahead = this.app.config.maxPrefetchBatches * batch;
    const lo = this.direction > 0 ? s - batch : s - ahead;
    const hi = this.direction > 0 ? e + ahead : e + batch;
    void view.ensure(Math.max(0, lo), Math.min(view.total, hi));
    const visible = view.loadedRows(s, e).map(([, r]) => r);
    const forward = this.direction > 0
      ? view.loadedRows(e, e + ahead).map(([, r]) => r)
      : view.loadedRows(Math.max(0, s - ahead), s).reverse().map(([, r]) => r);
    const behind = this.direction > 0
      ? view.loadedRows(Math.max(0, s - batch), s).reverse().map(([, r]) => r)
      : view.loadedRows(e, e + batch).map(([, r]) => r);
    this.app.thumbs.want(visible, [...forward, ...behind]);
  }

  // ---------------------------------------------------------------- pointer: click, ctrl/shift, drag
  indexAt(clientX: number, clientY: number): number | null {
    const rect = this.el.getBoundingClientRect();
    const x = clientX - rect.left - PAD;
    const y = clientY - rect.top + this.el.scrollTop - PAD;
    if (x < 0 || y < 0) return null;
    const col = Math.floor(x / (this.cellW + GAP));
    const row = Math.floor(y / (this.cellH + GAP));
    if (col >= this.cols || x - col * (this.cellW + GAP) > this.cellW || y - row * (this.cellH + GAP) > this.cellH) return null;
    const i = row * this.cols + col;
    return i < this.app.view.total ? i : null;
  }

  private bindPointer(): void {
    this.el.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0) return;
      const rect = this.el.getBoundingClientRect();
      if (ev.clientX > rect.left + this.el.clientWidth) return; // the scrollbar
      const toggle = ev.ctrlKey || ev.metaKey;
      this.lasso = {
        x0: ev.clientX - rect.left,
        y0: ev.clientY - rect.top + this.el.scrollTop,
        base: toggle || ev.shiftKey ? this.app.selection.all() : [],
        baseSpans: toggle || ev.shiftKey ? this.app.selection.pending() : [],
        active: false,
        pointer: ev.pointerId,
        cellIndex: this.indexAt(ev.clientX, ev.clientY),
      };
      this.el.focus({ preventScroll: true });
    });
    this.el.addEventListener("pointermove", (ev) => {
      const l = this.lasso;
      if (!l || ev.pointerId !== l.pointer) return;
      const rect = this.el.getBoundingClientRect();
      const x = ev.clientX - rect.left;
      const y = ev.clientY - rect.top + this.el.scrollTop;
      if (!l.active && Math.hypot(x - l.x0, y - l.y0) < 6) return;
      if (!l.active) {
        l.active = true;
        this.el.setPointerCapture(ev.pointerId);
      }
      // Near the edges the grid scrolls on its own.
      if (ev.clientY > rect.bottom - 24) this.el.scrollTop += 18;
      else if (ev.clientY < rect.top + 24) this.el.scrollTop -= 18;
      const x0 = Math.min(l.x0, x), x1 = Math.max(l.x0, x), y0 = Math.min(l.y0, y), y1 = Math.max(l.y0, y);
      this.lassoEl.hidden = false;
      this.lassoEl.style.transform = `translate(${x0}px, ${y0}px)`;
      this.lassoEl.style.width = `${x1 - x0}px`;
      this.lassoEl.style.height = `${y1 - y0}px`;
      const { keys, positions } = this.keysInRect(x0, y0, x1, y1);
      this.app.selection.setMany(keys, l.base, positions, l.baseSpans);
    });
    const end = (ev: PointerEvent): void => {
      const l = this.lasso;
      if (!l || ev.pointerId !== l.pointer) return;
      this.lasso = null;
      this.lassoEl.hidden = true;
      if (l.active) {
        if (this.el.hasPointerCapture(ev.pointerId)) this.el.releasePointerCapture(ev.pointerId);
        return;
      }
      if (ev.type !== "pointerup" || l.cellIndex === null) return;
      this.clickIndex(l.cellIndex, { shift: ev.shiftKey, toggle: ev.ctrlKey || ev.metaKey });
    };
    this.el.addEventListener("pointerup", end);
    this.el.addEventListener("pointercancel", end);
    this.el.addEventListener("dblclick", (ev) => {
      const i = this.indexAt(ev.clientX, ev.clientY);
      if (i !== null && this.app.view.row(i)) this.cb.open(i);
    });
  }

  clickIndex(i: number, mods: { shift: boolean; toggle: boolean }): void {
    const row = this.app.view.row(i);
    if (!row) return;
    this.app.selection.click(i, sampleKey(row.split, row.id), mods, (a, b) =>
      this.app.view.loadedRows(a, b + 1).map(([, r]) => sampleKey(r.split, r.id)));
  }

  /** The cells a lasso covers: keys of the loaded rows, positions of the rows not loaded yet. */
  private keysInRect(x0: number, y0: number, x1: number, y1: number): { keys: string[]; positions: number[] } {
    const geometry = { cols: this.cols, cellW: this.cellW, cellH: this.cellH, gap: GAP, pad: PAD, total: this.app.view.total };
    const keys: string[] = [];
    const positions: number[] = [];
    for (const i of positionsInRect(x0, y0, x1, y1, geometry)) {
      const row = this.app.view.row(i);
      if (row) keys.push(sampleKey(row.split, row.id));
      else positions.push(i);
    }
    return { keys, positions };
  }

  /** Keyboard focus moved to position i (arrows). */
  focusIndex(i: number, extend: boolean): void {
    const total = this.app.view.total;
    if (!total) return;
    const j = Math.max(0, Math.min(total - 1, i));
    // Shift+arrow extends from where the focus was.
    if (extend && this.app.selection.anchor === null) this.app.selection.anchor = this.app.selection.focus;
    this.app.selection.focus = j;
    this.scrollToIndex(j);
    if (extend) this.clickIndex(j, { shift: true, toggle: false });
    this.paintSelection();
  }
}

/** Values under a cell: at most ~6 characters. */
export function formatShort(v: Row["values"][number]): string {
  if (typeof v !== "number") return formatCell(v);
  if (v === 0 || (Number.isInteger(v) && Math.abs(v) < 1e6)) return String(v);
  const a = Math.abs(v);
  if (a < 1e-2 || a >= 1e5) return v.toExponential(1).replace("e+", "e");
  if (a < 1) return v.toFixed(3);
  return Number(v.toPrecision(3)).toString();
}

function abbrev(name: string): string {
  if (name === "suspected_mislabel") return "mis";
  if (name.length <= 8) return name;
  return name.slice(0, 7) + "…";
}
