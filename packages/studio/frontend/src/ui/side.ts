// Left panel: per-split counts (#counts) and the Display card's first settings (ui/display.ts: the rest).

import type { Studio } from "../app.js";
import { byId, fmtInt, h } from "./dom.js";
import type { FilterBar } from "./filters.js";
import type { GridView } from "./grid.js";
import { splitColor } from "./palette.js";

export function setupSide(app: Studio, filters: FilterBar, grid: GridView): void {
  const counts = byId("counts");
  app.countsChanged.on((list) => {
    const names = list.map((s) => s.name);
    counts.replaceChildren(...list.map((s) => {
      const bar = h("span");
      bar.style.width = `${s.total ? (100 * s.active) / s.total : 0}%`;
      const el = h("div", {
        class: "wl-count", "data-split": s.name, "data-total": s.total, "data-active": s.active, "data-discarded": s.discarded,
        title: `filter on split ${s.name}`,
      },
      h("div", { class: "wl-count-head" },
        h("span", { class: "wl-count-name", text: s.name }),
        h("span", { class: "wl-num", text: fmtInt(s.total) })),
      h("div", { class: "wl-count-sub" }, `${fmtInt(s.active)} active · ${fmtInt(s.discarded)} discarded`),
      h("div", { class: "wl-bar" }, bar));
      el.style.setProperty("--swatch", splitColor(s.name, names));
      return el;
    }));
    filters.paintBanner();
  });

  // Tags: ui/tagpanel.ts (chips, new tag, painter).

  const size = byId<HTMLInputElement>("cell-size");
  size.addEventListener("input", () => grid.setCellSize(Number(size.value)));
  const labels = byId<HTMLInputElement>("ov-labels");
  const split = byId<HTMLInputElement>("ov-split");
  const cols = byId<HTMLSelectElement>("cell-cols");
  const gridEl = byId("grid");
  labels.addEventListener("change", () => {
    grid.showLabels = labels.checked;
    grid.refill();
  });
  split.addEventListener("change", () => {
    grid.showSplit = split.checked;
    gridEl.classList.toggle("wl-hide-split", !split.checked);
    grid.refill();
  });
  let sig = "";
  app.view.events.on((e) => {
    if (e.type !== "reset") return;
    const names = app.view.columns.filter((c) => c.kind === "number").map((c) => c.name);
    const s = names.join("|");
    if (s === sig) return;
    sig = s;
    cols.replaceChildren(...names.map((n) => h("option", { value: n, text: n, selected: grid.displayCols.includes(n) })));
  });
  cols.addEventListener("change", () => {
    const chosen = [...cols.selectedOptions].map((o) => o.value);
    grid.displayCols = chosen.length ? chosen : ["loss"];
    grid.refill();
  });
}
