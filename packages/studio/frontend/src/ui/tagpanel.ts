// Tags card: chips with counts (click filters), categorical tags with their value sets, a new-tag
// box, and painter mode: the brush of a chip picks that tag; then a click or a drag over grid
// cells adds (or, in erase mode, removes) it. Read-only in sandbox mode.

import { errorText } from "../api/client.js";
import type { Studio, TagSummary } from "../app.js";
import { parseTagName } from "../cockpit.js";
import { byId, fmtInt, h } from "./dom.js";
import type { FilterBar } from "./filters.js";
import type { Painter } from "./painter.js";
import { writeControl } from "./popover.js";

export function setupTagPanel(app: Studio, filters: FilterBar, painter: Painter): void {
  const sandbox = app.config.sandbox;
  const host = byId("tags");
  const status = byId("painter-status");
  const input = writeControl(byId<HTMLInputElement>("tag-new"), sandbox, "A new tag: name, or name=value for a categorical tag");
  const add = writeControl(byId<HTMLButtonElement>("tag-new-btn"), sandbox, "Create the tag and pick it for painting (tags the selection, if any)");
  const mode = writeControl(byId<HTMLButtonElement>("paint-mode"), sandbox, "Painter adds or erases the picked tag");
  const off = byId<HTMLButtonElement>("paint-off");
  const error = byId("tag-error");
  /** Tags made here that no sample has yet (they appear with a count of 0 until painted). */
  const local = new Set<string>();

  const brush = (tag: string, label: string): HTMLButtonElement => {
    const b = writeControl(h("button", { type: "button", class: "wl-brush", "data-paint": tag, "aria-pressed": String(painter.state.tag === tag), "aria-label": `paint ${tag}`, text: "✎" }), sandbox,
      `Painter: click or drag over cells to ${painter.state.mode === "add" ? "add" : "remove"} ${label} (B toggles)`);
    b.addEventListener("click", (e) => {
      e.stopPropagation();
      painter.set(painter.state.tag === tag ? null : tag);
    });
    return b;
  };

  const chip = (text: string, count: number, tag: string, onFilter: () => void, extra = ""): HTMLElement => {
    const b = h("button", { type: "button", class: `wl-tag${extra}`, "data-tag": tag, title: `filter: ${tag}` }, text, h("span", { class: "wl-n", text: fmtInt(count) }));
    b.addEventListener("click", onFilter);
    const wrap = h("span", { class: `wl-tag-wrap${painter.state.tag === tag ? " wl-picked" : ""}`, "data-tag": tag }, b, brush(tag, text));
    return wrap;
  };

  const render = (list: TagSummary[]): void => {
    for (const t of list) for (const l of [...local]) if (l === t.name || l.startsWith(`${t.name}=`)) local.delete(l);
    const items: Node[] = [];
    for (const t of list) {
      if (!t.categorical) {
        items.push(chip(t.name, t.count, t.name, () => filters.addExternal({ column: "", op: "has-tag", value: t.name })));
        continue;
      }
      const values = t.values.map((v) => chip(`${v.value}`, v.count, `${t.name}=${v.value}`,
        () => filters.addExternal({ column: `tag:${t.name}`, op: "==", value: v.value }), " wl-cat"));
      items.push(h("div", { class: "wl-tag-cat", "data-tag": t.name },
        h("span", { class: "wl-tag-cat-name", title: `categorical tag ${t.name}: ${fmtInt(t.count)} samples`, text: `${t.name} =` }),
        ...(values.length ? values : [h("span", { class: "wl-muted", text: "no value set" })])));
    }
    for (const name of local) items.push(chip(name, 0, name, () => filters.addExternal({ column: "", op: "has-tag", value: name }), " wl-new"));
    if (!items.length) items.push(h("span", { class: "wl-muted", text: "no tags yet — type one below, or select samples and tag them" }));
    host.replaceChildren(...items);
  };
  app.tagsChanged.on(render);

  const paintStatus = (): void => {
    const s = painter.state;
    const on = s.tag !== null;
    status.textContent = on
      ? `painter: click / drag cells to ${s.mode === "add" ? "add" : "remove"} “${s.tag}” (Esc stops)`
      : sandbox ? "read-only (sandbox)" : "pick a tag’s ✎ to paint it on cells";
    status.dataset.on = String(on);
    off.hidden = !on;
    mode.textContent = s.mode === "add" ? "✚ add" : "✖ erase";
    mode.setAttribute("aria-pressed", String(s.mode === "remove"));
    render(app.tags);
  };
  painter.changed.on(paintStatus);
  paintStatus();

  mode.addEventListener("click", () => painter.set(painter.state.tag, painter.state.mode === "add" ? "remove" : "add"));
  off.addEventListener("click", () => painter.set(null));

  const create = async (): Promise<void> => {
    if (sandbox) return;
    let parsed;
    try {
      parsed = parseTagName(input.value);
    } catch (err) {
      error.hidden = false;
      error.textContent = errorText(err);
      return;
    }
    error.hidden = true;
    const tag = parsed.value === null ? parsed.name : `${parsed.name}=${parsed.value}`;
    input.value = "";
    if (app.selection.size) {
      try {
        await app.edit("tag", tag, false);
      } catch (err) {
        error.hidden = false;
        error.textContent = errorText(err);
      }
    } else if (!app.tags.some((t) => t.name === parsed.name)) local.add(tag);
    painter.set(tag, "add");
  };
  add.addEventListener("click", () => void create());
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      void create();
    }
  });
}
