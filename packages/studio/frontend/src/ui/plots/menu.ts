// The context menu of a plot step: break by slices (pick tags → mean curve of the samples having
// all of them), restore the checkpoint at or before the step (confirm first; not in sandbox),
// highlight the samples of that step in the grid, add a note at the step (browser-local).

import type { TagSummary } from "../../app.js";
import { fmtInt, h } from "../dom.js";

export interface MenuActions {
  sandbox: boolean;
  tags(): TagSummary[];
  /** Fetches the tag list again (tags made elsewhere since the last refresh). */
  loadTags(): Promise<void>;
  breakBySlices(signal: string, tags: string[]): Promise<void>;
  restore(step: number): Promise<void>;
  highlight(step: number): void;
  /** Adds a browser-local note at the step; throws with a message to show. */
  addNote(step: number, text: string): void;
}

export class PlotMenu {
  readonly el: HTMLElement;
  private close = (): void => this.hide();

  constructor(private readonly actions: MenuActions) {
    this.el = h("div", { id: "plot-menu", class: "wl-plot-menu", role: "menu", hidden: true });
    document.body.append(this.el);
    this.el.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.hide();
    });
  }

  isOpen(): boolean {
    return !this.el.hidden;
  }

  hide(): void {
    this.el.hidden = true;
    document.removeEventListener("mousedown", this.onOutside, true);
    window.removeEventListener("blur", this.close);
  }

  private onOutside = (e: MouseEvent): void => {
    if (!this.el.contains(e.target as Node)) this.hide();
  };

  open(signals: string[], step: number, x: number, y: number): void {
    this.el.dataset.step = String(step);
    const item = (id: string, text: string, fn: () => void, cls = ""): HTMLButtonElement => {
      const b = h("button", { id, class: `wl-plot-menu-item ${cls}`.trim(), type: "button", role: "menuitem", text });
      b.addEventListener("click", fn);
      return b;
    };
    const items: HTMLElement[] = [
      h("div", { class: "wl-plot-menu-head", text: `step ${fmtInt(step)}` }),
      item("plot-menu-slices", "Break by slices…", () => this.showSlices(signals)),
    ];
    if (!this.actions.sandbox) {
      items.push(item("plot-menu-restore", "Restore the checkpoint at this step…", () => this.showRestore(step), "wl-write"));
    }
    items.push(item("plot-menu-note", "Add a note at this step…", () => this.showNote(step)));
    items.push(item("plot-menu-highlight", "Highlight this step's samples in the grid", () => {
      this.hide();
      this.actions.highlight(step);
    }));
    this.el.replaceChildren(...items);
    this.place(x, y);
    (this.el.querySelector("button") as HTMLButtonElement | null)?.focus();
  }

  private place(x: number, y: number): void {
    this.el.hidden = false;
    const r = this.el.getBoundingClientRect();
    this.el.style.left = `${Math.max(4, Math.min(x, innerWidth - r.width - 4))}px`;
    this.el.style.top = `${Math.max(4, Math.min(y, innerHeight - r.height - 4))}px`;
    document.addEventListener("mousedown", this.onOutside, true);
    window.addEventListener("blur", this.close);
  }

  private showSlices(signals: string[], refreshed = false): void {
    const rect = this.el.getBoundingClientRect();
    const tags = this.actions.tags();
    if (!refreshed) {
      // the list shown now may predate tags made since (another tab, the CLI, the agent): fetch it
      // again and redraw the form with it, unless the form was closed or used meanwhile
      const before = JSON.stringify(tags);
      void this.actions.loadTags().then(() => {
        const form = this.el.querySelector("#slices-form");
        const touched = form?.querySelector("input:checked") !== null;
        if (form && !this.el.hidden && !touched && JSON.stringify(this.actions.tags()) !== before) {
          this.showSlices(signals, true);
        }
      });
    }
    const options: string[] = [];
    for (const t of tags) {
      if (t.categorical) for (const v of t.values) options.push(`${t.name}=${v.value}`);
      else options.push(t.name);
    }
    const form = h("form", { id: "slices-form", class: "wl-slices" });
    form.append(h("div", { class: "wl-plot-menu-head", text: "Mean curve of the samples having every chosen tag" }));
    const signalSelect = h("select", { id: "slices-signal", "aria-label": "Signal" }, ...signals.map((s) => h("option", { value: s, text: s })));
    if (signals.length > 1) form.append(h("label", { class: "wl-field" }, "signal ", signalSelect));
    if (!options.length) form.append(h("div", { class: "wl-muted", text: "No tags yet: tag samples first (Tags card or the selection bar)." }));
    const list = h("div", { class: "wl-slices-list" });
    for (const o of options) {
      const count = tagCount(tags, o);
      list.append(h("label", { class: "wl-check" }, h("input", { type: "checkbox", value: o }), ` ${o}`, h("span", { class: "wl-muted", text: count === null ? "" : ` ${fmtInt(count)}` })));
    }
    form.append(list);
    const error = h("div", { class: "wl-slices-error", role: "alert" });
    const apply = h("button", { id: "slices-apply", class: "wl-btn wl-primary wl-small", type: "submit", text: "Draw", disabled: !options.length });
    const cancel = h("button", { class: "wl-btn wl-small", type: "button", text: "Cancel" });
    cancel.addEventListener("click", () => this.hide());
    form.append(error, h("div", { class: "wl-plot-menu-row" }, apply, cancel));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const chosen = [...form.querySelectorAll<HTMLInputElement>("input[type=checkbox]:checked")].map((i) => i.value);
      if (!chosen.length) {
        error.textContent = "Pick at least one tag.";
        return;
      }
      apply.disabled = true;
      apply.textContent = "Drawing…";
      this.actions.breakBySlices(signalSelect.value || signals[0]!, chosen).then(() => this.hide(), (err: unknown) => {
        error.textContent = err instanceof Error ? err.message : String(err);
        apply.disabled = false;
        apply.textContent = "Draw";
      });
    });
    this.el.replaceChildren(form);
    if (refreshed) this.el.hidden = false;
    else this.place(rect.left, rect.top);
  }

  private showNote(step: number): void {
    const rect = this.el.getBoundingClientRect();
    const form = h("form", { id: "note-form", class: "wl-slices" });
    const input = h("input", { id: "note-text", type: "text", maxlength: 500, placeholder: "what happened here", "aria-label": "Note text", autocomplete: "off" });
    const error = h("div", { id: "note-error", class: "wl-slices-error", role: "alert" });
    const save = h("button", { id: "note-save", class: "wl-btn wl-primary wl-small", type: "submit", text: "Add note" });
    const cancel = h("button", { id: "note-cancel", class: "wl-btn wl-small", type: "button", text: "Cancel" });
    cancel.addEventListener("click", () => this.hide());
    form.append(
      h("div", { class: "wl-plot-menu-head", text: `Note at step ${fmtInt(step)} (kept in this browser, for this run)` }),
      h("div", { class: "wl-plot-menu-row" }, input), error, h("div", { class: "wl-plot-menu-row" }, save, cancel));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      try {
        this.actions.addNote(step, input.value);
        this.hide();
      } catch (err) {
        error.textContent = err instanceof Error ? err.message : String(err);
        input.focus();
      }
    });
    this.el.replaceChildren(form);
    this.place(rect.left, rect.top);
    input.focus();
  }

  private showRestore(step: number): void {
    const rect = this.el.getBoundingClientRect();
    const error = h("div", { class: "wl-slices-error", role: "alert" });
    const ok = h("button", { id: "restore-confirm", class: "wl-btn wl-danger wl-small wl-write", type: "button", text: "Restore" });
    const cancel = h("button", { id: "restore-cancel", class: "wl-btn wl-small", type: "button", text: "Cancel" });
    cancel.addEventListener("click", () => this.hide());
    ok.addEventListener("click", () => {
      ok.disabled = true;
      ok.textContent = "Restoring…";
      this.actions.restore(step).then(() => this.hide(), (err: unknown) => {
        error.textContent = err instanceof Error ? err.message : String(err);
        ok.disabled = false;
        ok.textContent = "Restore";
      });
    });
    this.el.replaceChildren(
      h("div", { class: "wl-plot-menu-head", text: `Restore the checkpoint at or before step ${fmtInt(step)}?` }),
      h("p", { class: "wl-muted wl-restore-note", text: "Training pauses for the restore; the run then continues on a new branch from that checkpoint (the current branch stays in the history)." }),
      error,
      h("div", { class: "wl-plot-menu-row" }, ok, cancel),
    );
    this.place(rect.left, rect.top);
    cancel.focus();
  }
}

function tagCount(tags: TagSummary[], option: string): number | null {
  const [name, value] = option.split("=", 2);
  const t = tags.find((x) => x.name === name);
  if (!t) return null;
  if (value === undefined) return t.count;
  return t.values.find((v) => v.value === value)?.count ?? null;
}
