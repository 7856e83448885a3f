import { describe, expect, it } from "vitest";
import { BudgetCache, MB } from "../src/cache";

describe("BudgetCache", () => {
  it("keeps at most maxEntries, evicting least recently used first", () => {
    const evicted: string[] = [];
    const c = new BudgetCache<string, number>({ maxEntries: 3, maxBytes: 1e9 }, (k) => evicted.push(k));
    c.set("a", 1, 10);
    c.set("b", 2, 10);
    c.set("c", 3, 10);
    expect(c.get("a")).toBe(1); // a is now the most recent
    c.set("d", 4, 10);
    expect(evicted).toEqual(["b"]);
    expect(c.size).toBe(3);
    expect([..."acd"].every((k) => c.has(k))).toBe(true);
  });

  it("stays within the byte budget", () => {
    const evicted: string[] = [];
    const c = new BudgetCache<string, string>({ maxEntries: 1000, maxBytes: 2 * MB }, (k) => evicted.push(k));
    for (let i = 0; i < 50; i++) {
      c.set(`k${i}`, "v", 300 * 1024);
      expect(c.bytes).toBeLessThanOrEqual(2 * MB);
    }
    expect(c.size).toBe(6); // 6 x 300 KiB <= 2 MiB < 7 x 300 KiB
    expect(evicted).toHaveLength(44);
    expect(c.stats().evictions).toBe(44);
  });

  it("never keeps a value larger than the whole budget (and releases it)", () => {
    const evicted: string[] = [];
    const c = new BudgetCache<string, string>({ maxEntries: 10, maxBytes: 100 }, (k) => evicted.push(k));
    c.set("small", "s", 50);
    expect(c.set("huge", "h", 101)).toBe(false);
    expect(c.has("huge")).toBe(false);
    expect(c.has("small")).toBe(true);
    expect(evicted).toEqual(["huge"]);
  });

  it("replacing a key releases the old value and recounts bytes", () => {
    const evicted: string[] = [];
    const c = new BudgetCache<string, string>({ maxEntries: 10, maxBytes: 100 }, (_k, v) => evicted.push(v));
    c.set("a", "old", 60);
    c.set("a", "new", 30);
    expect(c.bytes).toBe(30);
    expect(evicted).toEqual(["old"]);
  });

  it("shrinking the limits evicts at once; clear releases everything", () => {
    const evicted: string[] = [];
    const c = new BudgetCache<string, number>({ maxEntries: 10, maxBytes: 1000 }, (k) => evicted.push(k));
    for (let i = 0; i < 10; i++) c.set(String(i), i, 100);
    c.setLimits({ maxEntries: 4, maxBytes: 250 });
    expect(c.size).toBe(2);
    expect(c.bytes).toBe(200);
    c.clear();
    expect(c.size).toBe(0);
    expect(c.bytes).toBe(0);
    expect(evicted).toHaveLength(10);
  });

  it("rejects negative limits", () => {
    expect(() => new BudgetCache({ maxEntries: -1, maxBytes: 1 })).toThrow(RangeError);
  });
});
