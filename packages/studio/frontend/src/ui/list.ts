// The list view: the same rows as a table, virtualised (only the visible rows exist), with
// sortable headers (th[data-col]).

import { formatCell, sampleKey } from "../api/model.js";
import type { Studio } from "../app.js";
import { h } from "./dom.js";

const ROW_H = 27; // 26px + border
const OVERSCAN = 10;

export interface ListCallbacks {
  open(index: number): void;
  sortBy(column: string): void;
}

export class ListView {
  private frame = 0;
  private headSig = "";
  onScrollIndex: (first: number) => void = () => {};

  constructor(
    private readonly app: Studio,
    readonly wrap: HTMLElement,
    private readonly head: HTMLTableRowElement,
    private readonly body: HTMLTableSectionElement,
    private readonly cb: ListCallbacks,
  ) {
    wrap.addEventListener("scroll", () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.render()).observe(wrap);
    app.view.events.on((e) => {
      if (e.type === "reset" || e.type === "rows") this.render();
    });
    app.selection.changed.on(() => this.paintSelection());
    const refreshVisible = (): void => {
      if (this.wrap.hidden) return;
      const [s, e] = this.range();
      void app.view.refresh(s, e);
    };
    app.stepMoved.on(refreshVisible);
    app.edited.on(refreshVisible); // discarded / tags of the rows on screen changed
    this.body.addEventListener("click", (ev) => {
      const tr = (ev.target as HTMLElement).closest<HTMLTableRowElement>("tr.wl-row");
      if (!tr) return;
      const i = Number(tr.dataset.index);
      const row = this.app.view.row(i);
      if (!row) return;
      this.app.selection.click(i, sampleKey(row.split, row.id), { shift: ev.shiftKey, toggle: ev.ctrlKey || ev.metaKey },
        (a, b) => this.app.view.loadedRows(a, b + 1).map(([, r]) => sampleKey(r.split, r.id)));
    });
    this.body.addEventListener("dblclick", (ev) => {
      const tr = (ev.target as HTMLElement).closest<HTMLTableRowElement>("tr.wl-row");
      if (tr) this.cb.open(Number(tr.dataset.index));
    });
    this.head.addEventListener("click", (ev) => {
      const th = (ev.target as HTMLElement).closest<HTMLTableCellElement>("th[data-col]");
      if (th?.dataset.col) this.cb.sortBy(th.dataset.col);
    });
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
      this.onScrollIndex(this.firstVisible());
    });
  }

  range(): [number, number] {
    const top = Math.max(0, this.wrap.scrollTop);
    const s = Math.floor(top / ROW_H);
    const e = Math.min(this.app.view.total, Math.ceil((top + this.wrap.clientHeight) / ROW_H));
    return [s, e];
  }

  firstVisible(): number {
    return Math.floor(this.wrap.scrollTop / ROW_H);
  }

  scrollToIndex(i: number, mode: "start" | "nearest" = "nearest"): void {
    const y = i * ROW_H;
    const viewH = this.wrap.clientHeight - 30;
    if (mode === "start" || y < this.wrap.scrollTop) this.wrap.scrollTop = y;
    else if (y + ROW_H > this.wrap.scrollTop + viewH) this.wrap.scrollTop = y + ROW_H - viewH;
    this.render();
  }

  private renderHead(): void {
    const cols = this.app.view.columns;
    const sort = this.app.sort;
    const sig = cols.map((c) => c.name).join("|") + `#${sort?.column}:${sort?.descending}`;
    if (sig === this.headSig) return;
    this.headSig = sig;
    const ths = [h("th", { text: "#" }), h("th", { text: "sample" }), h("th", { text: "split" })];
    for (const c of cols) {
      const th = h("th", { "data-col": c.name, scope: "col", title: `sort by ${c.name}`, tabindex: 0, text: c.name });
      if (sort?.column === c.name) th.setAttribute("aria-sort", sort.descending ? "descending" : "ascending");
      th.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          this.cb.sortBy(c.name);
        }
      });
      ths.push(th);
    }
    ths.push(h("th", { text: "tags" }));
    this.head.replaceChildren(...ths);
  }

  render(): void {
    if (this.wrap.hidden) return;
    this.renderHead();
    const view = this.app.view;
    const [s0, e0] = this.range();
    const s = Math.max(0, s0 - OVERSCAN);
    const e = Math.min(view.total, e0 + OVERSCAN);
    void view.ensure(s, e + (e0 - s0) * this.app.config.maxPrefetchBatches);
    const ncols = view.columns.length + 4;
    const rows: HTMLTableRowElement[] = [];
    const top = h("tr", { class: "wl-pad" }, h("td", { colspan: ncols }));
    (top.firstChild as HTMLElement).style.height = `${s * ROW_H}px`;
    rows.push(top);
    for (let i = s; i < e; i++) {
      const r = view.row(i);
      if (!r) {
        const tr = h("tr", { class: "wl-row wl-loading", "data-index": i }, h("td", { class: "wl-numcell wl-muted", text: String(i + 1) }), h("td", { colspan: ncols - 1, class: "wl-muted", text: "…" }));
        rows.push(tr);
        continue;
      }
      const key = sampleKey(r.split, r.id);
      const selected = this.app.selection.hasAt(key, i); // by key, or a position lassoed in the grid
      const cls = ["wl-row", selected ? "selected" : "", r.discarded ? "discarded" : ""].filter(Boolean).join(" ");
      const tr = h("tr", { class: cls, "data-index": i, "data-sample-id": r.id, "data-split": r.split, "aria-selected": String(selected) },
        h("td", { class: "wl-numcell wl-muted", text: String(i + 1) }),
        h("td", { class: "wl-mono", text: r.id }),
        h("td", { text: r.split }),
      );
      view.columns.forEach((_c, ci) => {
        const v = r.values[ci] ?? null;
        tr.append(h("td", { class: typeof v === "number" ? "wl-numcell" : "", text: formatCell(v) }));
      });
      tr.append(h("td", { text: [...r.tags, ...Object.entries(r.categories).map(([k, v]) => `${k}=${v}`)].join(", ") }));
      rows.push(tr);
    }
    const bottom = h("tr", { class: "wl-pad" }, h("td", { colspan: ncols }));
    (bottom.firstChild as HTMLElement).style.height = `${Math.max(0, view.total - e) * ROW_H}px`;
    rows.push(bottom);
    this.body.replaceChildren(...rows);
  }

  private paintSelection(): void {
    for (const tr of this.body.querySelectorAll<HTMLTableRowElement>("tr.wl-row[data-sample-id]")) {
      const key = sampleKey(tr.dataset.split!, tr.dataset.sampleId!);
      tr.classList.toggle("selected", this.app.selection.hasAt(key, Number(tr.dataset.index)));
    }
  }
}
