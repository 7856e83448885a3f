// The plots board (right of the grid): one card per logged signal, fed by one incremental
// GetCurves poll through the Scheduler (per-client cursor, `max_points` ≈ 2 × chart width),
// drawn in one animation frame for the cards on screen only. Collapsible (no polling while
// collapsed) and resizable; layout, width and card preferences live in localStorage.

import { Code, errorCode, errorText, isUnauthenticated } from "../../api/client.js";
import { num } from "../../api/model.js";
import type { Studio } from "../../app.js";
import type { CurveSeries, GetCurvesResponse } from "../../gen/weightslab/v1/experiment_pb.js";
import { rangeOf } from "../../plots/chart.js";
import { CardLayout, matchesSearch } from "../../plots/layout.js";
import { NoteStore, type PlotNote } from "../../plots/notes.js";
import { CurveStore, type CurvesIn, type Series, seriesKey } from "../../plots/store.js";
import { clearCaches, refresh } from "../../refresh.js";
import { Superseded } from "../../scheduler.js";
import { h } from "../dom.js";
import { toast } from "../toast.js";
import { type CardHost, download, fileName, PlotCard, type SliceCurve } from "./card.js";
import { PlotMenu } from "./menu.js";

export const CURVES_INTERVAL_MS = 2000;
const KIND = "curves";
const LS_LAYOUT = "wl-plots-layout";
const LS_WIDTH = "wl-plots-width";
const LS_COLLAPSED = "wl-plots-collapsed";
const LS_CARDS = "wl-plots-cards";
const MIN_WIDTH = 240;

export interface PlotsHooks {
  /** Shows the samples of a training step in the grid. */
  highlightStep(step: number): void;
}

export function seriesOf(list: CurveSeries[]): Series[] {
  return list.map((s) => ({
    key: seriesKey(s.signal, s.split, s.branch), signal: s.signal, split: s.split, branch: s.branch,
    steps: s.points.map((p) => num(p.step)), values: s.points.map((p) => p.value),
  }));
}

export function curvesOf(res: GetCurvesResponse): CurvesIn {
  return {
    series: seriesOf(res.series),
    nextSeq: num(res.nextSeq),
    branches: [...res.branches],
    markers: res.markers.map((m) => ({ step: num(m.step), kind: m.kind, text: markerText(m.kind, m.detailsJson), branch: m.branch })),
  };
}

function markerText(kind: string, details: string): string {
  if (kind !== "evaluation" || !details) return "";
  try {
    const d = JSON.parse(details) as { metrics?: Record<string, number>; split?: string };
    const metrics = Object.entries(d.metrics ?? {}).slice(0, 2).map(([k, v]) => `${k} ${Number(v).toPrecision(3)}`);
    return [d.split, ...metrics].filter(Boolean).join(" · ");
  } catch {
    return "";
  }
}

/** The page's localStorage, or none where the browser refuses it (notes then live for the page only). */
function localStorageOrNull(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

function load<T>(key: string): T | undefined {
  try {
    const raw = localStorage.getItem(key);
    return raw === null ? undefined : (JSON.parse(raw) as T);
  } catch {
    return undefined;
  }
}

function save(key: string, value: unknown): void {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    /* private mode / quota: preferences just do not persist */
  }
}

export class PlotsBoard implements CardHost {
  readonly store = new CurveStore();
  readonly layout: CardLayout;
  private readonly cards = new Map<string, PlotCard>();
  private readonly cardsEl: HTMLElement;
  private readonly search: HTMLInputElement;
  private readonly stateEl: HTMLElement;
  private readonly menu: PlotMenu;
  private readonly prefs: Record<string, { smoothing?: number; band?: boolean }>;
  private frame = 0;
  private autoRefresh = true;
  private intervalMs = CURVES_INTERVAL_MS;
  private collapsed: boolean;
  private lastName: string | null = null;
  private readonly io: IntersectionObserver;
  /** Notes per run, in this browser's localStorage (no notes API on the server). */
  private readonly noteStore = new NoteStore(localStorageOrNull());

