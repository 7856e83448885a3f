// One plot card: the signals of one group drawn with uPlot (canvas), one line per
// (signal, split, branch), a min/max band, EMA smoothing, evaluation markers, drag-to-zoom that
// asks the server for the visible range re-downsampled, CSV / PNG export, and slice curves.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { buildChartData, type ChartData, type Line, nearestStep, toCsv } from "../../plots/chart.js";
import "../../notes.css";
import type { PlotNote } from "../../plots/notes.js";
import type { MarkerInfo, Series } from "../../plots/store.js";
import { clear, fmtInt, h } from "../dom.js";

const COLORS = ["#5b8cff", "#e7b14a", "#3fb27f", "#c678dd", "#f0686a", "#56b6c2", "#d19a66", "#98c379", "#e06c9f", "#7f8ccf"];
const CHART_HEIGHT = 150;

export interface SliceCurve {
  signal: string;
  tags: string[];
  branch: string;
  steps: number[];
  values: number[];
  matched: number;
}

export interface ZoomState {
  lo: number;
  hi: number;
  /** Points inside [lo, hi] the card held before asking (what the re-downsampled answer beats). */
  before: number;
  series: Series[] | null;
  error?: string;
}

/** What a card needs from the board. */
export interface CardHost {
  series(signal: string): Series[];
  version(signal: string): number;
  markers(): MarkerInfo[];
  /** The run's notes (browser-local), drawn as pins at their step on every card. */
  notes(): readonly PlotNote[];
  removeNote(id: string): void;
  branches(): string[];
  currentBranch(): string;
  /** Cards it can be merged with: [id, title]. */
  otherCards(id: string): Array<[string, string]>;
  merge(into: string, from: string): void;
  split(id: string): void;
  zoom(card: PlotCard, lo: number, hi: number): void;
  exportCsv(card: PlotCard): void;
  openMenu(card: PlotCard, step: number, x: number, y: number): void;
  saveCardPrefs(card: PlotCard): void;
}

interface Drawn {
  line: Line;
  label: string;
  signal: string;
  branch: string;
  split: string;
  kind: "curve" | "slice";
  color: string;
  dash: boolean;
  slice?: SliceCurve;
}

export class PlotCard {
  readonly el: HTMLElement;
  smoothing = 0;
  band = true;
  zoomState: ZoomState | null = null;
  slices: SliceCurve[] = [];
  visible = true;
  dirty = true;
  private plot: uPlot | null = null;
  private shape = "";
  private drawnKey = "";
  private drawn: Drawn[] = [];
  private data: ChartData | null = null;
  private readonly chartBox: HTMLElement;
  private readonly title: HTMLElement;
  private readonly info: HTMLElement;
  private readonly legend: HTMLElement;
  private readonly markerList: HTMLElement;
  private readonly noteList: HTMLElement;
  private readonly mergeSelect: HTMLSelectElement;
  private readonly splitBtn: HTMLButtonElement;
  private readonly resetZoomBtn: HTMLButtonElement;
  private width = 300;
  private legendSig = "";
  private markerSig = "";
  private noteSig = "";

