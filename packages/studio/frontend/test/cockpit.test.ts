import { describe, expect, it } from "vitest";
import {
  cellsBetween, clampSideWidth, DEFAULT_DISPLAY, evalSummary, hpKind, hpPollInterval, hpRequest, hpText, labelBadge, PaintStroke,
  parseSteps, parseTagName, sanitizeDisplay, SHORTCUTS, shortcutOf, SIDE_MAX, SIDE_MIN,
} from "../src/cockpit.js";

const key = (k: string, mods: Partial<{ shiftKey: boolean; ctrlKey: boolean; metaKey: boolean; altKey: boolean }> = {}) =>
  ({ key: k, shiftKey: false, ctrlKey: false, metaKey: false, altKey: false, ...mods });

describe("parseSteps", () => {
  it("reads whole numbers in the server's range", () => {
    expect(parseSteps(" 7 ")).toBe(7);
    expect(parseSteps("1,000")).toBe(1000);
    expect(parseSteps("1_000_000_000")).toBe(1_000_000_000);
  });
  it("names the value and the accepted range", () => {
    expect(() => parseSteps("0")).toThrow(/0 is out of range: expected 1\.\.1000000000/);
    expect(() => parseSteps("2.5")).toThrow(/"2.5" is not a whole number/);
    expect(() => parseSteps("-3")).toThrow(/not a whole number/);
    expect(() => parseSteps("")).toThrow(/steps/);
    expect(() => parseSteps("1000000001")).toThrow(/out of range/);
  });
});

describe("hyperparameter values", () => {
  it("keeps the applied value's type when the text allows it", () => {
    expect(hpRequest("number", " 0.0005 ")).toEqual({ case: "number", value: 0.0005 });
    expect(hpRequest("int", "12")).toEqual({ case: "int", value: 12n });
    expect(hpRequest("bool", true)).toEqual({ case: "bool", value: true });
    expect(hpRequest("bool", "False")).toEqual({ case: "bool", value: false });
    expect(hpRequest("string", " spaced ")).toEqual({ case: "string", value: " spaced " });
    expect(hpRequest("json", "[1, 2]")).toEqual({ case: "json", value: "[1, 2]" });
  });
  it("sends text that does not parse as a string, for the server to refuse with its message", () => {
    expect(hpRequest("number", "fast please")).toEqual({ case: "string", value: "fast please" });
    expect(hpRequest("int", "2.5")).toEqual({ case: "string", value: "2.5" });
    expect(hpRequest("number", "")).toEqual({ case: "string", value: "" });
  });
  it("shows values as an input would", () => {
    expect(hpText({ case: "number", value: 0.003 })).toBe("0.003");
    expect(hpText({ case: "int", value: 100n })).toBe("100");
    expect(hpText({ case: "bool", value: false })).toBe("false");
    expect(hpText(undefined)).toBe("");
    expect(hpKind(undefined)).toBe("null");
    expect(hpKind({ case: "int", value: 1n })).toBe("int");
  });
  it("polls fast only while an edit waits for the loop", () => {
    const applied = { key: "lr", kind: "number" as const, applied: "0.1", requested: null };
    expect(hpPollInterval([applied])).toBe(10_000);
    expect(hpPollInterval([applied, { ...applied, key: "x", requested: "0.2" }])).toBe(2000);
  });
});

describe("evalSummary", () => {
  it("reads progress, results and failures", () => {
    expect(evalSummary({ state: "running", progress: 0.456, metrics: {}, message: "" })).toBe("running 46%");
    expect(evalSummary({ state: "done", progress: 1, metrics: { eval_loss: 0.14493, eval_accuracy: 0.9 }, message: "" }))
      .toBe("done: eval_accuracy 0.9 · eval_loss 0.1449");
    expect(evalSummary({ state: "error", progress: 0.2, metrics: {}, message: "no loader" })).toBe("error: no loader");
    expect(evalSummary({ state: "idle", progress: 0, metrics: {}, message: "" })).toBe("no evaluation yet");
  });
});

