// Hyperparameters card: every live key with an input of its type; an edit shows
// "requested → applying…" until the loop applies it at a step boundary, then "applied".
// The server's validation message appears under the key. Read-only in sandbox mode.

import { errorText } from "../api/client.js";
import type { Studio } from "../app.js";
import { type HpKind, type HpRowState, type HpValue, hpKind, hpPollInterval, hpRequest, hpText } from "../cockpit.js";
import { byId, h } from "./dom.js";
import { writeControl } from "./popover.js";

interface RowEls {
  el: HTMLDivElement;
  input: HTMLInputElement;
  state: HTMLSpanElement;
  error: HTMLDivElement;
  kind: HpKind;
  /** The value an edit sent from this page asked for, until the loop took it (or refused it). */
  sent: string | null;
}

export function setupHyperParameters(app: Studio): void {
  const sandbox = app.config.sandbox;
  const host = byId("hparams");
  const lastError = byId("hparams-error");
  const rows = new Map<string, RowEls>();
  let states: HpRowState[] = [];

  const send = async (key: string, r: RowEls): Promise<void> => {
    if (sandbox) return;
    const value = hpRequest(r.kind, r.kind === "bool" ? r.input.checked : r.input.value);
    r.error.hidden = true;
    r.el.dataset.phase = "sending";
    r.state.textContent = "sending…";
    try {
      const res = await app.api.setHyperParameter({ key, value: { kind: value } });
      r.sent = hpText(res.requested?.kind as HpValue);
      r.el.dataset.phase = "requested";
      r.state.textContent = `${r.sent} requested → applying…`;
      r.state.title = "Queued: the training loop applies it at its next step boundary";
      app.scheduler.setInterval("hparams", 2000);
      app.scheduler.trigger("hparams");
    } catch (err) {
      r.el.dataset.phase = "error";
      r.state.textContent = "";
      r.error.hidden = false;
      r.error.textContent = errorText(err);
    }
  };

  const make = (key: string, kind: HpKind): RowEls => {
    const id = `hp-${key.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const input = kind === "bool"
      ? h("input", { id, type: "checkbox", "aria-label": key })
      : h("input", { id, type: "text", inputmode: kind === "number" || kind === "int" ? "decimal" : null, spellcheck: "false", autocomplete: "off", "aria-label": key });
    writeControl(input, sandbox, `${key} (${kind}): Enter to request; applied at the next step`);
    const state = h("span", { class: "wl-hp-state" });
    const error = h("div", { class: "wl-inline-error wl-hp-error", role: "alert", hidden: true });
    const el = h("div", { class: "wl-hp", "data-key": key, "data-kind": kind, "data-phase": "applied" },
      h("label", { class: "wl-hp-key", for: id, title: key, text: key }), input, state, error);
    const r: RowEls = { el, input, state, error, kind, sent: null };
    if (kind === "bool") input.addEventListener("change", () => void send(key, r));
    else {
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") {
          e.preventDefault();
          void send(key, r);
        } else if (e.key === "Escape") {
          input.value = input.dataset.applied ?? "";
          input.blur();
        }
      });
      input.addEventListener("change", () => {
        if (input.value !== input.dataset.applied) void send(key, r);
      });
    }
    return r;
  };

  const render = (params: Array<{ key: string; applied: HpValue | undefined; requested: HpValue | undefined }>, serverError: string): void => {
    states = params.map((p) => ({ key: p.key, kind: hpKind(p.applied), applied: hpText(p.applied), requested: p.requested ? hpText(p.requested) : null }));
    if (!params.length) {
      host.replaceChildren(h("span", { class: "wl-muted", text: "no hyperparameters watched (wl.watch_or_edit(hp, flag='hp'))" }));
      rows.clear();
      return;
    }
    const keep = new Set(params.map((p) => p.key));
    for (const k of [...rows.keys()]) if (!keep.has(k)) rows.delete(k);
    const order: HTMLElement[] = [];
    for (const s of states) {
      let r = rows.get(s.key);
      if (!r || r.kind !== s.kind) {
        r = make(s.key, s.kind);
        rows.set(s.key, r);
      }
      const editing = document.activeElement === r.input;
      if (r.kind === "bool") {
        if (!editing) r.input.checked = s.applied === "true";
      } else if (!editing) r.input.value = s.applied;
      r.input.dataset.applied = s.applied;
      if (s.requested !== null) {
        r.el.dataset.phase = "requested";
        r.state.textContent = `${s.requested} requested → applying…`;
      } else if (r.el.dataset.phase === "requested" || r.el.dataset.phase === "sending") {
        if (r.sent !== null && r.sent !== s.applied) {
          // Valid when queued but refused when applied at the step boundary: the loop kept its value.
          r.el.dataset.phase = "rejected";
          r.state.textContent = "";
          r.error.hidden = false;
          r.error.textContent = `${r.sent} not applied; training kept ${s.applied}${serverError.includes(s.key) ? `: ${serverError}` : ""}`;
        } else {
          // The loop took it: shown as applied (until the next edit).
          r.el.dataset.phase = r.sent !== null ? "applied-now" : "applied";
          r.state.textContent = r.sent !== null ? "applied ✓" : "";
        }
        r.sent = null;
      }
      order.push(r.el);
    }
    const same = order.length === host.children.length && order.every((el, i) => host.children[i] === el);
    if (!same) host.replaceChildren(...order); // untouched rows keep the focus of an edit in progress
  };

  app.scheduler.poll({
    kind: "hparams",
    intervalMs: 10_000,
    paused: true, // starts once the page is live (no token: no request)
    run: async () => {
      const res = await app.api.getHyperParameters({});
      render(res.parameters.map((p) => ({ key: p.key, applied: p.applied?.kind as HpValue | undefined, requested: p.requested?.kind as HpValue | undefined })), res.lastError);
      lastError.hidden = !res.lastError;
      lastError.textContent = res.lastError ? `last refused edit: ${res.lastError}` : "";
      app.scheduler.setInterval("hparams", hpPollInterval(states));
    },
    onError: () => {
      /* the status poll reports connectivity; retried on the next interval */
    },
  });
  app.connChanged.on((c) => {
    if (c === "live") app.scheduler.resume("hparams");
    else if (c === "unauthorized") app.scheduler.pause("hparams");
  });
}
