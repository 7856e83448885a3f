// Histogram of the sorted column above the view slider (by position when the view has no
// sort); at most config.histogramMaxBins bars, stacked by split, discarded rows in red.

import { errorText } from "../api/client.js";
import { formatCell, num } from "../api/model.js";
import type { Studio } from "../app.js";
import { HistogramMode } from "../gen/weightslab/v1/experiment_pb.js";
import { barAt, type Bar, binLabel, buildBars, sortOfQuery } from "../histmath.js";
import { splitQuery } from "../query.js";
import { Superseded } from "../scheduler.js";
import { byId, fmtInt } from "./dom.js";
import { cssVar } from "./theme.js";
import { splitColorValue } from "./palette.js";

export class HistogramView {
  private bars: Bar[] = [];
  private column = "";
  private logScale = true;
  private position = 0;
  private hover = -1;
  private readonly canvas = byId<HTMLCanvasElement>("histogram");
  private readonly title = byId("hist-title");
  private readonly info = byId("hist-info");

  constructor(private readonly app: Studio, private readonly jump: (pos: number) => void) {
    app.queryChanged.on(() => void this.load());
    new ResizeObserver(() => this.draw()).observe(this.canvas);
    this.canvas.addEventListener("mousemove", (e) => {
      this.hover = this.barAtX(e.offsetX);
      this.draw();
      this.describe(this.hover);
    });
    this.canvas.addEventListener("mouseleave", () => {
      this.hover = -1;
      this.draw();
      this.describe(-1);
    });
    this.canvas.addEventListener("click", (e) => {
      const b = this.barAtX(e.offsetX);
      if (b >= 0) this.jump(this.bars[b]!.start);
    });
  }

  /** The view position shown at the top of the board. */
  setPosition(pos: number): void {
    // Called on every scroll frame: redraw only when the marker moves to another bar.
    const before = barAt(this.bars, this.position);
    this.position = pos;
    if (barAt(this.bars, pos) !== before) this.draw();
  }

  private barAtX(x: number): number {
    if (!this.bars.length) return -1;
    const w = this.canvas.clientWidth / this.bars.length;
    return Math.max(0, Math.min(this.bars.length - 1, Math.floor(x / w)));
  }

  private sortColumn(): { column: string; descending: boolean } | null {
    if (this.app.sort) return this.app.sort;
    return sortOfQuery(splitQuery(this.app.view.query).clauses);
  }

  async load(): Promise<void> {
    const view = this.app.view;
    if (!view.loaded) return;
    const sort = this.sortColumn();
    const col = sort ? view.columns.find((c) => c.name === sort.column) : undefined;
    const query = view.query;
    const topK = /^(top|bottom)\b/i.test(splitQuery(query).clauses);
    const width = Math.max(64, this.canvas.clientWidth || 600);
    const bins = Math.max(1, Math.min(this.app.config.histogramMaxBins, Math.floor(width / 4)));
    const byValue = !!col && !topK && (col.kind === "number" || col.kind === "string" || col.kind === "bool");
    try {
      const res = await this.app.scheduler.run("histogram", () => this.app.api.getHistogram({
        query: query ? { kind: { case: "text", value: query } } : undefined,
        mode: byValue ? HistogramMode.BY_VALUE : HistogramMode.BY_POSITION,
        column: byValue ? col!.name : "",
        bins,
        sort: sort ? [{ column: sort.column, descending: sort.descending }] : [],
      }));
      const edges = res.edges;
      const cats = res.categories;
      const nbins = cats.length || Math.max(0, edges.length - 1);
      const series = res.series.map((s) => ({ split: s.split, discarded: s.discarded, counts: s.counts.map(num) }));
      // Category bins come most-frequent first, not in sort order: keep them as they are.
      const descending = byValue && !cats.length ? !!sort?.descending : false;
      this.bars = buildBars(series, nbins, descending, (b) =>
        byValue ? binLabel(edges, cats, b, (v) => formatCell(v)) : `positions ${fmtInt(Math.round(edges[b] ?? 0) + 1)}–${fmtInt(Math.round(edges[b + 1] ?? 0))}`);
      this.column = byValue ? col!.name : "position";
      this.logScale = byValue;
      const missing = num(res.missing);
      this.title.textContent = byValue
        ? `${col!.name} · ${this.bars.length} bins${sort?.descending ? " · high → low" : ""}${missing ? ` · ${fmtInt(missing)} without a value` : ""}`
        : "position in the view";
      this.draw();
    } catch (err) {
      if (err instanceof Superseded) return;
      this.bars = [];
      this.title.textContent = `histogram unavailable: ${errorText(err)}`;
      this.draw();
    }
  }

  private describe(b: number): void {
    const bar = this.bars[b];
    if (!bar) {
      this.info.textContent = "";
      return;
    }
    const parts = [...bar.bySplit.entries()].map(([s, c]) => `${s} ${fmtInt(c.active)}${c.discarded ? ` (+${fmtInt(c.discarded)} discarded)` : ""}`);
    this.info.textContent = `${this.column} ${bar.label} · ${fmtInt(bar.total)} samples${parts.length ? " · " + parts.join(", ") : ""} · click to jump`;
  }

  draw(): void {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * dpr));
    const hgt = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width !== w) c.width = w;
    if (c.height !== hgt) c.height = hgt;
    const ctx = c.getContext("2d");
    if (!ctx) return;
    ctx.clearRect(0, 0, w, hgt);
    const bars = this.bars;
    if (!bars.length) return;
    const max = Math.max(1, ...bars.map((b) => b.total));
    const bw = w / bars.length;
    const gap = bw > 6 * dpr ? Math.max(1, Math.round(dpr)) : 0;
    const splits = this.app.counts.map((s) => s.name);
    const bad = cssVar("--bad") || "#f0686a";
    const cur = barAt(bars, this.position);
    // log scale keeps small bins visible next to a dominant one
    const frac = (v: number): number => (this.logScale ? Math.log1p(v) / Math.log1p(max) : v / max);
    const scale = (v: number): number => (v ? Math.max(2 * dpr, frac(v) * (hgt - 2 * dpr)) : 0);
    bars.forEach((bar, i) => {
      let y = hgt;
      const x = i * bw;
      const used = scale(bar.total);
      let acc = 0;
      const order = [...bar.bySplit.entries()].sort((a, b) => a[0].localeCompare(b[0]));
      for (const [split, cnt] of order) {
        for (const [n, color, alpha] of [[cnt.active, splitColorValue(split, splits), 1], [cnt.discarded, bad, 0.9]] as const) {
          if (!n) continue;
          const part = bar.total ? (n / bar.total) * used : 0;
          ctx.globalAlpha = (i === this.hover ? 1 : 0.82) * alpha;
          ctx.fillStyle = color;
          ctx.fillRect(x, y - part, Math.max(1, bw - gap), part);
          y -= part;
          acc += n;
        }
      }
      void acc;
    });
    ctx.globalAlpha = 1;
    if (cur >= 0) {
      ctx.fillStyle = cssVar("--text") || "#fff";
      ctx.fillRect(Math.round(cur * bw + bw / 2 - dpr / 2), 0, Math.max(1, Math.round(dpr * 1.5)), hgt);
    }
  }
}
