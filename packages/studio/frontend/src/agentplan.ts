// Pure logic of the agent bar (no DOM, tested with vitest): what a line typed in the bar means
// (`/init`, `/model`, `/reset` or a question), how an answer reads (plan steps, its effect
// before anything is applied), how a history entry reads, and what to say when no agent is set up.

export type Command =
  | { kind: "ask"; question: string }
  | { kind: "init"; provider: string; model: string }
  | { kind: "model"; model: string }
  | { kind: "reset" }
  | { kind: "history" }
  | { kind: "error"; message: string };

export const COMMANDS = ["/init", "/model", "/reset", "/history"] as const;
export const PROVIDERS = ["ollama", "openrouter"] as const;

/**
 * A typed line as a command. `/init [ollama|openrouter] [model]` (an API key is never typed in
 * the bar: it would sit in the input's history; the server uses OPENROUTER_API_KEY), `/model`
 * (list) or `/model <id>` (change), `/reset`, `/history`; anything else is a question.
 */
export function parseCommand(line: string): Command {
  const text = line.trim();
  if (!text) return { kind: "error", message: "type a question, or /init, /model, /reset" };
  if (!text.startsWith("/")) return { kind: "ask", question: text };
  const [head = "", ...rest] = text.split(/\s+/);
  const name = head.toLowerCase();
  if (name === "/reset" || name === "/history") {
    if (rest.length) return { kind: "error", message: `${name} takes no argument (got ${JSON.stringify(rest.join(" "))})` };
    return { kind: name === "/reset" ? "reset" : "history" };
  }
  if (name === "/model") {
    if (rest.length > 1) return { kind: "error", message: `/model: one model id expected (got ${rest.length} words); /model alone lists them` };
    return { kind: "model", model: rest[0] ?? "" };
  }
  if (name === "/init") {
    const [provider = "", model = "", ...extra] = rest;
    const p = provider.toLowerCase();
    if (p && !(PROVIDERS as readonly string[]).includes(p)) {
      return { kind: "error", message: `/init: provider ${JSON.stringify(provider)} is not one of ${PROVIDERS.join(", ")}` };
    }
    if (extra.length) {
      return { kind: "error", message: "/init [ollama|openrouter] [model]: an API key is not typed here; set OPENROUTER_API_KEY where the training runs" };
    }
    return { kind: "init", provider: p, model };
  }
  return { kind: "error", message: `unknown command ${JSON.stringify(head)}: expected ${COMMANDS.join(", ")} or a question` };
}

/** The fields of an AgentQueryResponse the bar reads (int64 already converted). */
export interface AnswerFields {
  planText: string;
  planJson: string;
  answer: string;
  applied: boolean;
  dryRun: boolean;
  matched: number;
  sampleIds: readonly string[];
  planId: string;
  detailsJson: string;
}

export interface AnswerView {
  /** select | aggregate | edit | clarify | out_of_scope | empty (the server's answer kind) */
  kind: string;
  /** The plan, one readable step each ("filter …", "sort by loss desc", "tag \"review\""). */
  steps: string[];
  /** "72 rows matched (1004, 279, 1298, …)" — shown before anything is applied. */
  effect: string;
  /** The first ids, for a person to check. */
  ids: string[];
  /** An action was previewed: Apply / Dismiss are offered. */
  needsApply: boolean;
  /** Rows the action would actually change (when the server says). */
  wouldChange: number | null;
  /** The agent's own sentence. */
  answer: string;
}

export const IDS_SHOWN = 5;

/** "72 rows matched (1004, 279, 1298, …)"; "no row matched". */
export function effectText(matched: number, ids: readonly string[], shown = IDS_SHOWN): string {
  if (matched <= 0) return "no row matched";
  const noun = matched === 1 ? "row" : "rows";
  const first = ids.slice(0, shown);
  const more = matched > first.length ? ", …" : "";
  return first.length ? `${fmt(matched)} ${noun} matched (${first.join(", ")}${more})` : `${fmt(matched)} ${noun} matched`;
}

/** The server's one-line plan ("a → b → c") as steps; "(no steps)" is none. */
export function planSteps(planText: string): string[] {
  const t = planText.trim();
  if (!t || t === "(no steps)") return [];
  return t.split(/\s+→\s+/).map((s) => s.trim()).filter(Boolean);
}