  constructor(private readonly app: Studio, readonly root: HTMLElement, hooks: PlotsHooks) {
    this.layout = new CardLayout(load<unknown>(LS_LAYOUT));
    this.prefs = load<Record<string, { smoothing?: number; band?: boolean }>>(LS_CARDS) ?? {};
    this.collapsed = load<boolean>(LS_COLLAPSED) ?? false;
    this.search = h("input", { id: "plots-search", type: "search", placeholder: "search signals", "aria-label": "Search signals", autocomplete: "off", spellcheck: "false" });
    this.search.addEventListener("input", () => this.syncCards());
    const mergeBtn = h("button", { id: "plots-merge", class: "wl-btn wl-small", type: "button", title: "Merge every signal matching the search into one card", text: "merge matching" });
    mergeBtn.addEventListener("click", () => this.mergeMatching());
    const collapse = h("button", { id: "plots-collapse", class: "wl-btn wl-small wl-icon", type: "button", title: "Collapse / expand the plots", "aria-label": "Collapse the plots" });
    collapse.addEventListener("click", () => this.setCollapsed(!this.collapsed));
    this.stateEl = h("span", { id: "plots-state", class: "wl-muted" });
    const handle = h("div", { class: "wl-plots-resize", role: "separator", "aria-orientation": "vertical", title: "Drag to resize the plots" });
    this.cardsEl = h("div", { id: "plots-cards", class: "wl-plots-cards" });
    root.replaceChildren(handle,
      h("div", { class: "wl-plots-head" }, h("h2", { text: "Plots" }), this.stateEl, h("span", { class: "wl-spacer" }), collapse),
      h("div", { class: "wl-plots-tools" }, this.search, mergeBtn),
      this.cardsEl);
    this.menu = new PlotMenu({
      sandbox: app.config.sandbox,
      tags: () => app.tags,
      loadTags: () => app.loadTags(),
      breakBySlices: (signal, tags) => this.breakBySlices(signal, tags),
      restore: (step) => this.restore(step),
      highlight: (step) => hooks.highlightStep(step),
      addNote: (step, text) => {
        const n = this.noteStore.add(step, text);
        this.notesChanged();
        toast("success", `Note added at step ${n.step} (kept in this browser)`);
      },
    });
    this.setupResize(handle);
    const width = load<number>(LS_WIDTH);
    if (width) this.root.style.width = `${Math.max(MIN_WIDTH, width)}px`;
    this.io = new IntersectionObserver((entries) => {
      for (const e of entries) {
        const card = this.cards.get((e.target as HTMLElement).dataset.card ?? "");
        if (!card) continue;
        card.visible = e.isIntersecting;
        if (card.visible) this.schedule();
      }
    }, { root: this.cardsEl, rootMargin: "200px" });
    new ResizeObserver(() => this.resize()).observe(this.cardsEl);
    new MutationObserver(() => {
      for (const c of this.cards.values()) c.invalidate(true);
      this.schedule();
    }).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    app.statusChanged.on((st) => {
      if (this.lastName !== null && st.name !== this.lastName) this.resetData();
      this.lastName = st.name;
      if (this.noteStore.setRun(st.name)) this.notesChanged();
    });
    this.paintCollapsed();
  }

  start(): void {
    this.app.scheduler.poll({
      kind: KIND,
      intervalMs: this.intervalMs,
      paused: this.collapsed || !this.autoRefresh,
      run: () => this.poll(),
      onError: (err) => this.onError(err),
    });
    // The header's refresh settings: plots auto-refresh on/off and its interval.
    refresh.subscribe((st) => this.setAutoRefresh(st.plotsAuto, st.plotsIntervalMs));
    clearCaches.on(() => this.reload());
    this.paintState();
  }

  /** Drops every point held and reads the curves again from the start. */
  reload(): void {
    this.resetData();
    this.refreshNow();
  }

  /** Auto-refresh on/off and its interval (the header's refresh settings). */
  setAutoRefresh(enabled: boolean, intervalMs: number): void {
    this.autoRefresh = enabled;
    if (Number.isFinite(intervalMs) && intervalMs >= 250) {
      this.intervalMs = intervalMs;
      this.app.scheduler.setInterval(KIND, intervalMs);
    }
    this.applyPolling();
  }

  /** One read now (e.g. after a write moved the run), whatever the auto-refresh setting. */
  refreshNow(): void {
    if (this.collapsed) return;
    if (this.autoRefresh) this.app.scheduler.trigger(KIND);
    else void this.app.scheduler.run(`${KIND}-once`, () => this.poll()).catch((err: unknown) => this.onError(err));
  }

  private applyPolling(): void {
    if (this.collapsed || !this.autoRefresh) this.app.scheduler.pause(KIND);
    else this.app.scheduler.resume(KIND);
    this.paintState();
  }

  private setCollapsed(collapsed: boolean): void {
    this.collapsed = collapsed;
    save(LS_COLLAPSED, collapsed);
    this.paintCollapsed();
    this.applyPolling();
  }

  private paintCollapsed(): void {
    this.root.dataset.collapsed = String(this.collapsed);
    const btn = this.root.querySelector<HTMLButtonElement>("#plots-collapse");
    if (btn) {
      btn.textContent = this.collapsed ? "«" : "»";
      btn.setAttribute("aria-expanded", String(!this.collapsed));
    }
  }

