// "Relabel as…" (class input, checked in the page, then by the server), "Accept suggested label"
// and "Revert label" for the selection (action bar) or one sample (detail modal). Errors show
// inline under the controls. Sandbox: rendered disabled with the sandbox tooltip.

import "../labels.css";
import { errorText } from "../api/client.js";
import type { RelabelResult, Studio } from "../app.js";
import { parseClassLabel, RELABEL_DONE, type RelabelKind } from "../labels.js";
import { fmtInt, h } from "./dom.js";
import { writeControl } from "./popover.js";
import { toast } from "./toast.js";

export class RelabelControls {
  readonly el: HTMLDivElement;
  readonly input: HTMLInputElement;
  readonly error: HTMLDivElement;
  private readonly buttons: HTMLButtonElement[];
  private busy = false;

  /**
   * `prefix` names the elements (`${prefix}-input`, `-go`, `-accept`, `-revert`, `-error`);
   * `scope` runs an edit with the selection it applies to (the modal: its one sample).
   */
  constructor(
    private readonly app: Studio,
    prefix: string,
    private readonly scope: (fn: () => Promise<RelabelResult>) => Promise<RelabelResult> = (fn) => fn(),
  ) {
    const sandbox = app.config.sandbox;
    this.input = writeControl(h("input", {
      id: `${prefix}-input`, type: "text", inputmode: "numeric", placeholder: "class", autocomplete: "off",
      "aria-label": "Relabel as class", class: "wl-relabel-input",
    }), sandbox, "The new class index (Enter relabels)");
    const mk = (id: string, text: string, title: string, kind: RelabelKind): HTMLButtonElement => {
      const b = writeControl(h("button", { id: `${prefix}-${id}`, type: "button", class: "wl-btn", "data-relabel": kind, text }), sandbox, title);
      b.addEventListener("click", () => void this.run(kind));
      return b;
    };
    const go = mk("go", "Relabel as…", "Set the class label (the original is kept; training uses it from the next batch)", "relabel");
    const accept = mk("accept", "Accept suggested label", "Set each sample's label to the class the run suggests (suggested_label)", "accept");
    const revert = mk("revert", "Revert label", "Back to the original label (removes the correction)", "revert");
    this.buttons = [go, accept, revert];
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        e.stopPropagation();
        void this.run("relabel");
      } else if (e.key === "Escape" && this.input.value) {
        e.stopPropagation(); // first Esc clears the box, the next one closes / clears the selection
        this.input.value = "";
        this.showError(null);
      }
    });
    this.input.addEventListener("input", () => this.showError(null));
    this.error = h("div", { id: `${prefix}-error`, class: "wl-inline-error", role: "alert", hidden: true });
    this.el = h("div", { class: "wl-relabel", role: "group", "aria-label": "Label correction" },
      h("span", { class: "wl-k", text: "label" }), this.input, go, accept, revert, this.error);
  }

  focus(): void {
    if (!this.input.disabled) this.input.focus();
  }

  showError(text: string | null): void {
    this.error.hidden = text === null;
    this.error.textContent = text ?? "";
  }

  async run(kind: RelabelKind): Promise<void> {
    if (this.app.config.sandbox || this.busy) return;
    let label: number | null = null;
    if (kind === "relabel") {
      try {
        label = parseClassLabel(this.input.value);
      } catch (err) {
        this.showError(errorText(err));
        this.input.focus();
        return;
      }
    }
    this.busy = true;
    // disabling the pressed button drops the focus to <body> (Esc would leave the modal's keys):
    // it comes back once the call is over
    const focused = document.activeElement instanceof HTMLElement && this.el.contains(document.activeElement) ? document.activeElement : null;
    this.showError(null);
    this.buttons.forEach((b) => (b.disabled = true));
    this.el.setAttribute("aria-busy", "true");
    const spinner = h("span", { class: "wl-spinner", "aria-label": "working" });
    this.el.insertBefore(spinner, this.error);
    try {
      const r = await this.scope(() => this.app.relabel(kind, label));
      const n = `${fmtInt(r.matched)} sample${r.matched === 1 ? "" : "s"}`;
      const what = kind === "relabel" ? ` as ${label}` : "";
      const none = kind === "accept" && r.withoutSuggestion ? ` · ${fmtInt(r.withoutSuggestion)} without a suggestion yet` : "";
      toast("success", `${RELABEL_DONE[kind]} ${n}${what}${r.changed !== r.matched ? ` · ${fmtInt(r.changed)} changed` : ""}${none}`);
      if (kind === "relabel") this.input.value = "";
    } catch (err) {
      this.showError(`${kind === "relabel" ? "relabel" : kind === "accept" ? "accept suggestion" : "revert"} failed: ${errorText(err)}`);
    } finally {
      this.busy = false;
      spinner.remove();
      this.el.removeAttribute("aria-busy");
      this.buttons.forEach((b) => (b.disabled = false));
      if (focused && (document.activeElement === document.body || document.activeElement === null)) focused.focus({ preventScroll: true });
    }
  }
}
