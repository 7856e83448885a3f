// The agent bar above the grid: a question is answered with its plan and effect (rows matched,
// first ids) BEFORE anything changes; Apply sends the previewed plan back (the server applies
// exactly the previewed rows, without asking the model again) and the grid reloads; Dismiss
// drops it. `/init`, `/model`, `/reset`, `/history`; a history panel of the agent's own log.
// No agent (plugin missing, not configured, model unreachable): the bar says which settings fix it.

import { type AgentStatusFields, type AnswerView, describeAnswer, historyLine, howToConfigure, parseCommand, statusLine } from "../agentplan.js";
import { Code, errorCode, errorText } from "../api/client.js";
import { num } from "../api/model.js";
import type { Studio } from "../app.js";
import type { AgentQueryResponse } from "../gen/weightslab/v1/experiment_pb.js";
import { clear, h } from "./dom.js";
import { toast } from "./toast.js";

const HISTORY_LIMIT = 200;
// A model on a CPU can take a while to plan: longer than the page's default call deadline.
const QUERY_TIMEOUT_MS = 180_000;

export class AgentBar {
  private readonly input: HTMLInputElement;
  private readonly status: HTMLSpanElement;
  private readonly answer: HTMLDivElement;
  private readonly howto: HTMLDivElement;
  private readonly models: HTMLDivElement;
  private readonly history: HTMLOListElement;
  private readonly historyBtn: HTMLButtonElement;
  private readonly ask: HTMLButtonElement;
  private busy = false;

