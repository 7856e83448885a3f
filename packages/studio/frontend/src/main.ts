// Boot: settings, token, client, the Studio state, then the UI pieces and the keyboard.

import "./style.css";
import { createApi } from "./api/client.js";
import { Studio } from "./app.js";
import { ConfigError, resolveConfig, type RuntimeConfig } from "./config.js";
import { acquireToken, storeToken } from "./token.js";
import { ActionBar } from "./ui/actions.js";
import { AgentBar } from "./ui/agentbar.js";
import { setupControls } from "./ui/controls.js";
import { setupDisplay } from "./ui/display.js";
import { byId, isTyping } from "./ui/dom.js";
import { FilterBar } from "./ui/filters.js";
import { GridView } from "./ui/grid.js";
import { setupHeader } from "./ui/header.js";
import { setupHyperParameters } from "./ui/hparams.js";
import { HistogramView } from "./ui/histogram.js";
import { setupKeys } from "./ui/keys.js";
import { setupLayout } from "./ui/layout.js";
import { ListView } from "./ui/list.js";
import { PlotsBoard } from "./ui/plots/board.js";
import { DetailModal } from "./ui/modal.js";
import { Painter } from "./ui/painter.js";
import { setupSide } from "./ui/side.js";
import { setupTagPanel } from "./ui/tagpanel.js";
import { setupTheme } from "./ui/theme.js";
import { setupToast, toast } from "./ui/toast.js";

declare global {
  interface Window {
    WEIGHTSLAB_CONFIG?: RuntimeConfig;
  }
  interface Navigator {
    deviceMemory?: number;
  }
}