  constructor(
    readonly id: string,
    public signals: string[],
    private readonly host: CardHost,
    prefs: { smoothing?: number; band?: boolean } = {},
  ) {
    this.smoothing = prefs.smoothing ?? 0;
    this.band = prefs.band ?? true;
    this.title = h("div", { class: "wl-plot-title" });
    this.info = h("span", { class: "wl-plot-info wl-muted" });
    const smooth = h("input", {
      class: "wl-plot-smooth", type: "range", min: 0, max: 0.99, step: 0.01, value: this.smoothing,
      title: "Smoothing (exponential moving average)", "aria-label": "Smoothing",
    });
    smooth.addEventListener("input", () => {
      this.smoothing = Number(smooth.value);
      smooth.title = `Smoothing ${this.smoothing.toFixed(2)}`;
      this.invalidate();
      this.host.saveCardPrefs(this);
    });
    const bandBox = h("input", { class: "wl-plot-band", type: "checkbox", checked: this.band, "aria-label": "min/max band" });
    bandBox.addEventListener("change", () => {
      this.band = bandBox.checked;
      this.invalidate(true);
      this.host.saveCardPrefs(this);
    });
    this.mergeSelect = h("select", { class: "wl-plot-merge", title: "Merge another card into this one", "aria-label": "Merge a card into this one" });
    this.mergeSelect.addEventListener("focus", () => this.fillMerge());
    this.mergeSelect.addEventListener("mousedown", () => this.fillMerge());
    this.mergeSelect.addEventListener("change", () => {
      const from = this.mergeSelect.value;
      if (from) this.host.merge(this.id, from);
    });
    this.splitBtn = h("button", { class: "wl-btn wl-small wl-plot-split", type: "button", title: "One card per signal again", text: "split" });
    this.splitBtn.addEventListener("click", () => this.host.split(this.id));
    this.resetZoomBtn = h("button", { class: "wl-btn wl-small wl-plot-reset-zoom", type: "button", title: "Show every step (or double-click the chart)", text: "⤢ all", hidden: true });
    this.resetZoomBtn.addEventListener("click", () => this.resetZoom());
    const csv = h("button", { class: "wl-btn wl-small wl-plot-csv", type: "button", title: "Download the points as CSV (full resolution, from the server)", text: "CSV" });
    csv.addEventListener("click", () => this.host.exportCsv(this));
    const png = h("button", { class: "wl-btn wl-small wl-plot-png", type: "button", title: "Download the chart as PNG", text: "PNG" });
    png.addEventListener("click", () => this.exportPng());
    this.chartBox = h("div", { class: "wl-plot-canvas" });
    this.legend = h("div", { class: "wl-plot-legend" });
    this.markerList = h("div", { class: "wl-plot-markers" });
    this.noteList = h("div", { class: "wl-plot-notes" });
    this.el = h("section", { class: "wl-plot-card", "data-card": id },
      h("div", { class: "wl-plot-head" }, this.title, this.info, h("span", { class: "wl-spacer" }), this.resetZoomBtn,
        h("label", { class: "wl-plot-ctl", title: "Smoothing" }, "≈", smooth),
        h("label", { class: "wl-plot-ctl", title: "min/max band" }, bandBox, "band"),
        this.mergeSelect, this.splitBtn, csv, png),
      this.chartBox, this.legend, this.markerList, this.noteList);
    this.chartBox.addEventListener("contextmenu", (e) => this.onContextMenu(e));
    this.chartBox.addEventListener("dblclick", () => this.resetZoom());
    this.fillMerge();
    this.paintTitle();
  }

  setSignals(signals: string[]): void {
    this.signals = signals;
    this.paintTitle();
    this.invalidate(true);
  }

  private paintTitle(): void {
    this.el.dataset.signals = this.signals.join(",");
    this.title.textContent = this.signals.join(" · ");
    this.splitBtn.hidden = this.signals.length < 2;
  }

  private fillMerge(): void {
    const options = this.host.otherCards(this.id);
    const sig = options.map(([i]) => i).join("\u0000");
    if (this.mergeSelect.dataset.sig === sig) return;
    this.mergeSelect.dataset.sig = sig;
    this.mergeSelect.replaceChildren(h("option", { value: "", text: "⊕ merge" }),
      ...options.map(([value, text]) => h("option", { value, text })));
    this.mergeSelect.value = "";
  }

  /** Something this card shows changed; `rebuild`: the set of series or their style changed. */
  invalidate(rebuild = false): void {
    if (rebuild) this.shape = "";
    this.drawnKey = "";
    this.dirty = true;
  }

  setWidth(width: number): void {
    const w = Math.max(120, Math.floor(width));
    if (w === this.width) return;
    this.width = w;
    if (this.plot) this.plot.setSize({ width: w, height: CHART_HEIGHT });
    this.dirty = true;
  }

  /** Points per series to ask the server for: about two per pixel. */
  maxPoints(): number {
    return Math.max(64, Math.min(4000, Math.round(this.width * 2)));
  }

  /** Whether a poll brought something this card shows. */
  changedBy(signals: Set<string>): boolean {
    return this.signals.some((s) => signals.has(s));
  }

  setZoom(zoom: ZoomState | null): void {
    this.zoomState = zoom;
    this.resetZoomBtn.hidden = !zoom;
    this.el.dataset.zoomed = zoom ? "true" : "false";
    this.invalidate(true);
  }

  resetZoom(): void {
    if (this.zoomState) this.setZoom(null);
  }

  addSlices(curves: SliceCurve[]): void {
    const key = (c: SliceCurve): string => `${c.signal}|${c.tags.join("&")}|${c.branch}`;
    const fresh = new Set(curves.map(key));
    this.slices = [...this.slices.filter((c) => !fresh.has(key(c))), ...curves];
    this.invalidate(true);
  }

