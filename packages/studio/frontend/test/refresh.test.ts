import { describe, expect, it } from "vitest";
import { DEFAULT_REFRESH, parseIntervalSeconds, RefreshStore, sanitizeRefresh } from "../src/refresh.js";

class MemoryStorage {
  data = new Map<string, string>();
  getItem(k: string): string | null {
    return this.data.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.data.set(k, v);
  }
}

describe("parseIntervalSeconds", () => {
  it("reads seconds into ms within range", () => {
    expect(parseIntervalSeconds("data interval", "2.5")).toBe(2500);
    expect(parseIntervalSeconds("data interval", " 0.5 ")).toBe(500);
  });
  it("names the field, the value and the range", () => {
    expect(() => parseIntervalSeconds("plots interval", "soon")).toThrow(/plots interval: "soon" is not a number of seconds/);
    expect(() => parseIntervalSeconds("data interval", "0.1")).toThrow(/data interval: 0.1 s is out of range: expected 0.5..600 s/);
    expect(() => parseIntervalSeconds("data interval", "")).toThrow(/data interval/);
  });
});

describe("RefreshStore", () => {
  it("starts from the defaults and keeps valid stored fields only", () => {
    expect(sanitizeRefresh(null)).toEqual(DEFAULT_REFRESH);
    expect(sanitizeRefresh({ dataAuto: false, plotsIntervalMs: 10, dataIntervalMs: 4000, plotsAuto: "no" }))
      .toEqual({ ...DEFAULT_REFRESH, dataAuto: false, dataIntervalMs: 4000 });
    const storage = new MemoryStorage();
    storage.setItem("wl-refresh", "{not json");
    expect(new RefreshStore(storage).get()).toEqual(DEFAULT_REFRESH);
  });
  it("persists changes and tells subscribers, once per real change", () => {
    const storage = new MemoryStorage();
    const store = new RefreshStore(storage);
    const seen: boolean[] = [];
    const off = store.subscribe((s) => seen.push(s.plotsAuto));
    store.set({ plotsAuto: false });
    store.set({ plotsAuto: false }); // no change: no event
    store.set({ plotsIntervalMs: 1 }); // invalid: ignored
    expect(seen).toEqual([true, false]);
    expect(new RefreshStore(storage).get()).toMatchObject({ plotsAuto: false, plotsIntervalMs: DEFAULT_REFRESH.plotsIntervalMs });
    off();
    store.set({ plotsAuto: true });
    expect(seen).toEqual([true, false]);
  });
  it("works without storage", () => {
    const store = new RefreshStore(null);
    expect(store.set({ dataAuto: false }).dataAuto).toBe(false);
  });
});