function parseJson(text: string): Record<string, unknown> {
  if (!text) return {};
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export function describeAnswer(a: AnswerFields): AnswerView {
  const details = parseJson(a.detailsJson);
  const kind = typeof details.kind === "string" ? details.kind : a.dryRun ? "edit" : "answer";
  const changed = typeof details.changed === "number" ? details.changed : null;
  const needsApply = a.dryRun && !a.applied && a.planId !== "";
  const ids = a.sampleIds.slice(0, IDS_SHOWN);
  let effect: string;
  if (kind === "aggregate") effect = `${fmt(a.matched)} rows grouped`;
  else if (kind === "clarify" || kind === "out_of_scope" || kind === "empty") effect = "";
  else if (a.applied) effect = `applied to ${fmt(a.matched)} ${a.matched === 1 ? "row" : "rows"}` + (changed !== null ? `, ${fmt(changed)} changed` : "");
  else effect = effectText(a.matched, a.sampleIds) + (needsApply && changed !== null ? ` · ${fmt(changed)} would change` : "");
  return { kind, steps: planSteps(a.planText), effect, ids, needsApply, wouldChange: changed, answer: a.answer };
}

export interface HistoryFields {
  timestamp: string;
  kind: string;
  text: string;
  detailsJson: string;
}

export interface HistoryLine {
  /** HH:MM:SS (UTC of the server's stamp, shown in local time), or "" */
  time: string;
  /** question | plan | applied | connect | model | reset | error | … */
  kind: string;
  label: string;
  text: string;
  /** The plan and its effect under an answer ("filter … → tag review · 12 rows"). */
  extra: string;
}

const LABELS: Record<string, string> = {
  question: "asked",
  answer: "plan",
  applied: "applied",
  connect: "connect",
  model_change: "model",
  reset: "reset",
  error: "error",
};

export function historyLine(e: HistoryFields, timeOf: (iso: string) => string = localTime): HistoryLine {
  const d = parseJson(e.detailsJson);
  const kind = e.kind === "answer" ? "plan" : e.kind === "model_change" ? "model" : e.kind || "note";
  let extra = "";
  if (e.kind === "answer") {
    const plan = typeof d.plan_text === "string" ? d.plan_text : "";
    const matched = typeof d.matched === "number" ? d.matched : null;
    extra = [plan, matched !== null ? `${fmt(matched)} ${matched === 1 ? "row" : "rows"}` : ""].filter(Boolean).join(" · ");
  }
  return { time: e.timestamp ? timeOf(e.timestamp) : "", kind, label: LABELS[e.kind] ?? e.kind ?? "note", text: e.text, extra };
}

function localTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return d.toTimeString().slice(0, 8);
}

export interface AgentStatusFields {
  available: boolean;
  initialized: boolean;
  provider: string;
  model: string;
  message: string;
}

/** One line for the bar's status ("openrouter · gpt-4o-mini"), or null when not usable. */
export function statusLine(s: AgentStatusFields): string | null {
  if (!s.initialized || !s.available) return null;
  return [s.provider, s.model].filter(Boolean).join(" · ");
}

/**
 * What a person does to get an agent, given why there is none: the plugin missing
 * (`unavailable`), nothing initialised, or a provider configured but not answering.
 */
export function howToConfigure(s: AgentStatusFields | null, reason = ""): string[] {
  const lines: string[] = [];
  if (s === null) {
    lines.push(`No query agent on this training process${reason ? ` (${reason})` : ""}.`);
    lines.push("Install it where the training runs: pip install 'weightslab[agent]', then restart the training script.");
  } else if (!s.initialized) {
    lines.push(`The agent is not configured${s.message ? ` (${s.message})` : ""}.`);
  } else {
    lines.push(`The agent's model does not answer: ${s.message || `${s.provider} unreachable`}.`);
  }
  lines.push(
    "Local model: agent.provider: ollama with agent.ollama_host / agent.ollama_port / agent.ollama_model in agent_config.yaml (AGENT_CONFIG_PATH names its folder), then /init ollama.",
    "Cloud model: set OPENROUTER_API_KEY where the training runs (agent.provider: openrouter, agent.openrouter_model), then /init openrouter.",
  );
  return lines;
}

function fmt(n: number): string {
  return n.toLocaleString("en-US");
}
