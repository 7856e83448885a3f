// One toast for write results and errors (#toast[data-kind]).

import { byId } from "./dom.js";

let timer: ReturnType<typeof setTimeout> | undefined;

export function toast(kind: "success" | "error" | "info", text: string): void {
  const el = byId("toast");
  el.dataset.kind = kind;
  el.textContent = text;
  el.hidden = false;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  if (timer) clearTimeout(timer);
  timer = setTimeout(() => {
    el.hidden = true;
  }, kind === "error" ? 9000 : 3500);
}

export function setupToast(): void {
  byId("toast").addEventListener("click", () => {
    byId("toast").hidden = true;
  });
}