  /** Lines to draw (store or zoom answer, then slices) and their look. */
  private lines(): Drawn[] {
    const out: Drawn[] = [];
    const branches = this.host.branches();
    const current = this.host.currentBranch();
    const sources = this.zoomState?.series
      ? this.signals.map((s) => this.zoomState!.series!.filter((x) => x.signal === s))
      : this.signals.map((s) => this.host.series(s));
    const many = sources.flat().length > 1;
    sources.flat().forEach((s, i) => {
      const parts = [s.signal];
      if (s.split && many) parts.push(s.split);
      if (branches.length > 1 || s.branch !== current) parts.push(short(s.branch));
      out.push({
        line: { steps: s.steps, values: s.values }, label: parts.join(" · "), signal: s.signal, branch: s.branch,
        split: s.split, kind: "curve", color: COLORS[i % COLORS.length]!, dash: false,
      });
    });
    this.slices.forEach((c, i) => {
      out.push({
        line: { steps: c.steps, values: c.values }, label: `${c.signal} | ${c.tags.join(" & ")}${branches.length > 1 ? ` · ${short(c.branch)}` : ""}`,
        signal: c.signal, branch: c.branch, split: "", kind: "slice", color: COLORS[(out.length + i) % COLORS.length]!, dash: true, slice: c,
      });
    });
    return out;
  }

  /** Draws when something changed (called by the board inside one animation frame). */
  render(): void {
    if (!this.dirty || !this.visible) return;
    this.dirty = false;
    const drawn = this.lines();
    const versions = this.signals.map((s) => this.host.version(s)).join(",");
    const key = `${versions}|${this.smoothing}|${this.width}|${drawn.length}|${this.zoomState ? `${this.zoomState.lo}-${this.zoomState.hi}-${!!this.zoomState.series}` : ""}|${this.host.markers().length}|${this.host.notes().map((n) => n.id).join(",")}`;
    if (key === this.drawnKey && this.plot) return;
    this.drawnKey = key;
    this.drawn = drawn;
    const zoom = this.zoomState;
    const data = buildChartData(drawn.map((d) => d.line), {
      buckets: this.maxPoints(), smoothing: this.smoothing, xmin: zoom?.lo, xmax: zoom?.hi,
    });
    this.data = data;
    const shape = `${drawn.map((d) => `${d.label}/${d.color}/${d.dash}`).join("|")}|${this.band}|${document.documentElement.dataset.theme}`;
    const aligned = this.aligned(data);
    if (!this.plot || shape !== this.shape) {
      this.plot?.destroy();
      clear(this.chartBox);
      this.shape = shape;
      this.plot = new uPlot(this.options(drawn), aligned, this.chartBox);
    } else {
      this.plot.setData(aligned, true);
    }
    if (zoom) this.plot.setScale("x", { min: zoom.lo, max: zoom.hi });
    this.paintLegend(drawn);
    this.paintMarkers();
    this.paintNotes();
    const total = drawn.reduce((a, d) => a + d.line.steps.length, 0);
    setData(this.el, "series", drawn.filter((d) => d.kind === "curve").length);
    setData(this.el, "slices", drawn.filter((d) => d.kind === "slice").length);
    setData(this.el, "points", total);
    // the newest step drawn: grows with training even when the drawn points are at their budget
    const lastStep = drawn.reduce((m, d) => (d.line.steps.length ? Math.max(m, d.line.steps[d.line.steps.length - 1]) : m), -1);
    setData(this.el, "lastStep", lastStep);
    setData(this.el, "visiblePoints", data.points);
    let info: string;
    if (zoom) {
      setData(this.el, "zoomBefore", zoom.before);
      info = zoom.error
        ? `steps ${fmtInt(Math.round(zoom.lo))}–${fmtInt(Math.round(zoom.hi))} · ${zoom.error}`
        : zoom.series
          ? `steps ${fmtInt(Math.round(zoom.lo))}–${fmtInt(Math.round(zoom.hi))} · ${fmtInt(data.points)} points (was ${fmtInt(zoom.before)})`
          : `steps ${fmtInt(Math.round(zoom.lo))}–${fmtInt(Math.round(zoom.hi))} · loading…`;
    } else {
      if ("zoomBefore" in this.el.dataset) delete this.el.dataset.zoomBefore;
      const branches = new Set(drawn.filter((d) => d.kind === "curve").map((d) => d.branch)).size;
      info = `${branches > 1 ? `${branches} branches · ` : ""}${fmtInt(total)} pts`;
    }
    if (this.info.textContent !== info) this.info.textContent = info;
  }

