// Display card, beyond cell size / columns (ui/side.ts): thumbnail resolution and the overlays
// prediction, correct / wrong and the discarded marker.

import { byId } from "./dom.js";
import type { GridView } from "./grid.js";

export function setupDisplay(grid: GridView): void {
  const res = byId<HTMLSelectElement>("thumb-res");
  res.addEventListener("change", () => {
    grid.thumbRes = res.value ? Number(res.value) : null;
    grid.layout(); // a new size: the cells ask the thumbnail store again
  });
  const pred = byId<HTMLInputElement>("ov-pred");
  const correct = byId<HTMLInputElement>("ov-correct");
  const disc = byId<HTMLInputElement>("ov-disc");
  pred.addEventListener("change", () => {
    grid.showPrediction = pred.checked;
    grid.refill();
  });
  correct.addEventListener("change", () => {
    grid.showCorrect = correct.checked;
    grid.refill();
  });
  disc.addEventListener("change", () => grid.el.classList.toggle("wl-hide-disc", !disc.checked));
}
