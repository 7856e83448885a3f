// Quick-filter chips, the raw query box, the sort controls and the sub-view banner.

import type { Studio } from "../app.js";
import { type Chip, CHIP_OPS, type ChipOp, chipText, NULLARY_OPS, TAG_OPS } from "../query.js";
import { byId, fmtInt, h } from "./dom.js";
import { toast } from "./toast.js";

export class FilterBar {
  private readonly chipsEl = byId("chips");
  private readonly col = byId<HTMLSelectElement>("chip-col");
  private readonly op = byId<HTMLSelectElement>("chip-op");
  private readonly value = byId<HTMLInputElement>("chip-value");
  private readonly input = byId<HTMLInputElement>("query-input");
  private readonly error = byId<HTMLPreElement>("query-error");
  private readonly sortSelect = byId<HTMLSelectElement>("sort-select");
  private readonly sortDir = byId<HTMLButtonElement>("sort-dir");
  private readonly banner = byId("subview-banner");
  private readonly bannerText = byId("subview-text");
  private readonly reset = byId<HTMLButtonElement>("subview-reset");
  private colsSig = "";

  constructor(private readonly app: Studio) {
    for (const o of CHIP_OPS) this.op.append(h("option", { value: o, text: o }));
    this.op.addEventListener("change", () => this.syncEditor());
    byId("chip-add").addEventListener("click", () => void this.addChip());
    this.value.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        void this.addChip();
      }
    });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.app.raw = this.input.value.trim();
        void this.app.applyView();
      } else if (e.key === "Escape") {
        this.input.blur();
      }
    });
    this.sortSelect.addEventListener("change", () => {
      const v = this.sortSelect.value;
      this.setSort(v ? { column: v, descending: this.sortDir.dataset.dir !== "asc" } : null);
    });
    this.sortDir.addEventListener("click", () => {
      const desc = this.sortDir.dataset.dir !== "asc";
      this.sortDir.dataset.dir = desc ? "asc" : "desc";
      if (this.app.sort) this.setSort({ ...this.app.sort, descending: !desc });
      else this.paintSort();
    });
    byId("sort-loss").addEventListener("click", () => this.setSort({ column: "loss", descending: true }));
    byId("sort-mislabel").addEventListener("click", () => this.setSort({ column: "suspected_mislabel", descending: true }));
    this.reset.addEventListener("click", () => {
      this.app.chips = [];
      this.app.raw = "";
      this.input.value = "";
      this.renderChips();
      void this.app.applyView();
    });
    app.queryError.on((msg) => {
      this.error.hidden = !msg;
      this.error.textContent = msg ?? "";
      this.input.setAttribute("aria-invalid", msg ? "true" : "false");
    });
    app.view.events.on((e) => {
      if (e.type === "reset" || e.type === "loaded") {
        this.syncColumns();
        this.paintBanner();
      }
    });
    app.queryChanged.on(() => this.paintBanner());
    app.tagsChanged.on(() => this.syncColumns(true));
    this.syncEditor();
    this.paintSort();
  }

  setSort(sort: { column: string; descending: boolean } | null): void {
    this.app.sort = sort;
    if (sort) this.sortDir.dataset.dir = sort.descending ? "desc" : "asc";
    this.paintSort();
    void this.app.applyView();
  }

  private paintSort(): void {
    const s = this.app.sort;
    this.sortSelect.value = s?.column ?? "";
    const desc = this.sortDir.dataset.dir !== "asc";
    this.sortDir.textContent = desc ? "↓" : "↑";
    this.sortDir.title = desc ? "Descending (click for ascending)" : "Ascending (click for descending)";
    byId("sort-loss").setAttribute("aria-pressed", String(s?.column === "loss" && s.descending));
    byId("sort-mislabel").setAttribute("aria-pressed", String(s?.column === "suspected_mislabel" && s.descending));
  }

  private syncEditor(): void {
    const op = this.op.value as ChipOp;
    this.col.disabled = TAG_OPS.has(op);
    this.value.disabled = NULLARY_OPS.has(op);
    this.value.placeholder = TAG_OPS.has(op) ? "tag name" : op === "between" ? "low, high" : op === "in" ? "a, b, c" : "value";
    this.value.setAttribute("list", TAG_OPS.has(op) ? "tag-names" : "");
  }

  private syncColumns(force = false): void {
    const cols = this.app.view.columns;
    const cats = this.app.tags.filter((t) => t.categorical).map((t) => `tag:${t.name}`);
    const sig = cols.map((c) => c.name).join("|") + "#" + cats.join("|");
    if (sig === this.colsSig && !force) return;
    this.colsSig = sig;
    const keepCol = this.col.value;
    const opts = [...cols.map((c) => c.name), "split", ...cats];
    this.col.replaceChildren(...opts.map((n) => h("option", { value: n, text: n })));
    if (opts.includes(keepCol)) this.col.value = keepCol;
    else if (opts.includes("label")) this.col.value = "label";
    const keepSort = this.app.sort?.column ?? "";
    this.sortSelect.replaceChildren(h("option", { value: "", text: "(query order)" }), ...cols.filter((c) => c.kind !== "unknown").map((c) => h("option", { value: c.name, text: c.name })));
    this.sortSelect.value = keepSort;
    let dl = document.getElementById("tag-names");
    if (!dl) {
      dl = h("datalist", { id: "tag-names" });
      document.body.append(dl);
    }
    dl.replaceChildren(...this.app.tags.map((t) => h("option", { value: t.name })));
  }

  private async addChip(): Promise<void> {
    const op = this.op.value as ChipOp;
    const chip: Chip = { column: TAG_OPS.has(op) ? "" : this.col.value, op, value: NULLARY_OPS.has(op) ? "" : this.value.value };
    const kind = this.app.view.columns.find((c) => c.name === chip.column)?.kind ?? (chip.column === "split" ? "string" : "unknown");
    try {
      chipText(chip, kind);
    } catch (err) {
      toast("error", `filter: ${(err as Error).message}`);
      return;
    }
    this.app.chips = [...this.app.chips, chip];
    this.renderChips();
    const ok = await this.app.applyView();
    if (ok) this.value.value = "";
    else {
      // The server refused it (e.g. an unknown column): take the chip back.
      this.app.chips = this.app.chips.filter((c) => c !== chip);
      this.renderChips();
    }
  }

  renderChips(): void {
    const texts = this.app.chipTexts();
    this.chipsEl.replaceChildren(...this.app.chips.map((chip, i) => {
      const x = h("button", { type: "button", "aria-label": `remove filter ${texts[i]}`, title: "remove", text: "×" });
      x.addEventListener("click", () => {
        this.app.chips = this.app.chips.filter((c) => c !== chip);
        this.renderChips();
        void this.app.applyView();
      });
      return h("span", { class: "wl-chip", "data-query": texts[i] }, texts[i] ?? "", x);
    }));
  }

  /** Adds a chip from elsewhere (tag card, counts). */
  addExternal(chip: Chip): void {
    this.app.chips = [...this.app.chips, chip];
    this.renderChips();
    void this.app.applyView();
  }

  paintBanner(): void {
    const view = this.app.view;
    const samples = this.app.status?.samples ?? this.app.counts.reduce((a, c) => a + c.total, 0);
    const q = view.query;
    this.banner.dataset.count = String(view.total);
    this.banner.classList.toggle("wl-filtered", !!q);
    this.reset.hidden = !q && !this.app.chips.length;
    const parts: Array<Node | string> = [h("b", { text: fmtInt(view.total) })];
    if (q) {
      parts.push(` of ${fmtInt(samples)} samples · `, h("code", { text: q }));
    } else {
      parts.push(` samples${samples && samples !== view.total ? ` of ${fmtInt(samples)}` : ""} · all rows`);
    }
    if (this.app.sort) parts.push(` · sorted by ${this.app.sort.column} ${this.app.sort.descending ? "↓" : "↑"}`);
    this.bannerText.replaceChildren(...parts);
  }
}
