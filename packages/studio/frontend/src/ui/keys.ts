// The cockpit's keyboard shortcuts (Shift+P pause/resume, Shift+N run N, Shift+E evaluate,
// T / D / R on the selection or the focused sample, j / k next / previous sample, B painter)
// and the `?` overlay, written from the one SHORTCUTS table. The grid, the detail modal and
// main.ts keep their own keys (arrows, Space, Enter, /, v, Esc, Ctrl+A, lower-case d/r/t on a
// selection); this handler never takes a key they use.

import { sampleKey } from "../api/model.js";
import type { EditKind, Studio } from "../app.js";
import { SHORTCUTS, shortcutOf } from "../cockpit.js";
import type { ActionBar } from "./actions.js";
import type { Cockpit } from "./controls.js";
import { byId, h, isTyping } from "./dom.js";
import type { GridView } from "./grid.js";
import type { Painter } from "./painter.js";

export interface KeyDeps {
  app: Studio;
  cockpit: Cockpit;
  actions: ActionBar;
  grid: GridView;
  painter: Painter;
  modalOpen: () => boolean;
  blocked: () => boolean;
}

export function setupKeys(d: KeyDeps): void {
  const { app } = d;
  const help = byId("help");
  const list = help.querySelector("dl");
  list?.replaceChildren(...SHORTCUTS.flatMap((s) => [h("dt", { text: s.keys }), h("dd", { text: s.what })]));
  let lastTag: string | null = null;
  d.painter.changed.on((s) => {
    if (s.tag) lastTag = s.tag;
  });

  /** The selection, or else the focused sample made the selection (T / D on one sample). */
  const ensureSelection = (): boolean => {
    if (app.selection.size) return true;
    const row = app.view.row(app.selection.focus);
    if (!row) return false;
    app.selection.setMany([sampleKey(row.split, row.id)]);
    return true;
  };
  const edit = (kind: EditKind): void => {
    if (app.config.sandbox || !ensureSelection()) return;
    if (kind === "tag") d.actions.focusTag();
    else void d.actions.run(kind);
  };

  document.addEventListener("keydown", (e) => {
    if (d.blocked() || d.modalOpen() || isTyping(e) || !help.hidden) return;
    if (e.key === "Escape" && d.painter.state.tag) {
      d.painter.set(null);
      return;
    }
    // Lower-case t / d on a single focused sample (main.ts handles them when a selection exists).
    const plain = !e.shiftKey && !e.ctrlKey && !e.metaKey && !e.altKey;
    if (plain && !app.selection.size && (e.key === "t" || e.key === "d")) {
      e.preventDefault();
      edit(e.key === "t" ? "tag" : "discard");
      return;
    }
    // l: "Relabel as…" for the selection, or the focused sample made the selection.
    if (plain && e.key === "l") {
      e.preventDefault();
      if (!app.config.sandbox && ensureSelection()) d.actions.relabel.focus();
      return;
    }
    const action = shortcutOf(e);
    if (!action) return;
    e.preventDefault();
    switch (action) {
      case "toggle-run":
        void d.cockpit.togglePause();
        break;
      case "run-n":
        d.cockpit.openRunN();
        break;
      case "evaluate":
        d.cockpit.openEvaluate();
        break;
      case "tag":
      case "discard":
      case "restore":
        edit(action);
        break;
      case "next":
      case "prev": {
        const step = action === "next" ? 1 : -1;
        if (!d.grid.el.hidden) {
          d.grid.el.focus({ preventScroll: true });
          d.grid.focusIndex(app.selection.focus + step, false);
        }
        else app.selection.focus = Math.max(0, Math.min(app.view.total - 1, app.selection.focus + step));
        break;
      }
      case "paint":
        d.painter.set(d.painter.state.tag ? null : lastTag);
        break;
      default:
        break;
    }
  });
}