function boot(): void {
  setupToast();
  let config;
  try {
    config = resolveConfig(window.WEIGHTSLAB_CONFIG, import.meta.env as Record<string, string>, {
      hardwareConcurrency: navigator.hardwareConcurrency,
      deviceMemory: navigator.deviceMemory,
    }, location.origin);
  } catch (err) {
    const msg = err instanceof ConfigError ? err.message : String(err);
    document.body.dataset.conn = "gone";
    byId("conn-banner").hidden = false;
    byId("conn-banner").textContent = `Bad Studio settings: ${msg}`;
    return;
  }
  document.body.classList.toggle("wl-sandbox", config.sandbox);

  let token = acquireToken(location, sessionStorage, (url) => history.replaceState(history.state, "", url));
  const tokenScreen = byId("token-screen");
  const tokenInput = byId<HTMLInputElement>("token-input");
  const showTokenScreen = (reason: string): void => {
    byId("token-reason").textContent = reason;
    tokenScreen.hidden = false;
    tokenInput.focus();
  };
  const api = createApi(config.apiBaseUrl, () => token);
  const app = new Studio(config, api, (reason) => {
    showTokenScreen(`The server refused the token (${reason}). Paste the token printed by \`weightslab studio\`.`);
  });
  byId("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    token = storeToken(sessionStorage, tokenInput.value);
    tokenInput.value = "";
    if (!token) return;
    tokenScreen.hidden = true;
    app.reconnect();
  });

  setupTheme(byId("theme-toggle"), () => hist.draw());
  setupHeader(app);
  const filters = new FilterBar(app);
  const openAt = (i: number): void => void modal.open(i);
  const grid = new GridView(app, byId("grid"), byId("grid-spacer"), byId("lasso"), { open: openAt });
  const list = new ListView(app, byId("list-wrap"), byId<HTMLTableRowElement>("list-head"), byId<HTMLTableSectionElement>("list-body"), {
    open: openAt,
    sortBy: (col) => {
      const cur = app.sort;
      filters.setSort({ column: col, descending: cur?.column === col ? !cur.descending : true });
    },
  });
  const slider = byId<HTMLInputElement>("view-slider");
  const current = (): GridView | ListView => (grid.el.hidden ? list : grid);
  const jump = (pos: number): void => {
    current().scrollToIndex(pos, "start");
    slider.value = String(pos);
    hist.setPosition(pos);
  };
  const hist = new HistogramView(app, jump);
  const modal = new DetailModal(app, (i) => {
    app.selection.focus = i;
    current().scrollToIndex(i);
  });
  const actions = new ActionBar(app);
  new AgentBar(app, byId("agent-bar"));
  setupSide(app, filters, grid);
  // Training cockpit: header controls, hyperparameters, tags + painter, display, layout, keys.
  const painter = new Painter(app, grid);
  setupTagPanel(app, filters, painter);
  setupDisplay(grid);
  setupHyperParameters(app);
  const cockpit = setupControls(app);
  setupLayout(() => {
    if (!grid.el.hidden) grid.layout();
    hist.draw();
  });
  const plots = new PlotsBoard(app, byId("plots"), {
    // The samples of a plotted step: those whose last training batch was that step.
    highlightStep: (step) => {
      app.chips = app.chips.filter((c) => c.column !== "last_seen_step");
      filters.addExternal({ column: "last_seen_step", op: "==", value: String(step) });
    },
  });

  const onScrollIndex = (first: number): void => {
    slider.value = String(first);
    hist.setPosition(first);
  };
  grid.onScrollIndex = onScrollIndex;
  list.onScrollIndex = onScrollIndex;
  slider.addEventListener("input", () => {
    const pos = Number(slider.value);
    current().scrollToIndex(pos, "start");
    hist.setPosition(pos);
  });
  const empty = byId("board-empty");
  app.view.events.on((e) => {
    if (e.type !== "reset") return;
    slider.max = String(Math.max(0, app.view.total - 1));
    empty.hidden = app.view.total > 0;
    empty.textContent = app.view.query ? "No sample matches this query." : "No samples registered yet.";
  });

  const toggle = byId<HTMLButtonElement>("view-toggle");
  const setMode = (mode: "grid" | "list"): void => {
    const first = current().firstVisible();
    grid.el.hidden = mode !== "grid";
    list.wrap.hidden = mode !== "list";
    toggle.dataset.view = mode;
    toggle.textContent = mode === "grid" ? "▦ grid" : "☰ list";
    toggle.title = `Switch to the ${mode === "grid" ? "list" : "grid"} view (v)`;
    if (mode === "grid") grid.layout();
    else list.render();
    current().scrollToIndex(first, "start");
  };
  toggle.addEventListener("click", () => setMode(grid.el.hidden ? "grid" : "list"));

  byId("clear-cache").addEventListener("click", () => {
    app.thumbs.clear();
    app.fullres.clear();
    app.refreshAll();
    toast("info", "Image caches cleared; view reloaded.");
  });
  const help = byId("help");
  byId("help-btn").addEventListener("click", () => (help.hidden = false));
  help.addEventListener("click", () => (help.hidden = true));

  // ---------------------------------------------------------------- keyboard
  grid.el.addEventListener("keydown", (e) => {
    const sel = app.selection;
    const cols = grid.cols;
    const moves: Record<string, number> = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -cols, ArrowDown: cols, PageDown: cols * 4, PageUp: -cols * 4 };
    if (e.key in moves) {
      e.preventDefault();
      grid.focusIndex(sel.focus + moves[e.key]!, e.shiftKey);
    } else if (e.key === "Home" || e.key === "End") {
      e.preventDefault();
      grid.focusIndex(e.key === "Home" ? 0 : app.view.total - 1, e.shiftKey);
    } else if (e.key === " ") {
      e.preventDefault();
      grid.clickIndex(sel.focus, { shift: false, toggle: true });
    } else if (e.key === "Enter") {
      e.preventDefault();
      if (app.view.row(sel.focus)) void modal.open(sel.focus);
    }
  });
  grid.el.addEventListener("focus", () => grid.refill());
  grid.el.addEventListener("blur", () => grid.refill());
  document.addEventListener("keydown", (e) => {
    if (!tokenScreen.hidden) return;
    if (!help.hidden && (e.key === "Escape" || e.key === "?")) {
      help.hidden = true;
      return;
    }
    if (modal.isOpen() || isTyping(e)) return;
    if (e.key === "/") {
      e.preventDefault();
      byId("query-input").focus();
    } else if (e.key === "?") {
      help.hidden = false;
    } else if (e.key === "Escape") {
      app.selection.clear();
    } else if (e.key === "v" && !e.ctrlKey && !e.metaKey) {
      setMode(grid.el.hidden ? "grid" : "list");
    } else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "a") {
      e.preventDefault();
      const [s, end] = [0, app.view.total];
      app.selection.setMany(app.view.loadedRows(s, end).map(([, r]) => `${r.split}\u0000${r.id}`));
    } else if (app.selection.size && !config.sandbox && !e.ctrlKey && !e.metaKey && !e.altKey) {
      if (e.key === "d") void actions.run("discard");
      else if (e.key === "r") void actions.run("restore");
      else if (e.key === "t") {
        e.preventDefault();
        actions.focusTag();
      }
    }
  });

  setupKeys({ app, cockpit, actions, grid, painter, modalOpen: () => modal.isOpen(), blocked: () => !tokenScreen.hidden });

  app.start();
  plots.start();
  if (!token) {
    app.markUnauthorized();
    showTokenScreen("Open the URL printed by `weightslab studio` (it carries the token), or paste the token here.");
  }
}

boot();