  constructor(private readonly app: Studio, private readonly root: HTMLElement) {
    this.input = h("input", {
      id: "agent-input", type: "text", spellcheck: "false", autocomplete: "off", "aria-label": "Ask the agent",
      placeholder: app.config.sandbox ? "the agent is read-only in sandbox mode" : "ask the agent — e.g. tag the 20 highest-loss train samples as review · /model · /reset",
    });
    this.ask = h("button", { id: "agent-ask", class: "wl-btn wl-write", type: "submit", text: "Ask" });
    this.status = h("span", { id: "agent-status", class: "wl-agent-status wl-muted", "data-state": "unknown" });
    const modelBtn = h("button", { id: "agent-model-btn", class: "wl-btn wl-write", type: "button", title: "List and change the model (/model)", text: "/model" });
    this.historyBtn = h("button", { id: "agent-history-btn", class: "wl-btn", type: "button", "aria-expanded": "false", title: "The agent's history (/history)", text: "history" });
    const form = h("form", { id: "agent-form", class: "wl-agent-row" },
      h("span", { class: "wl-agent-label", "aria-hidden": "true", text: "✦ Ask" }), this.input, this.status, this.ask, modelBtn, this.historyBtn);
    this.answer = h("div", { id: "agent-answer", class: "wl-agent-answer", role: "status", "aria-live": "polite", hidden: true });
    this.howto = h("div", { id: "agent-howto", class: "wl-agent-howto", hidden: true });
    this.models = h("div", { id: "agent-models", class: "wl-agent-models", hidden: true });
    this.history = h("ol", { id: "agent-history", class: "wl-agent-history", "aria-label": "Agent history", hidden: true });
    root.append(form, this.howto, this.answer, this.models, this.history);
    if (app.config.sandbox) {
      this.input.disabled = true;
      this.ask.remove();
      modelBtn.remove();
    }

    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.submit(this.input.value);
    });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        this.input.blur();
        this.dismiss();
      }
    });
    modelBtn.addEventListener("click", () => void this.submit("/model"));
    this.historyBtn.addEventListener("click", () => void this.toggleHistory());
    // One health probe each time the backend becomes live (first contact, back after an outage
    // or a restart: a new process has a new agent), again after /init, /model and /reset: no polling.
    app.connChanged.on((state) => {
      if (state === "live") void this.refreshHealth();
    });
    if (app.conn === "live") void this.refreshHealth();
  }

  // ---------------------------------------------------------------- status
  private async refreshHealth(): Promise<void> {
    this.setStatus("checking", "checking the agent…");
    try {
      const s = await this.app.api.agentHealth({});
      this.showStatus(s);
    } catch (err) {
      this.showUnconfigured(null, errorText(err));
    }
  }

  private showStatus(s: AgentStatusFields): void {
    const line = statusLine(s);
    if (line === null) {
      this.showUnconfigured(s, "");
      return;
    }
    this.setStatus("ready", line);
    this.howto.hidden = true;
  }

  private showUnconfigured(s: AgentStatusFields | null, reason: string): void {
    this.setStatus(s === null ? "none" : s.initialized ? "unreachable" : "unconfigured", s === null ? "no agent" : s.initialized ? "model unreachable" : "not configured");
    clear(this.howto);
    const lines = howToConfigure(s, reason);
    // one line above the grid; the settings on demand (a person without an agent keeps the space)
    const more = h("details", { id: "agent-howto-more" }, h("summary", { text: "how to configure an agent" }),
      ...lines.slice(1).map((l) => h("div", { text: l })));
    this.howto.append(h("span", { class: "wl-agent-howto-why", text: lines[0] ?? "" }), more);
    this.howto.hidden = false;
  }

  private setStatus(state: string, text: string): void {
    this.status.dataset.state = state;
    this.status.textContent = text;
    this.root.dataset.agent = state;
  }

  // ---------------------------------------------------------------- commands
  async submit(line: string): Promise<void> {
    if (this.busy) return;
    const cmd = parseCommand(line);
    if (cmd.kind === "error") {
      this.showError(cmd.message);
      return;
    }
    if (cmd.kind === "history") {
      this.input.value = "";
      await this.toggleHistory(true);
      return;
    }
    if (this.app.config.sandbox) {
      this.showError("read-only (sandbox): the agent can't be asked or reconfigured here");
      return;
    }
    this.busy = true;
    this.root.dataset.busy = "1";
    try {
      if (cmd.kind === "ask") await this.query(cmd.question);
      else if (cmd.kind === "reset") this.showStatus(await this.app.api.agentReset({}));
      else if (cmd.kind === "init") this.showStatus(await this.app.api.agentInit({ provider: cmd.provider, model: cmd.model }));
      else if (cmd.model) {
        this.showStatus(await this.app.api.agentChangeModel({ model: cmd.model }));
        this.models.hidden = true;
      } else await this.listModels();
      if (cmd.kind !== "ask") {
        this.input.value = "";
        if (cmd.kind === "reset" || cmd.kind === "init") this.dismiss();
      }
    } catch (err) {
      this.showError(errorText(err));
      if (errorCode(err) === Code.Unavailable || errorCode(err) === Code.FailedPrecondition) void this.refreshHealth();
    } finally {
      this.busy = false;
      delete this.root.dataset.busy;
      void this.loadHistory();
    }
  }

  private async query(question: string): Promise<void> {
    this.renderPending(question);
    const res = await this.app.api.agentQuery({ question, preview: true }, { timeoutMs: QUERY_TIMEOUT_MS });
    this.renderAnswer(question, res, describeAnswer(fields(res)));
  }

  private async apply(planId: string, question: string): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    this.answer.dataset.state = "applying";
    try {
      const res = await this.app.api.agentQuery({ question, apply: true, planId }, { timeoutMs: QUERY_TIMEOUT_MS });
      this.renderAnswer(question, res, describeAnswer(fields(res)));
      await this.app.afterEdit();
      toast("success", res.answer || "Applied.");
    } catch (err) {
      this.showError(errorText(err));
    } finally {
      this.busy = false;
      void this.loadHistory();
    }
  }

  dismiss(): void {
    this.answer.hidden = true;
    this.answer.dataset.state = "dismissed";
    clear(this.answer);
  }

  private async listModels(): Promise<void> {
    const res = await this.app.api.agentModels({});
    clear(this.models);
    const head = h("div", { class: "wl-agent-models-head" },
      h("span", { class: "wl-k", text: `models · current ` }), h("code", { text: res.current || "—" }));
    const close = h("button", { class: "wl-btn wl-ghost wl-small", type: "button", title: "Close", text: "✕" });
    close.addEventListener("click", () => (this.models.hidden = true));
    head.append(h("span", { class: "wl-spacer" }), close);
    const list = h("div", { class: "wl-agent-model-list", role: "list" });
    for (const m of res.models) {
      const b = h("button", {
        class: `wl-btn wl-small wl-agent-model${m.id === res.current ? " wl-current" : ""}`, type: "button", role: "listitem",
        "data-model": m.id, title: m.description || m.name, text: m.name && m.name !== m.id ? `${m.name} (${m.id})` : m.id,
      });
      b.addEventListener("click", () => void this.submit(`/model ${m.id}`));
      list.append(b);
    }
    if (!res.models.length) list.append(h("span", { class: "wl-muted", text: "the provider lists no model" }));
    this.models.append(head, list);
    this.models.hidden = false;
  }

  // ---------------------------------------------------------------- rendering
  private renderPending(question: string): void {
    clear(this.answer);
    this.answer.dataset.state = "asking";
    this.answer.append(h("span", { class: "wl-spinner", "aria-hidden": "true" }), h("span", { class: "wl-muted", text: `planning “${question}”…` }));
    this.answer.hidden = false;
  }

  private renderAnswer(question: string, res: AgentQueryResponse, v: AnswerView): void {
    clear(this.answer);
    this.answer.dataset.state = res.applied ? "applied" : v.needsApply ? "preview" : "answer";
    this.answer.dataset.kind = v.kind;
    this.answer.dataset.matched = String(num(res.matched));
    this.answer.dataset.planId = res.planId;
    const plan = h("div", { class: "wl-agent-plan", id: "agent-plan" }, h("span", { class: "wl-k", text: res.applied ? "Applied" : "Plan" }));
    v.steps.forEach((s, i) => {
      if (i) plan.append(h("span", { class: "wl-agent-arrow", "aria-hidden": "true", text: "→" }));
      plan.append(h("span", { class: "wl-agent-step", text: s }));
    });
    if (!v.steps.length) plan.append(h("span", { class: "wl-muted", text: "no plan" }));
    if (v.effect) {
      plan.append(h("span", { class: "wl-agent-effect", id: "agent-effect", text: `· ${v.effect}` }));
    }
    const row = h("div", { class: "wl-agent-answer-row" }, plan, h("span", { class: "wl-spacer" }));
    if (v.needsApply) {
      const apply = h("button", { id: "agent-apply", class: "wl-btn wl-primary wl-write", type: "button", title: "Apply this plan to exactly the rows shown", text: "Apply" });
      apply.addEventListener("click", () => void this.apply(res.planId, question));
      row.append(apply);
    }
    const dismiss = h("button", { id: "agent-dismiss", class: "wl-btn", type: "button", title: "Dismiss (Esc): nothing is changed", text: v.needsApply ? "Dismiss" : "Close" });
    dismiss.addEventListener("click", () => this.dismiss());
    row.append(dismiss);
    this.answer.append(row);
    if (v.ids.length) {
      this.answer.append(h("div", { class: "wl-agent-ids", id: "agent-ids" }, h("span", { class: "wl-k", text: "first ids " }),
        ...v.ids.map((id) => h("code", { class: "wl-agent-id", "data-sample-id": id, text: id }))));
    }
    if (v.answer) this.answer.append(h("div", { class: "wl-agent-text", id: "agent-text", text: v.answer }));
    this.answer.hidden = false;
  }

  private showError(message: string): void {
    clear(this.answer);
    this.answer.dataset.state = "error";
    const close = h("button", { class: "wl-btn wl-ghost wl-small", type: "button", text: "✕", title: "Close" });
    close.addEventListener("click", () => this.dismiss());
    this.answer.append(h("div", { class: "wl-agent-answer-row" }, h("span", { class: "wl-agent-error", role: "alert", text: message }), h("span", { class: "wl-spacer" }), close));
    this.answer.hidden = false;
  }

  private async toggleHistory(open?: boolean): Promise<void> {
    const show = open ?? this.history.hidden;
    this.history.hidden = !show;
    this.historyBtn.setAttribute("aria-expanded", String(show));
    if (show) await this.loadHistory();
  }

  private async loadHistory(): Promise<void> {
    if (this.history.hidden) return;
    try {
      const res = await this.app.api.agentHistory({ limit: HISTORY_LIMIT });
      clear(this.history);
      for (const e of [...res.entries].reverse()) {
        const line = historyLine(e);
        const li = h("li", { class: "wl-agent-entry", "data-kind": line.kind },
          h("span", { class: "wl-agent-time wl-muted", text: line.time }),
          h("span", { class: "wl-agent-kind", text: line.label }),
          h("span", { class: "wl-agent-entry-text", text: line.text }));
        if (line.extra) li.append(h("span", { class: "wl-agent-entry-extra wl-muted", text: line.extra }));
        this.history.append(li);
      }
      if (!res.entries.length) this.history.append(h("li", { class: "wl-muted", text: "no history yet" }));
    } catch (err) {
      clear(this.history);
      this.history.append(h("li", { class: "wl-agent-error", text: `history: ${errorText(err)}` }));
    }
  }
}

function fields(res: AgentQueryResponse): Parameters<typeof describeAnswer>[0] {
  return {
    planText: res.planText,
    planJson: res.planJson,
    answer: res.answer,
    applied: res.applied,
    dryRun: res.dryRun,
    matched: num(res.matched),
    sampleIds: res.sampleIds,
    planId: res.planId,
    detailsJson: res.detailsJson,
  };
}
