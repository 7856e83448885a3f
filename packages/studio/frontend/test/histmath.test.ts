import { describe, expect, it } from "vitest";
import { barAt, binLabel, buildBars, sortOfQuery } from "../src/histmath";

const series = [
  { split: "train", discarded: false, counts: [5, 3, 0, 2] },
  { split: "train", discarded: true, counts: [1, 0, 0, 0] },
  { split: "val", discarded: false, counts: [0, 2, 0, 1] },
];

describe("histogram bars", () => {
  it("stacks splits and discarded, positions follow the sort order", () => {
    const asc = buildBars(series, 4, false, (b) => `b${b}`);
    expect(asc.map((b) => [b.bin, b.total, b.start])).toEqual([[0, 6, 0], [1, 5, 6], [2, 0, 11], [3, 3, 11]]);
    expect(asc[0]!.bySplit.get("train")).toEqual({ active: 5, discarded: 1 });
    const desc = buildBars(series, 4, true, (b) => `b${b}`);
    expect(desc.map((b) => [b.bin, b.start])).toEqual([[3, 0], [2, 3], [1, 3], [0, 8]]);
  });

  it("finds the bar of a view position", () => {
    const bars = buildBars(series, 4, false, String);
    expect(barAt(bars, 0)).toBe(0);
    expect(barAt(bars, 5)).toBe(0);
    expect(barAt(bars, 6)).toBe(1);
    expect(barAt(bars, 11)).toBe(3);
    expect(barAt(bars, 999)).toBe(3);
    expect(barAt([], 3)).toBe(-1);
  });

  it("labels numeric and category bins", () => {
    expect(binLabel([0, 0.5, 1], [], 1, (v) => v.toFixed(1))).toBe("0.5 – 1.0");
    expect(binLabel([], ["cat", "dog"], 1, String)).toBe("dog");
  });

  it("reads the sort of a query's clauses", () => {
    expect(sortOfQuery("sort by loss desc limit 5")).toEqual({ column: "loss", descending: true });
    expect(sortOfQuery("sort by `my col`")).toEqual({ column: "my col", descending: false });
    expect(sortOfQuery("limit 5")).toBeNull();
  });
});
