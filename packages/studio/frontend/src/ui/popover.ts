// A popover anchored under a button: opens on click, closes on a click outside, Esc, or close().
// Sandbox helper: write controls stay visible but disabled, with a tooltip saying why.

import { h } from "./dom.js";

export const SANDBOX_TITLE = "Read-only: this Studio runs in sandbox mode (the proxy refuses writes)";

export class Popover {
  readonly el: HTMLDivElement;
  private onOpen: (() => void) | null = null;

  constructor(readonly button: HTMLElement, id: string, label: string) {
    this.el = h("div", { id, class: "wl-popover", role: "dialog", "aria-label": label, hidden: true });
    document.body.append(this.el);
    button.setAttribute("aria-haspopup", "dialog");
    button.setAttribute("aria-expanded", "false");
    button.addEventListener("click", () => (this.isOpen() ? this.close() : this.open()));
    document.addEventListener("pointerdown", (e) => {
      if (!this.isOpen()) return;
      const t = e.target as Node;
      if (!this.el.contains(t) && !button.contains(t)) this.close();
    });
    this.el.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        this.close();
        button.focus();
      }
    });
  }

  whenOpened(fn: () => void): void {
    this.onOpen = fn;
  }

  isOpen(): boolean {
    return !this.el.hidden;
  }

  open(): void {
    const r = this.button.getBoundingClientRect();
    this.el.hidden = false;
    const w = this.el.offsetWidth;
    this.el.style.top = `${Math.round(r.bottom + 6)}px`;
    this.el.style.left = `${Math.round(Math.max(8, Math.min(window.innerWidth - w - 8, r.left)))}px`;
    this.button.setAttribute("aria-expanded", "true");
    this.onOpen?.();
    const first = this.el.querySelector<HTMLElement>("input:not([disabled]), select:not([disabled]), button:not([disabled])");
    first?.focus();
  }

  close(): void {
    this.el.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
  }
}

/** Marks a write control: in sandbox mode it is disabled with a tooltip (never silently enabled). */
export function writeControl<T extends HTMLElement>(el: T, sandbox: boolean, title?: string): T {
  el.dataset.write = "";
  if (sandbox) {
    (el as unknown as HTMLInputElement).disabled = true;
    el.title = SANDBOX_TITLE;
    el.setAttribute("aria-disabled", "true");
  } else if (title) el.title = title;
  return el;
}