describe("painter", () => {
  it("keeps each cell of a stroke once, in visiting order", () => {
    const s = new PaintStroke();
    expect([s.add(3), s.add(4), s.add(3), s.add(null), s.add(-1), s.add(5)]).toEqual([true, true, false, false, false, true]);
    expect(s.order).toEqual([3, 4, 5]);
    expect(s.size).toBe(3);
  });
  it("fills the cells a fast drag jumped over", () => {
    expect(cellsBetween(0, 3, 8)).toEqual([1, 2, 3]); // along a row
    expect(cellsBetween(0, 16, 8)).toEqual([8, 16]); // down a column
    expect(cellsBetween(5, 5, 8)).toEqual([5]);
    expect(cellsBetween(9, 0, 8)).toEqual([0]); // diagonal neighbour
  });
  it("reads new tag names and names what is wrong", () => {
    expect(parseTagName(" review ")).toEqual({ name: "review", value: null });
    expect(parseTagName("weather = rainy")).toEqual({ name: "weather", value: "rainy" });
    expect(() => parseTagName("")).toThrow(/type a name/);
    expect(() => parseTagName("two words")).toThrow(/"two words" is not a tag name/);
    expect(() => parseTagName("weather=")).toThrow(/no value after '='/);
  });
});

describe("labelBadge", () => {
  const all = { label: true, prediction: true, correct: true };
  it("shows label and prediction and whether they differ", () => {
    expect(labelBadge(3, 5, all)).toEqual({ text: "3→5", wrong: true });
    expect(labelBadge(3, 3, all)).toEqual({ text: "3→3", wrong: false });
    expect(labelBadge(3, null, all)).toEqual({ text: "3", wrong: null });
  });
  it("follows the overlay switches", () => {
    expect(labelBadge(3, 5, { ...all, prediction: false })).toEqual({ text: "3", wrong: true });
    expect(labelBadge(3, 5, { ...all, correct: false })).toEqual({ text: "3→5", wrong: null });
    expect(labelBadge(3, 5, { label: false, prediction: false, correct: true })).toBeNull();
    expect(labelBadge(0.5, 1, all, (v) => `<${String(v)}>`)).toEqual({ text: "<0.5>→<1>", wrong: true });
  });
});

describe("left panel width", () => {
  it("stays between the minimum and half the window", () => {
    expect(clampSideWidth(100, 1600)).toBe(SIDE_MIN);
    expect(clampSideWidth(300.4, 1600)).toBe(300);
    expect(clampSideWidth(900, 1600)).toBe(SIDE_MAX);
    expect(clampSideWidth(500, 800)).toBe(400);
    expect(clampSideWidth(500, 200)).toBe(SIDE_MIN);
    expect(clampSideWidth(Number.NaN, 1600)).toBe(248);
  });
});

describe("shortcuts", () => {
  it("maps the cockpit's keys and leaves the others alone", () => {
    expect(shortcutOf(key("P", { shiftKey: true }))).toBe("toggle-run");
    expect(shortcutOf(key("N", { shiftKey: true }))).toBe("run-n");
    expect(shortcutOf(key("E", { shiftKey: true }))).toBe("evaluate");
    expect(shortcutOf(key("T", { shiftKey: true }))).toBe("tag");
    expect(shortcutOf(key("D", { shiftKey: true }))).toBe("discard");
    expect(shortcutOf(key("j"))).toBe("next");
    expect(shortcutOf(key("k"))).toBe("prev");
    expect(shortcutOf(key("b"))).toBe("paint");
    // the grid / main.ts / the browser keep these
    for (const k of ["p", "d", "t", "v", "/", "?", " ", "Escape", "ArrowLeft"]) expect(shortcutOf(key(k))).toBeNull();
    expect(shortcutOf(key("P", { shiftKey: true, ctrlKey: true }))).toBeNull();
  });
  it("lists every key the handler knows in the help overlay", () => {
    const listed = SHORTCUTS.map((s) => s.keys).join(" ");
    for (const k of ["Shift+P", "Shift+N", "Shift+E", "T", "D", "R", "B", "j · k", "/", "?", "Esc"]) expect(listed).toContain(k);
    const actions = new Set(SHORTCUTS.map((s) => s.action));
    for (const a of ["toggle-run", "run-n", "evaluate", "tag", "discard", "paint"] as const) expect(actions).toContain(a);
  });
});

describe("sanitizeDisplay", () => {
  it("keeps valid stored fields and falls back to the defaults for the rest", () => {
    expect(sanitizeDisplay(null)).toEqual(DEFAULT_DISPLAY);
    const s = sanitizeDisplay({ cellSize: 999, thumbRes: 160, overlays: { prediction: false, split: "no" } });
    expect(s.cellSize).toBe(240);
    expect(s.thumbRes).toBe(160);
    expect(s.overlays).toEqual({ ...DEFAULT_DISPLAY.overlays, prediction: false });
    expect(sanitizeDisplay({ thumbRes: 100, cellSize: "big" })).toMatchObject({ thumbRes: 0, cellSize: 128 });
  });
});
