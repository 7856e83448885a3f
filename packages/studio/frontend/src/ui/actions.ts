// The selection's action bar: tag / untag (name or name=value), discard / restore, and
// "apply to all N matching" (one edit by query). Sandbox mode renders no write control.

import { errorText } from "../api/client.js";
import type { EditKind, Studio } from "../app.js";
import { byId, fmtInt, h } from "./dom.js";
import { RelabelControls } from "./relabel.js";
import { toast } from "./toast.js";

const PAST: Record<EditKind, string> = { tag: "Tagged", untag: "Untagged", discard: "Discarded", restore: "Restored" };

export class ActionBar {
  private readonly bar = byId("action-bar");
  private readonly count = byId("sel-count");
  private tagInput: HTMLInputElement | null = null;
  private allBox: HTMLInputElement | null = null;
  private allLabel: HTMLSpanElement | null = null;
  private buttons: HTMLButtonElement[] = [];
  private busy = false;
  /** Relabel / accept suggestion / revert (disabled, not hidden, in sandbox mode). */
  readonly relabel: RelabelControls;

  constructor(private readonly app: Studio) {
    if (!app.config.sandbox) this.renderWrites();
    else this.bar.append(h("span", { class: "wl-muted", text: "read-only (sandbox)" }));
    this.relabel = new RelabelControls(app, "relabel");
    this.bar.append(h("span", { class: "wl-sep" }), this.relabel.el);
    const clear = h("button", { type: "button", class: "wl-btn wl-ghost wl-small", title: "Clear the selection (Esc)", text: "✕" });
    clear.addEventListener("click", () => app.selection.clear());
    this.bar.append(clear);
    app.selection.changed.on(() => this.paint());
    app.view.events.on(() => this.paint());
    app.queryChanged.on(() => this.paint());
  }

  private renderWrites(): void {
    this.tagInput = h("input", { id: "act-tag-name", class: "wl-write", type: "text", placeholder: "tag or name=value", "aria-label": "Tag name", list: "tag-names", autocomplete: "off" });
    const mk = (id: string, text: string, kind: EditKind, title: string, extra = ""): HTMLButtonElement => {
      const b = h("button", { id, type: "button", class: `wl-btn wl-write ${extra}`.trim(), title, text });
      b.addEventListener("click", () => void this.run(kind));
      this.buttons.push(b);
      return b;
    };
    this.allBox = h("input", { id: "act-all-matching", class: "wl-write", type: "checkbox" });
    this.allLabel = h("span", { text: "apply to all matching" });
    this.tagInput.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        void this.run(e.shiftKey ? "untag" : "tag");
      }
    });
    this.bar.append(
      h("span", { class: "wl-sep" }),
      this.tagInput,
      mk("act-tag", "Tag", "tag", "Tag the selection (Enter in the box; name=value sets a categorical tag)"),
      mk("act-untag", "Untag", "untag", "Remove the tag (name=… clears a categorical tag)"),
      h("span", { class: "wl-sep" }),
      mk("act-discard", "Discard", "discard", "Discard: training skips these samples from the next batch on (d)", "wl-danger"),
      mk("act-restore", "Restore", "restore", "Restore discarded samples (r)"),
      h("span", { class: "wl-sep" }),
      h("label", { class: "wl-write", title: "Send ONE edit for every row matching the current query" }, this.allBox, this.allLabel),
    );
  }

  focusTag(): void {
    this.tagInput?.focus();
  }

  paint(): void {
    const n = this.app.selection.size;
    this.bar.hidden = n === 0;
    this.count.textContent = `${fmtInt(n)} selected`;
    if (this.allBox && this.allLabel) {
      const can = this.app.canEditByQuery();
      this.allBox.disabled = !can || this.busy;
      if (!can) this.allBox.checked = false;
      this.allLabel.textContent = `apply to all ${fmtInt(this.app.view.total)} matching`;
      this.allLabel.parentElement!.title = can
        ? `Send ONE edit for every row matching: ${this.app.view.query}`
        : "Filter the view first (an edit by query needs a filter)";
    }
  }

  async run(kind: EditKind): Promise<void> {
    if (this.app.config.sandbox || this.busy) return;
    const all = !!this.allBox?.checked;
    const tag = this.tagInput?.value ?? "";
    this.busy = true;
    this.bar.classList.add("busy");
    const spinner = h("span", { class: "wl-spinner", "aria-label": "working" });
    this.bar.append(spinner);
    this.buttons.forEach((b) => (b.disabled = true));
    try {
      const r = await this.app.edit(kind, tag, all);
      const what = kind === "tag" || kind === "untag" ? ` (${tag.trim()})` : "";
      toast("success", `${PAST[kind]} ${fmtInt(r.matched)} sample${r.matched === 1 ? "" : "s"}${what}${r.changed !== r.matched ? ` · ${fmtInt(r.changed)} changed` : ""}${all ? " · one edit by query" : ""}`);
      if (all && this.allBox) this.allBox.checked = false;
    } catch (err) {
      toast("error", `${kind} failed: ${errorText(err)}`);
    } finally {
      this.busy = false;
      spinner.remove();
      this.bar.classList.remove("busy");
      this.buttons.forEach((b) => (b.disabled = false));
      this.paint();
    }
  }
}