  private aligned(data: ChartData): uPlot.AlignedData {
    const cols: Array<Array<number | null>> = [data.x];
    data.y.forEach((y, i) => {
      cols.push(y);
      if (this.band) cols.push(data.hi[i]!, data.lo[i]!);
    });
    return cols as unknown as uPlot.AlignedData;
  }

  private options(drawn: Drawn[]): uPlot.Options {
    const css = getComputedStyle(document.documentElement);
    const muted = css.getPropertyValue("--muted").trim() || "#737b8c";
    const grid = css.getPropertyValue("--border").trim() || "#272c37";
    const warn = css.getPropertyValue("--warn").trim() || "#e7b14a";
    const accent = css.getPropertyValue("--accent").trim() || "#5b8cff";
    const axis = { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: "11px sans-serif" };
    const series: uPlot.Series[] = [{ label: "step" }];
    const bands: uPlot.Band[] = [];
    for (const d of drawn) {
      series.push({ label: d.label, stroke: d.color, width: 1.5, spanGaps: true, points: { show: false }, dash: d.dash ? [6, 4] : undefined });
      if (this.band) {
        const hi = series.length;
        series.push({ label: `${d.label} max`, stroke: "rgba(0,0,0,0)", width: 0, spanGaps: true, points: { show: false } });
        series.push({ label: `${d.label} min`, stroke: "rgba(0,0,0,0)", width: 0, spanGaps: true, points: { show: false } });
        bands.push({ series: [hi, hi + 1], fill: `${d.color}2e` });
      }
    }
    return {
      width: this.width,
      height: CHART_HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      scales: { x: { time: false } },
      axes: [{ ...axis, size: 26 }, { ...axis, size: 46 }],
      series,
      bands,
      hooks: {
        setSelect: [(u) => this.onSelect(u)],
        draw: [(u) => this.drawMarkers(u, warn), (u) => this.drawNotes(u, accent)],
      },
    };
  }

  private onSelect(u: uPlot): void {
    const { left, width } = u.select;
    if (width < 4) return;
    const lo = u.posToVal(left, "x");
    const hi = u.posToVal(left + width, "x");
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    if (hi > lo) this.host.zoom(this, Math.floor(lo), Math.ceil(hi));
  }

  private drawMarkers(u: uPlot, color: string): void {
    const markers = this.host.markers();
    if (!markers.length) return;
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = devicePixelRatio;
    ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
    ctx.font = `${10 * devicePixelRatio}px sans-serif`;
    for (const m of markers) {
      const x = u.valToPos(m.step, "x", true);
      if (!(x >= left && x <= left + width)) continue;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
      ctx.fillText("◆", x - 4 * devicePixelRatio, top + 10 * devicePixelRatio);
    }
    ctx.restore();
  }

  /** Notes: a solid line on the canvas and a pin over it (its text on hover) at the note's step. */
  private drawNotes(u: uPlot, color: string): void {
    u.over.querySelectorAll(".wl-note-pin").forEach((p) => p.remove());
    const notes = this.host.notes();
    if (!notes.length) return;
    const { left, top, width, height } = u.bbox;
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = color;
    ctx.lineWidth = devicePixelRatio;
    for (const n of notes) {
      const x = u.valToPos(n.step, "x", true);
      if (!(x >= left && x <= left + width)) continue;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
      const pin = h("span", { class: "wl-note-pin", "data-note-id": n.id, "data-step": n.step, title: `note @ step ${fmtInt(n.step)}: ${n.text}`, text: "✎" });
      pin.style.left = `${u.valToPos(n.step, "x")}px`;
      u.over.append(pin);
    }
    ctx.restore();
  }

  private paintNotes(): void {
    const notes = this.host.notes();
    const sig = notes.map((n) => n.id).join("|");
    if (sig === this.noteSig) return;
    this.noteSig = sig;
    this.el.dataset.notes = String(notes.length);
    this.noteList.replaceChildren(...notes.map((n) => {
      const x = h("button", { class: "wl-plot-x wl-note-x", type: "button", title: "Remove this note", "aria-label": `Remove the note at step ${n.step}`, text: "✕" });
      x.addEventListener("click", () => this.host.removeNote(n.id));
      return h("span", { class: "wl-plot-note", "data-note-id": n.id, "data-step": n.step, title: n.text },
        `✎ @ ${fmtInt(n.step)} · ${n.text}`, x);
    }));
  }

