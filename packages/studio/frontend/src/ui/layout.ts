// Left panel layout: a drag handle resizes it (width kept in localStorage), each card folds
// open / closed from its title (kept too), and the panel itself collapses to a thin rail.

import { clampSideWidth } from "../cockpit.js";
import { byId } from "./dom.js";

const WIDTH_KEY = "wl-side-width";
const FOLDED_KEY = "wl-side-folded";
const HIDDEN_KEY = "wl-side-hidden";

function load(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function store(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* not persisted: still applied */
  }
}

export function setupLayout(onResize: () => void): void {
  const side = byId("side");
  const handle = byId("side-resizer");
  const setWidth = (px: number): number => {
    const w = clampSideWidth(px, window.innerWidth);
    side.style.width = `${w}px`;
    handle.setAttribute("aria-valuenow", String(w));
    return w;
  };
  const saved = Number(load(WIDTH_KEY));
  if (saved > 0) setWidth(saved);

  let drag: { x0: number; w0: number; id: number } | null = null;
  handle.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    drag = { x0: e.clientX, w0: side.getBoundingClientRect().width, id: e.pointerId };
    handle.setPointerCapture(e.pointerId);
    document.body.classList.add("wl-resizing");
    e.preventDefault();
  });
  handle.addEventListener("pointermove", (e) => {
    if (drag && e.pointerId === drag.id) setWidth(drag.w0 + e.clientX - drag.x0);
  });
  const end = (e: PointerEvent): void => {
    if (!drag || e.pointerId !== drag.id) return;
    drag = null;
    document.body.classList.remove("wl-resizing");
    store(WIDTH_KEY, String(Math.round(side.getBoundingClientRect().width)));
    onResize();
  };
  handle.addEventListener("pointerup", end);
  handle.addEventListener("pointercancel", end);
  handle.addEventListener("keydown", (e) => {
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    e.preventDefault();
    store(WIDTH_KEY, String(setWidth(side.getBoundingClientRect().width + (e.key === "ArrowLeft" ? -16 : 16))));
    onResize();
  });
  handle.addEventListener("dblclick", () => toggleSide());

  // The whole panel folds to a rail (the handle's double-click or the header button).
  const hideBtn = byId("side-toggle");
  const paintHidden = (hidden: boolean): void => {
    document.body.classList.toggle("wl-side-hidden", hidden);
    hideBtn.setAttribute("aria-pressed", String(hidden));
    hideBtn.title = hidden ? "Show the left panel" : "Hide the left panel";
  };
  const toggleSide = (): void => {
    const hidden = !document.body.classList.contains("wl-side-hidden");
    paintHidden(hidden);
    store(HIDDEN_KEY, hidden ? "1" : "");
    onResize();
  };
  hideBtn.addEventListener("click", toggleSide);
  paintHidden(load(HIDDEN_KEY) === "1");

  // Cards fold from their title.
  let folded: Set<string>;
  try {
    folded = new Set(JSON.parse(load(FOLDED_KEY) ?? "[]") as string[]);
  } catch {
    folded = new Set();
  }
  for (const card of side.querySelectorAll<HTMLElement>(".wl-card[data-card]")) {
    const name = card.dataset.card!;
    const title = card.querySelector("h2");
    if (!title) continue;
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "wl-card-toggle";
    btn.textContent = title.textContent;
    title.replaceChildren(btn);
    const paint = (): void => {
      const isFolded = folded.has(name);
      card.classList.toggle("wl-folded", isFolded);
      btn.setAttribute("aria-expanded", String(!isFolded));
      btn.title = isFolded ? "Show this card" : "Fold this card";
    };
    btn.addEventListener("click", () => {
      if (folded.has(name)) folded.delete(name);
      else folded.add(name);
      store(FOLDED_KEY, JSON.stringify([...folded]));
      paint();
    });
    paint();
  }
}