  private paintState(text?: string): void {
    this.root.dataset.auto = String(this.autoRefresh);
    this.stateEl.textContent = text ?? (this.autoRefresh ? "" : "auto-refresh off");
  }

  private setupResize(handle: HTMLElement): void {
    handle.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      handle.setPointerCapture(e.pointerId);
      const startX = e.clientX;
      const startW = this.root.getBoundingClientRect().width;
      const move = (ev: PointerEvent): void => {
        const max = Math.max(MIN_WIDTH, (this.root.parentElement?.getBoundingClientRect().width ?? 1200) - 240);
        const w = Math.min(max, Math.max(MIN_WIDTH, startW + (startX - ev.clientX)));
        this.root.style.width = `${Math.round(w)}px`;
      };
      const up = (): void => {
        handle.removeEventListener("pointermove", move);
        handle.removeEventListener("pointerup", up);
        save(LS_WIDTH, Math.round(this.root.getBoundingClientRect().width));
      };
      handle.addEventListener("pointermove", move);
      handle.addEventListener("pointerup", up);
    });
  }

  private resize(): void {
    const w = this.cardsEl.clientWidth - 22;
    for (const c of this.cards.values()) c.setWidth(w);
    this.schedule();
  }

  private maxPoints(): number {
    const first = this.cards.values().next().value as PlotCard | undefined;
    return first ? first.maxPoints() : Math.max(64, Math.min(4000, 2 * (this.cardsEl.clientWidth - 22)));
  }

  private async poll(): Promise<void> {
    const res = await this.app.api.getCurves({ sinceSeq: BigInt(this.store.cursor), maxPoints: this.maxPoints() });
    let changed = this.store.ingest(curvesOf(res));
    if (changed === null) {
      // The server's cursor went back: another process serves now. Read everything again.
      this.resetData();
      changed = this.store.ingest(curvesOf(await this.app.api.getCurves({ sinceSeq: 0n, maxPoints: this.maxPoints() }))) ?? new Set();
    }
    this.paintState();
    if (this.layout.sync(this.store.signals())) {
      save(LS_LAYOUT, this.layout.groups);
      this.syncCards();
    }
    for (const c of this.cards.values()) if (c.changedBy(changed)) c.invalidate();
    this.schedule();
  }

  private onError(err: unknown): void {
    if (isUnauthenticated(err)) return; // the status poll shows the token screen
    if (errorCode(err) === Code.FailedPrecondition || errorCode(err) === Code.Unimplemented) {
      this.paintState(`curves unavailable: ${errorText(err)}`);
      return;
    }
    this.paintState(`retrying: ${errorText(err)}`);
  }

  private resetData(): void {
    this.store.reset();
    for (const c of this.cards.values()) {
      c.slices = [];
      c.setZoom(null);
    }
    this.schedule();
  }

  /** Cards follow the layout and the search (kept, created, removed, reordered). */
  private syncCards(): void {
    const groups = this.layout.groups;
    const wanted = new Set(groups.map(CardLayout.id));
    for (const [id, card] of this.cards) {
      if (!wanted.has(id)) {
        this.io.unobserve(card.el);
        card.destroy();
        this.cards.delete(id);
      }
    }
    const search = this.search.value.trim();
    const width = this.cardsEl.clientWidth - 22;
    const order: HTMLElement[] = [];
    for (const g of groups) {
      const id = CardLayout.id(g);
      let card = this.cards.get(id);
      if (!card) {
        card = new PlotCard(id, [...g], this, this.prefs[id]);
        card.setWidth(width);
        this.cards.set(id, card);
        this.io.observe(card.el);
      } else if (card.signals.join("\u0000") !== g.join("\u0000")) {
        card.setSignals([...g]);
      }
      card.el.hidden = !!search && !g.some((s) => matchesSearch(s, search));
      order.push(card.el);
    }
    const empty = order.length ? null : h("div", { class: "wl-plots-empty wl-muted", text: "No signal logged yet." });
    this.cardsEl.replaceChildren(...order, ...(empty ? [empty] : []));
    this.cardsEl.dataset.cards = String(order.filter((e) => !e.hidden).length);
    this.schedule();
  }

  private mergeMatching(): void {
    const search = this.search.value.trim();
    if (!search) {
      toast("info", "Type part of the signal names to merge (e.g. “loss”).");
      return;
    }
    const matching = this.store.signals().filter((s) => matchesSearch(s, search));
    if (matching.length < 2) {
      toast("info", `${matching.length} signal matches “${search}”: nothing to merge.`);
      return;
    }
    this.layout.mergeAll(matching);
    save(LS_LAYOUT, this.layout.groups);
    this.syncCards();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      for (const c of this.cards.values()) if (!c.el.hidden) c.render();
    });
  }

  // ---------------------------------------------------------------- CardHost
  series(signal: string): Series[] {
    return this.store.series(signal);
  }

  version(signal: string): number {
    return this.store.version(signal);
  }

  markers(): CurvesIn["markers"] {
    return this.store.markers;
  }

  notes(): readonly PlotNote[] {
    return this.noteStore.notes;
  }

  removeNote(id: string): void {
    if (this.noteStore.remove(id)) this.notesChanged();
  }

  private notesChanged(): void {
    for (const c of this.cards.values()) c.invalidate();
    this.schedule();
  }

  branches(): string[] {
    return this.store.branches;
  }

  currentBranch(): string {
    return this.app.status?.branch ?? "";
  }

  otherCards(id: string): Array<[string, string]> {
    return this.layout.groups.filter((g) => CardLayout.id(g) !== id).map((g) => [CardLayout.id(g), g.join(" · ")]);
  }

  merge(into: string, from: string): void {
    this.layout.merge(into, from);
    save(LS_LAYOUT, this.layout.groups);
    this.syncCards();
  }

  split(id: string): void {
    this.layout.split(id);
    save(LS_LAYOUT, this.layout.groups);
    this.syncCards();
  }

  saveCardPrefs(card: PlotCard): void {
    this.prefs[card.id] = { smoothing: card.smoothing, band: card.band };
    save(LS_CARDS, this.prefs);
    this.schedule();
  }

  zoom(card: PlotCard, lo: number, hi: number): void {
    let before = 0;
    for (const s of card.signals) {
      for (const x of this.store.series(s)) {
        const [a, b] = rangeOf(x.steps, lo, hi);
        before += b - a;
      }
    }
    card.setZoom({ lo, hi, before, series: null });
    this.schedule();
    // One request for the visible range, re-downsampled by the server (extremes kept).
    this.app.scheduler.run(`${KIND}-zoom:${card.id}`, () => this.app.api.getCurves({
      signals: card.signals, minStep: BigInt(lo), maxStep: BigInt(hi), maxPoints: card.maxPoints(),
    })).then((res) => {
      const z = card.zoomState;
      if (!z || z.lo !== lo || z.hi !== hi) return;
      card.setZoom({ ...z, series: seriesOf(res.series) });
      this.schedule();
    }, (err: unknown) => {
      if (err instanceof Superseded) return;
      const z = card.zoomState;
      if (z && z.lo === lo && z.hi === hi) card.setZoom({ ...z, error: errorText(err) });
      this.schedule();
    });
  }

  exportCsv(card: PlotCard): void {
    const z = card.zoomState;
    this.app.scheduler.run(`${KIND}-export`, () => this.app.api.getCurves({
      signals: card.signals, maxPoints: 0,
      ...(z ? { minStep: BigInt(z.lo), maxStep: BigInt(z.hi) } : {}),
    })).then((res) => {
      const csv = card.csvOf(seriesOf(res.series));
      download(new Blob([csv], { type: "text/csv" }), `${fileName(card.signals)}.csv`);
    }, (err: unknown) => {
      if (!(err instanceof Superseded)) toast("error", `CSV export failed: ${errorText(err)}`);
    });
  }

  private menuCard: PlotCard | null = null;

  openMenu(card: PlotCard, step: number, x: number, y: number): void {
    this.menuCard = card;
    this.menu.open(card.signals, step, x, y);
  }

  private async breakBySlices(signal: string, tags: string[]): Promise<void> {
    const card = this.menuCard;
    let res;
    try {
      res = await this.app.api.breakBySlices({ signal, tags });
    } catch (err) {
      throw new Error(errorText(err));
    }
    const matched = num(res.matchedSamples);
    const curves: SliceCurve[] = seriesOf(res.series).map((s) => ({ signal, tags, branch: s.branch, steps: s.steps, values: s.values, matched }));
    if (!curves.length) {
      throw new Error(matched ? `${matched} samples have ${tags.join(" and ")}, but none has ${signal} recorded yet`
        : `no sample has ${tags.join(" and ")}`);
    }
    card?.addSlices(curves);
    this.schedule();
    toast("success", `${signal}: mean of ${matched} samples having ${tags.join(" and ")}`);
  }

  private async restore(step: number): Promise<void> {
    const api = this.app.api;
    const wasRunning = this.app.status?.state === "running";
    try {
      if (wasRunning) await api.pause({});
      const cp = await api.restoreCheckpoint({ target: { case: "step", value: BigInt(step) } });
      toast("success", `Restored checkpoint ${cp.id} (step ${num(cp.step)}); the run continues on branch ${cp.branch}.`);
    } catch (err) {
      throw new Error(errorText(err));
    } finally {
      if (wasRunning) await api.resume({}).catch(() => undefined);
      this.app.scheduler.trigger("status");
      this.refreshNow();
    }
  }
}