  private paintLegend(drawn: Drawn[]): void {
    // Rebuilt only when what it says changes (a DOM change costs a style/layout pass).
    const sig = drawn.map((d) => `${d.kind}/${d.label}/${d.color}/${d.branch}/${d.line.steps.length}`).join("|");
    if (sig === this.legendSig) return;
    this.legendSig = sig;
    const items = drawn.map((d) => {
      const swatch = h("span", { class: d.dash ? "wl-plot-swatch wl-dashed" : "wl-plot-swatch" });
      swatch.style.setProperty("--c", d.color);
      const item = h("span", {
        class: "wl-plot-series", "data-kind": d.kind, "data-signal": d.signal, "data-branch": d.branch, "data-split": d.split,
        "data-points": d.line.steps.length, title: d.kind === "slice" ? `mean of ${d.slice!.matched} samples having ${d.slice!.tags.join(" and ")}` : `branch ${d.branch}`,
      }, swatch, d.label);
      if (d.slice) {
        const x = h("button", { class: "wl-plot-x", type: "button", title: "Remove this slice curve", text: "✕" });
        x.addEventListener("click", () => {
          this.slices = this.slices.filter((c) => c !== d.slice);
          this.invalidate(true);
        });
        item.append(x);
      }
      return item;
    });
    this.legend.replaceChildren(...items);
  }

  private paintMarkers(): void {
    const markers = this.host.markers();
    const sig = markers.map((m) => `${m.step}/${m.kind}/${m.text}`).join("|");
    if (sig === this.markerSig) return;
    this.markerSig = sig;
    this.el.dataset.markers = String(markers.length);
    const recent = markers.slice(-4);
    this.markerList.replaceChildren(...recent.map((m) => h("span", {
      class: "wl-plot-marker", "data-step": m.step, "data-kind": m.kind, title: m.text || m.kind,
      text: `◆ ${m.kind === "evaluation" ? "eval" : m.kind} @ ${fmtInt(m.step)}${m.text ? ` · ${m.text}` : ""}`,
    })));
    if (markers.length > recent.length) this.markerList.prepend(h("span", { class: "wl-muted", text: `+${markers.length - recent.length}` }));
  }

  private onContextMenu(e: MouseEvent): void {
    if (!this.plot || !this.data) return;
    e.preventDefault();
    const over = this.plot.over.getBoundingClientRect();
    const x = this.plot.posToVal(e.clientX - over.left, "x");
    const steps = this.drawn.filter((d) => d.kind === "curve").flatMap((d) => d.line.steps);
    steps.sort((a, b) => a - b);
    const step = nearestStep(steps, x) ?? Math.round(x);
    this.host.openMenu(this, step, e.clientX, e.clientY);
  }

  /** The curves of this card as CSV rows (the points the card holds). */
  csvOf(series: Series[]): string {
    const rows = series.flatMap((s) => s.steps.map((step, i) => ({ signal: s.signal, split: s.split, branch: s.branch, step, value: s.values[i]! })));
    return toCsv(rows);
  }

  exportPng(): void {
    if (!this.plot) return;
    const src = this.plot.ctx.canvas;
    const dpr = devicePixelRatio;
    const head = 22 * dpr;
    const canvas = document.createElement("canvas");
    canvas.width = src.width;
    canvas.height = src.height + head * 2;
    const ctx = canvas.getContext("2d")!;
    const css = getComputedStyle(document.documentElement);
    ctx.fillStyle = css.getPropertyValue("--panel").trim() || "#151820";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = css.getPropertyValue("--text").trim() || "#e3e6ec";
    ctx.font = `${12 * dpr}px sans-serif`;
    ctx.fillText(this.signals.join(" · "), 8 * dpr, 15 * dpr);
    ctx.drawImage(src, 0, head);
    let x = 8 * dpr;
    for (const d of this.drawn) {
      ctx.fillStyle = d.color;
      ctx.fillRect(x, canvas.height - head + 7 * dpr, 10 * dpr, 3 * dpr);
      ctx.fillText(d.label, x + 14 * dpr, canvas.height - head + 13 * dpr);
      x += (ctx.measureText(d.label).width + 30 * dpr);
    }
    canvas.toBlob((blob) => {
      if (blob) download(blob, `${fileName(this.signals)}.png`);
    }, "image/png");
  }

  destroy(): void {
    this.plot?.destroy();
    this.plot = null;
    this.el.remove();
  }
}

function setData(el: HTMLElement, key: string, value: number): void {
  const v = String(value);
  if (el.dataset[key] !== v) el.dataset[key] = v;
}

const short = (branch: string): string => (branch.length > 10 ? branch.slice(0, 8) : branch) || "—";

export function fileName(signals: string[]): string {
  return signals.join("+").replace(/[^\w.+-]+/g, "_").slice(0, 80) || "curves";
}

export function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
