import { describe, expect, it } from "vitest";
import { type AnswerFields, describeAnswer, effectText, historyLine, howToConfigure, parseCommand, planSteps, statusLine } from "../src/agentplan.js";

const base: AnswerFields = {
  planText: "",
  planJson: "{}",
  answer: "",
  applied: false,
  dryRun: false,
  matched: 0,
  sampleIds: [],
  planId: "",
  detailsJson: "{}",
};

describe("parseCommand", () => {
  it("reads free text as a question", () => {
    expect(parseCommand("  tag the top 5% by loss as review ")).toEqual({ kind: "ask", question: "tag the top 5% by loss as review" });
  });
  it("reads the slash commands", () => {
    expect(parseCommand("/reset")).toEqual({ kind: "reset" });
    expect(parseCommand("/history")).toEqual({ kind: "history" });
    expect(parseCommand("/model")).toEqual({ kind: "model", model: "" });
    expect(parseCommand("/MODEL openai/gpt-4o-mini")).toEqual({ kind: "model", model: "openai/gpt-4o-mini" });
    expect(parseCommand("/init")).toEqual({ kind: "init", provider: "", model: "" });
    expect(parseCommand("/init OpenRouter meta/llama")).toEqual({ kind: "init", provider: "openrouter", model: "meta/llama" });
  });
  it("names the wrong part of a bad command", () => {
    expect(parseCommand("")).toMatchObject({ kind: "error" });
    const unknown = parseCommand("/frobnicate x");
    expect(unknown.kind).toBe("error");
    expect(unknown.kind === "error" && unknown.message).toContain('"/frobnicate"');
    const provider = parseCommand("/init claude");
    expect(provider.kind === "error" && provider.message).toMatch(/"claude".*ollama, openrouter/);
    const key = parseCommand("/init openrouter some/model sk-secret");
    expect(key.kind === "error" && key.message).toContain("OPENROUTER_API_KEY");
    expect(key.kind === "error" && key.message).not.toContain("sk-secret");
    expect(parseCommand("/reset now").kind).toBe("error");
    expect(parseCommand("/model a b").kind).toBe("error");
  });
});

describe("effect and plan", () => {
  it("counts rows and shows the first ids", () => {
    expect(effectText(72, ["1004", "279", "1298"])).toBe("72 rows matched (1004, 279, 1298, …)");
    expect(effectText(2, ["a", "b"])).toBe("2 rows matched (a, b)");
    expect(effectText(1, ["a"])).toBe("1 row matched (a)");
    expect(effectText(0, [])).toBe("no row matched");
    expect(effectText(1500, [])).toBe("1,500 rows matched");
    expect(effectText(9, ["1", "2", "3", "4", "5", "6", "7"])).toBe("9 rows matched (1, 2, 3, 4, 5, …)");
  });
  it("splits the server's plan line into steps", () => {
    expect(planSteps('filter split == "train" → top 5% by suspected_mislabel → tag "review"')).toEqual([
      'filter split == "train"',
      "top 5% by suspected_mislabel",
      'tag "review"',
    ]);
    expect(planSteps("(no steps)")).toEqual([]);
    expect(planSteps("")).toEqual([]);
  });
  it("a previewed action offers Apply with its effect, nothing applied", () => {
    const v = describeAnswer({
      ...base,
      planText: 'filter loss > 2 → tag "review"',
      dryRun: true,
      matched: 3,
      sampleIds: ["7", "9", "11"],
      planId: "abcd1234",
      answer: "Preview: would tag 'review' on 3 sample(s)",
      detailsJson: JSON.stringify({ kind: "edit", changed: 2 }),
    });
    expect(v).toMatchObject({ kind: "edit", needsApply: true, wouldChange: 2, ids: ["7", "9", "11"] });
    expect(v.steps).toEqual(["filter loss > 2", 'tag "review"']);
    expect(v.effect).toBe("3 rows matched (7, 9, 11) · 2 would change");
  });
  it("a selection needs no Apply; an applied plan says what changed", () => {
    const sel = describeAnswer({ ...base, planText: "sort by loss desc → limit 2", matched: 600, sampleIds: ["1", "2"], detailsJson: '{"kind":"select"}' });
    expect(sel.needsApply).toBe(false);
    expect(sel.effect).toBe("600 rows matched (1, 2, …)");
    const applied = describeAnswer({ ...base, applied: true, matched: 3, planId: "x", detailsJson: '{"kind":"edit","changed":3}' });
    expect(applied.needsApply).toBe(false);
    expect(applied.effect).toBe("applied to 3 rows, 3 changed");
    const clarify = describeAnswer({ ...base, answer: "Please clarify: which split?", detailsJson: '{"kind":"clarify"}' });
    expect(clarify.effect).toBe("");
    expect(describeAnswer({ ...base, detailsJson: "not json" }).kind).toBe("answer");
  });
});

describe("history", () => {
  const at = (): string => "12:00:00";
  it("labels each kind and shows a plan under an answer", () => {
    expect(historyLine({ timestamp: "2026-01-01T12:00:00+00:00", kind: "question", text: "tag it", detailsJson: "{}" }, at)).toEqual({
      time: "12:00:00", kind: "question", label: "asked", text: "tag it", extra: "",
    });
    const answer = historyLine({ timestamp: "", kind: "answer", text: "Preview…", detailsJson: JSON.stringify({ plan_text: "filter x → tag y", matched: 4 }) }, at);
    expect(answer).toMatchObject({ time: "", kind: "plan", label: "plan", extra: "filter x → tag y · 4 rows" });
    expect(historyLine({ timestamp: "", kind: "model_change", text: "model a → b", detailsJson: "{}" }, at)).toMatchObject({ kind: "model", label: "model" });
    expect(historyLine({ timestamp: "", kind: "connect", text: "connected", detailsJson: "{}" }, at).label).toBe("connect");
    expect(historyLine({ timestamp: "", kind: "reset", text: "agent reset", detailsJson: "{}" }, at).label).toBe("reset");
    expect(historyLine({ timestamp: "", kind: "something_new", text: "x", detailsJson: "" }, at).label).toBe("something_new");
  });
});

describe("status and how-to", () => {
  const ok = { available: true, initialized: true, provider: "openrouter", model: "gpt", message: "" };
  it("names provider and model when usable", () => {
    expect(statusLine(ok)).toBe("openrouter · gpt");
    expect(statusLine({ ...ok, available: false })).toBeNull();
    expect(statusLine({ ...ok, initialized: false })).toBeNull();
  });
  it("says which settings configure an agent", () => {
    for (const lines of [howToConfigure(null, "no plugin"), howToConfigure({ ...ok, initialized: false, message: "not initialised" }), howToConfigure({ ...ok, available: false, message: "unreachable" })]) {
      const text = lines.join("\n");
      expect(text).toContain("OPENROUTER_API_KEY");
      expect(text).toContain("AGENT_CONFIG_PATH");
      expect(text).toContain("agent.provider");
      expect(text).toContain("/init");
    }
    expect(howToConfigure(null).join("\n")).toContain("weightslab[agent]");
    expect(howToConfigure({ ...ok, available: false, message: "ollama: unreachable" })[0]).toContain("ollama: unreachable");
  });
});
