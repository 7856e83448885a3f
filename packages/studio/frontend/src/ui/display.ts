// Display card, beyond cell size / columns (ui/side.ts): thumbnail resolution and the overlays
// prediction, correct / wrong and the discarded marker. Every setting of the card except the
// column choice (its options arrive with the data) is kept in localStorage and restored by
// replaying the controls' own events, so ui/side.ts applies its part unchanged.

import { type DisplaySettings, sanitizeDisplay } from "../cockpit.js";
import { byId } from "./dom.js";
import type { GridView } from "./grid.js";

const KEY = "wl-display";

export function setupDisplay(grid: GridView): void {
  const size = byId<HTMLInputElement>("cell-size");
  const res = byId<HTMLSelectElement>("thumb-res");
  const boxes = {
    label: byId<HTMLInputElement>("ov-labels"),
    prediction: byId<HTMLInputElement>("ov-pred"),
    correct: byId<HTMLInputElement>("ov-correct"),
    split: byId<HTMLInputElement>("ov-split"),
    discarded: byId<HTMLInputElement>("ov-disc"),
  };
  res.addEventListener("change", () => {
    grid.thumbRes = res.value ? Number(res.value) : null;
    grid.layout(); // a new size: the cells ask the thumbnail store again
  });
  boxes.prediction.addEventListener("change", () => {
    grid.showPrediction = boxes.prediction.checked;
    grid.refill();
  });
  boxes.correct.addEventListener("change", () => {
    grid.showCorrect = boxes.correct.checked;
    grid.refill();
  });
  boxes.discarded.addEventListener("change", () => grid.el.classList.toggle("wl-hide-disc", !boxes.discarded.checked));

  const current = (): DisplaySettings => ({
    cellSize: Number(size.value),
    thumbRes: Number(res.value || 0),
    overlays: {
      label: boxes.label.checked, prediction: boxes.prediction.checked, correct: boxes.correct.checked,
      split: boxes.split.checked, discarded: boxes.discarded.checked,
    },
  });
  let saved: DisplaySettings;
  try {
    saved = sanitizeDisplay(JSON.parse(localStorage.getItem(KEY) ?? "null"));
  } catch {
    saved = sanitizeDisplay(null);
  }
  if (saved.cellSize !== Number(size.value)) {
    size.value = String(saved.cellSize);
    size.dispatchEvent(new Event("input"));
  }
  if (saved.thumbRes !== Number(res.value || 0)) {
    res.value = saved.thumbRes ? String(saved.thumbRes) : "";
    res.dispatchEvent(new Event("change"));
  }
  for (const [k, box] of Object.entries(boxes) as Array<[keyof typeof boxes, HTMLInputElement]>) {
    if (box.checked === saved.overlays[k]) continue;
    box.checked = saved.overlays[k];
    box.dispatchEvent(new Event("change"));
  }
  const save = (): void => {
    try {
      localStorage.setItem(KEY, JSON.stringify(current()));
    } catch {
      /* not persisted: still applied */
    }
  };
  size.addEventListener("change", save);
  res.addEventListener("change", save);
  for (const box of Object.values(boxes)) box.addEventListener("change", save);
}
