// Detail modal: full-resolution media (streamed, bounded cache), label vs prediction, every
// column, the per-sample loss trajectory; ←/→ walk the current view, Esc closes.

import { errorText, isAborted } from "../api/client.js";
import { formatCell, num, sampleKey, type Row } from "../api/model.js";
import type { EditKind, Studio } from "../app.js";
import { Superseded } from "../scheduler.js";
import { labelInfo } from "../labels.js";
import { byId, fmtInt, h, svg } from "./dom.js";
import { RelabelControls } from "./relabel.js";
import { toast } from "./toast.js";

const TRAJ_COLORS = ["#5b8cff", "#e7b14a", "#c678dd", "#3fb27f", "#f0686a"];

export class DetailModal {
  private readonly el = byId("detail-modal");
  private readonly img = byId<HTMLImageElement>("detail-image");
  private readonly progress = byId("detail-progress");
  private index = -1;
  private returnFocus: HTMLElement | null = null;
  private token = 0;
  private readonly relabel: RelabelControls;

  constructor(private readonly app: Studio, private readonly onWalk: (index: number) => void) {
    byId("detail-close").addEventListener("click", () => this.close());
    byId("detail-prev").addEventListener("click", () => void this.walk(-1));
    byId("detail-next").addEventListener("click", () => void this.walk(1));
    this.el.addEventListener("mousedown", (e) => {
      if (e.target === this.el) this.close();
    });
    this.el.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation();
        this.close();
      } else if ((e.key === "ArrowLeft" || e.key === "ArrowRight") && !(e.target instanceof HTMLInputElement)) {
        e.preventDefault();
        e.stopPropagation();
        void this.walk(e.key === "ArrowLeft" ? -1 : 1);
      } else if (e.key === "l" && !(e.target instanceof HTMLInputElement)) {
        e.preventDefault(); // l: relabel this sample
        this.relabel.focus();
      } else if (e.key === "Tab") {
        this.trapFocus(e);
      }
    });
    if (!app.config.sandbox) {
      const tagIn = h("input", { id: "detail-tag-name", class: "wl-write", type: "text", placeholder: "tag or name=value", list: "tag-names", "aria-label": "Tag name" });
      const mk = (text: string, kind: EditKind, cls = ""): HTMLButtonElement => {
        const b = h("button", { type: "button", class: `wl-btn wl-write ${cls}`.trim(), "data-action": kind, text });
        b.addEventListener("click", () => void this.edit(kind, tagIn.value));
        return b;
      };
      tagIn.addEventListener("keydown", (e) => {
        if (e.key === "Enter") void this.edit("tag", tagIn.value);
      });
      byId("detail-actions").append(tagIn, mk("Tag", "tag"), mk("Untag", "untag"), mk("Discard", "discard", "wl-danger"), mk("Restore", "restore"));
    }
    // Label corrections act on this sample only (disabled in sandbox mode).
    this.relabel = new RelabelControls(app, "detail-relabel", (fn) => this.onThisSample(fn));
    byId("detail-actions").append(this.relabel.el);
    app.view.events.on((e) => {
      if (e.type === "rows" && this.isOpen() && this.index >= e.start && this.index < e.end) this.renderInfo();
    });
  }

  isOpen(): boolean {
    return !this.el.hidden;
  }

  async open(index: number): Promise<void> {
    if (!this.isOpen()) this.returnFocus = document.activeElement as HTMLElement | null;
    this.el.hidden = false;
    await this.show(index);
    byId("detail-close").focus({ preventScroll: true });
  }

  close(): void {
    if (!this.isOpen()) return;
    this.el.hidden = true;
    this.app.fullres.cancel();
    this.img.removeAttribute("src");
    this.returnFocus?.focus({ preventScroll: true });
  }

  private async walk(delta: number): Promise<void> {
    const next = this.index + delta;
    if (next < 0 || next >= this.app.view.total) return;
    await this.show(next);
  }

  private async show(index: number): Promise<void> {
    const view = this.app.view;
    this.index = index;
    const my = ++this.token;
    if (!view.row(index)) await view.ensure(index, index + 1);
    if (my !== this.token) return;
    const row = view.row(index);
    if (!row) return;
    this.onWalk(index);
    this.el.dataset.sampleId = row.id;
    this.el.dataset.split = row.split;
    this.renderInfo();
    void this.loadImage(row, my);
    void this.loadTrajectory(row, my);
    // Neighbours' rows ready before the next arrow press.
    void view.ensure(Math.max(0, index - 2), index + 3);
  }

  private renderInfo(): void {
    const row = this.app.view.row(this.index);
    if (!row) return;
    const view = this.app.view;
    byId("detail-title").textContent = `#${row.id}`;
    byId("detail-pos").textContent = `${row.split} · ${fmtInt(this.index + 1)} of ${fmtInt(view.total)}${row.discarded ? " · discarded" : ""}`;
    const lv = view.value(this.index, "label");
    const pv = view.value(this.index, "prediction");
    byId("detail-label").textContent = formatCell(lv ?? null);
    const li = labelInfo(lv, view.value(this.index, "original_label"), view.value(this.index, "suggested_label"));
    const orig = byId("detail-original");
    orig.hidden = !li.corrected;
    orig.textContent = li.corrected ? `corrected · was ${formatCell(li.original)}` : "";
    byId("detail-suggested").textContent = formatCell(li.suggested);
    byId("detail-suggested").closest(".wl-lp-sugg")!.classList.toggle("differs", li.differs);
    this.el.dataset.corrected = String(li.corrected);
    if (row.id !== this.el.dataset.shownId) {
      this.el.dataset.shownId = row.id; // another sample: the last one's error goes
      this.relabel.showError(null);
    }
    byId("detail-prediction").textContent = formatCell(pv ?? null);
    const lp = byId("detail-label").closest(".wl-lp")!;
    lp.classList.toggle("wrong", lv != null && pv != null && lv !== pv);
    lp.classList.toggle("right", lv != null && pv != null && lv === pv);
    const tags = [...row.tags.map((t) => h("span", { class: "wl-tag", text: t })),
      ...Object.entries(row.categories).map(([k, v]) => h("span", { class: "wl-tag wl-cat", text: `${k}=${v}` }))];
    byId("detail-tags").replaceChildren(...(tags.length ? tags : [h("span", { class: "wl-muted", text: "no tags" })]));
    const rows = [
      h("tr", {}, h("td", { text: "sample_id" }), h("td", { text: row.id })),
      h("tr", {}, h("td", { text: "split" }), h("td", { text: row.split })),
      h("tr", {}, h("td", { text: "discarded" }), h("td", { text: String(row.discarded) })),
      ...view.columns.map((c, i) => h("tr", {}, h("td", { text: c.name }), h("td", { title: String(row.values[i] ?? ""), text: formatCell(row.values[i] ?? null) }))),
    ];
    byId("detail-columns").replaceChildren(h("tbody", {}, ...rows));
  }

  private async loadImage(row: Row, my: number): Promise<void> {
    const thumb = this.app.thumbs.url(row);
    if (thumb) this.img.src = thumb;
    else this.img.removeAttribute("src");
    this.img.alt = `sample ${row.id} (${row.split})`;
    this.progress.textContent = "loading full resolution…";
    try {
      const full = await this.app.fullres.load(row.id, row.split, (loaded, total) => {
        if (my === this.token) this.progress.textContent = total ? `${Math.round((100 * loaded) / total)}%` : `${fmtInt(loaded)} bytes`;
      });
      if (my !== this.token) return;
      this.img.src = full.url;
      const info = `${full.mime || "media"} · ${fmtBytes(full.bytes)}`;
      this.progress.textContent = info;
      this.img.decode().then(() => {
        if (my === this.token) this.progress.textContent = `${this.img.naturalWidth}×${this.img.naturalHeight} px · ${info}`;
      }, () => {});
    } catch (err) {
      if (my !== this.token || err instanceof Superseded || isAborted(err)) return;
      this.progress.textContent = `full resolution unavailable: ${errorText(err)}`;
    }
  }

  private async loadTrajectory(row: Row, my: number): Promise<void> {
    const el = byId<SVGSVGElement & HTMLElement>("detail-trajectory");
    const legend = byId("detail-legend");
    try {
      const res = await this.app.scheduler.run("trajectory", () => this.app.api.getTrajectory({ sampleId: row.id, split: row.split, maxPoints: 400 }));
      if (my !== this.token) return;
      const all = res.trajectories.map((t) => ({ signal: t.signal, steps: t.steps.map(num), values: t.values }));
      const losses = all.filter((t) => /loss/i.test(t.signal));
      const shown = (losses.length ? losses : all.slice(0, 1)).filter((t) => t.steps.length);
      drawTrajectory(el, shown);
      legend.replaceChildren(...shown.map((t, i) => {
        const sw = h("i");
        sw.style.setProperty("--swatch", TRAJ_COLORS[i % TRAJ_COLORS.length]!);
        return h("span", {}, sw, `${t.signal} (${fmtInt(t.steps.length)} points)`);
      }));
      if (!shown.length) legend.replaceChildren(h("span", { class: "wl-muted", text: "no per-sample history yet" }));
    } catch (err) {
      if (my !== this.token || err instanceof Superseded) return;
      el.replaceChildren();
      legend.replaceChildren(h("span", { class: "wl-muted", text: `trajectory unavailable: ${errorText(err)}` }));
    }
  }

  /** Runs an edit with the selection set to this modal's sample, then puts the selection back. */
  private async onThisSample<T>(fn: () => Promise<T>): Promise<T> {
    const row = this.app.view.row(this.index);
    if (!row) throw new Error("no sample shown");
    const before = this.app.selection.all();
    this.app.selection.setMany([sampleKey(row.split, row.id)]);
    try {
      return await fn();
    } finally {
      this.app.selection.setMany(before);
    }
  }

  private async edit(kind: EditKind, tag: string): Promise<void> {
    const row = this.app.view.row(this.index);
    if (!row) return;
    // The modal acts on its sample only: a one-sample selection for the edit.
    const before = this.app.selection.all();
    this.app.selection.setMany([sampleKey(row.split, row.id)]);
    try {
      const r = await this.app.edit(kind, tag, false);
      toast("success", `${kind} #${row.id}: ${r.changed ? "done" : "no change"}`);
    } catch (err) {
      toast("error", `${kind} failed: ${errorText(err)}`);
    } finally {
      this.app.selection.setMany(before);
    }
  }

  private trapFocus(e: KeyboardEvent): void {
    const items = [...this.el.querySelectorAll<HTMLElement>("button, input, [tabindex]")].filter((x) => !x.hidden);
    if (!items.length) return;
    const first = items[0]!;
    const last = items[items.length - 1]!;
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  }
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function drawTrajectory(el: SVGSVGElement, series: Array<{ signal: string; steps: number[]; values: number[] }>): void {
  // Drawn in the element's own pixels so the text is never stretched.
  const W = Math.max(200, Math.round(el.clientWidth || 360)), H = Math.max(80, Math.round(el.clientHeight || 130));
  const L = 40, R = 8, T = 10, B = 16;
  el.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const nodes: SVGElement[] = [];
  const pts = series.flatMap((s) => s.steps.map((x, i) => [x, s.values[i] ?? NaN] as const)).filter(([, y]) => Number.isFinite(y));
  if (!pts.length) {
    el.replaceChildren();
    return;
  }
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(0, Math.min(...ys)), y1 = Math.max(...ys);
  const sx = (x: number): number => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R);
  const sy = (y: number): number => T + (1 - (y - y0) / (y1 - y0 || 1)) * (H - T - B);
  nodes.push(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
  nodes.push(svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
  const label = (x: number, y: number, text: string, anchor = "end"): void => {
    const t = svg("text", { x, y, "text-anchor": anchor });
    t.textContent = text;
    nodes.push(t);
  };
  label(L - 3, T + 8, formatCell(y1));
  label(L - 3, H - B, formatCell(y0));
  label(L, H - 3, `step ${fmtInt(x0)}`, "start");
  label(W - R, H - 3, fmtInt(x1));
  series.forEach((s, k) => {
    const d = s.steps.map((x, i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(s.values[i] ?? 0).toFixed(1)}`).join("");
    nodes.push(svg("path", { d, fill: "none", stroke: TRAJ_COLORS[k % TRAJ_COLORS.length], "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }));
  });
  el.replaceChildren(...nodes);
}
