import { describe, expect, it } from "vitest";
import { labelInfo, MAX_CLASS, parseClassLabel } from "../src/labels.js";

describe("parseClassLabel", () => {
  it("reads class indices", () => {
    expect(parseClassLabel(" 3 ")).toBe(3);
    expect(parseClassLabel("0")).toBe(0);
    expect(parseClassLabel("+7")).toBe(7);
    expect(parseClassLabel("9", 10)).toBe(9);
  });
  it("names the value and what is accepted", () => {
    expect(() => parseClassLabel("")).toThrow(/label: type a class index/);
    expect(() => parseClassLabel("cat")).toThrow(/label: "cat" is not a class index: expected an integer >= 0/);
    expect(() => parseClassLabel("-1")).toThrow(/"-1" is not a class index/);
    expect(() => parseClassLabel("2.5")).toThrow(/"2.5" is not a class index/);
    expect(() => parseClassLabel("10", 10)).toThrow(/label: 10 is out of range: expected 0\.\.9 \(10 classes\)/);
    expect(() => parseClassLabel(String(MAX_CLASS + 1))).toThrow(/out of range: expected 0\.\.2147483647/);
  });
  it("leaves the bound to the server when the class count is unknown", () => {
    expect(parseClassLabel("12", null)).toBe(12);
    expect(parseClassLabel("12", 0)).toBe(12);
  });
});

describe("labelInfo", () => {
  it("marks a corrected label and keeps its original", () => {
    expect(labelInfo(3, 5, 3)).toEqual({ label: 3, original: 5, suggested: 3, corrected: true, differs: false });
  });
  it("reads NaN, null and a missing column as unknown", () => {
    expect(labelInfo(3, Number.NaN, undefined)).toEqual({ label: 3, original: null, suggested: null, corrected: false, differs: false });
    expect(labelInfo(null, null, null).corrected).toBe(false);
  });
  it("says when the suggestion differs from the label", () => {
    expect(labelInfo(1, null, 7).differs).toBe(true);
    expect(labelInfo(7, null, 7).differs).toBe(false);
    expect(labelInfo(null, null, 7).differs).toBe(false);
  });
});
