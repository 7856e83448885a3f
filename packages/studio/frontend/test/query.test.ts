import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type Chip, chipText, ChipError, composeQuery, formatName, hasFilter, splitQuery } from "../src/query";

const cases: Array<[Chip, "number" | "string" | "bool" | "unknown", string]> = [
  [{ column: "loss", op: ">", value: "2" }, "number", "loss > 2"],
  [{ column: "loss", op: "<=", value: "0.25" }, "number", "loss <= 0.25"],
  [{ column: "label", op: "==", value: "9" }, "number", "label == 9"],
  [{ column: "label", op: "!=", value: "-3" }, "number", "label != -3"],
  [{ column: "split", op: "==", value: "train" }, "string", 'split == "train"'],
  [{ column: "path", op: "contains", value: 'cat "big"' }, "string", 'path contains "cat \\"big\\""'],
  [{ column: "path", op: "icontains", value: "Dog" }, "string", 'path icontains "Dog"'],
  [{ column: "loss", op: "between", value: "0.5, 2" }, "number", "loss between 0.5 and 2"],
  [{ column: "loss", op: "between", value: "1..3" }, "number", "loss between 1 and 3"],
  [{ column: "label", op: "in", value: "1, 2,3" }, "number", "label in (1, 2, 3)"],
  [{ column: "split", op: "in", value: "train, 'val, x'" }, "string", 'split in ("train", "val, x")'],
  [{ column: "prediction", op: "is null", value: "" }, "number", "prediction is null"],
  [{ column: "prediction", op: "is not null", value: "" }, "number", "prediction is not null"],
  [{ column: "", op: "has-tag", value: "review" }, "unknown", "has:review"],
  [{ column: "", op: "not-has-tag", value: "review" }, "unknown", "not has:review"],
  [{ column: "", op: "has-tag", value: "needs review" }, "unknown", "has:`needs review`"],
  [{ column: "tag:quality", op: "==", value: "blurry" }, "unknown", 'tag:quality == "blurry"'],
  [{ column: "discarded", op: "==", value: "true" }, "bool", "discarded"],
  [{ column: "limit", op: ">", value: "1" }, "number", "`limit` > 1"],
  [{ column: "my col", op: ">", value: "1" }, "number", "`my col` > 1"],
  [{ column: "mislabel.score", op: ">=", value: "0.9" }, "number", "mislabel.score >= 0.9"],
  [{ column: "note", op: "==", value: "é ü" }, "unknown", '"é ü"'.replace(/^/, "note == ")],
];

describe("chipText", () => {
  it.each(cases)("%j (%s) -> %s", (chip, kind, text) => {
    expect(chipText(chip, kind)).toBe(text);
  });

  it("refuses values that do not fit the column", () => {
    expect(() => chipText({ column: "loss", op: ">", value: "abc" }, "number")).toThrow(ChipError);
    expect(() => chipText({ column: "loss", op: ">", value: "" }, "unknown")).toThrow(/required/);
    expect(() => chipText({ column: "loss", op: "between", value: "1" }, "number")).toThrow(/between/);
    expect(() => chipText({ column: "", op: "has-tag", value: "" }, "unknown")).toThrow(/tag name/);
  });

  it("backticks keywords and odd names", () => {
    expect(formatName("sort")).toBe("`sort`");
    expect(formatName("a`b")).toBe("`a\\`b`");
    expect(formatName("tag:x y")).toBe("tag:`x y`");
  });
});

describe("composeQuery / splitQuery", () => {
  it("joins chips and the raw filter, keeping clauses at the end", () => {
    expect(composeQuery(["label == 9", "not has:review"], "loss > 2 or loss < 0.1 sort by loss desc")).toBe(
      "label == 9 and not has:review and (loss > 2 or loss < 0.1) sort by loss desc",
    );
    expect(composeQuery([], "loss > 2 sort by loss")).toBe("loss > 2 sort by loss");
    expect(composeQuery(["a == 1"], "")).toBe("a == 1");
    expect(composeQuery(["a == 1"], "sort by loss")).toBe("a == 1 sort by loss");
  });

  it("does not split inside strings, backticks, parentheses or tag names", () => {
    expect(splitQuery('name == "sort by x" limit 5')).toEqual({ filter: 'name == "sort by x"', clauses: "limit 5" });
    expect(splitQuery("`top` > 1 and has:limit")).toEqual({ filter: "`top` > 1 and has:limit", clauses: "" });
    expect(splitQuery("sorted_loss > 1 TOP 5 by loss")).toEqual({ filter: "sorted_loss > 1", clauses: "TOP 5 by loss" });
  });

  it("knows when a query has a filter", () => {
    expect(hasFilter("")).toBe(false);
    expect(hasFilter("sort by loss")).toBe(false);
    expect(hasFilter("top 5 by loss")).toBe(true);
    expect(hasFilter("loss > 1 sort by loss")).toBe(true);
  });
});

// The real parser: every chip text must parse, and format_query must write it back unchanged.
const python = process.env.WL_PYTHON ?? (existsSync("/work/venv/bin/python") ? "/work/venv/bin/python" : "python3");
const probe = spawnSync(python, ["-c", "import weightslab.query"], { encoding: "utf8" });
const haveParser = !probe.error && probe.status === 0;

describe.runIf(haveParser)("the core parser accepts the compiled text", () => {
  it("round-trips every chip and a composed query", () => {
    const texts = cases.map(([chip, kind]) => chipText(chip, kind));
    texts.push(composeQuery(texts.slice(0, 3), "loss > 2 or has:x sort by loss desc"));
    const script = [
      "import json, sys",
      "from weightslab.query.text import parse_query, format_query",
      "out = []",
      "for t in json.load(sys.stdin):",
      "    out.append(format_query(parse_query(t)))",
      "print(json.dumps(out))",
    ].join("\n");
    const r = spawnSync(python, ["-c", script], { input: JSON.stringify(texts), encoding: "utf8" });
    expect(r.stderr).toBe("");
    const back = JSON.parse(r.stdout) as string[];
    expect(back).toEqual(texts);
  });
});
