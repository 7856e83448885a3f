import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffDelay, Scheduler, Superseded, type Visibility } from "../src/scheduler";

class Busy extends Error {}

class FakeVisibility implements Visibility {
  isHidden = false;
  listeners: Array<() => void> = [];
  hidden() { return this.isHidden; }
  onChange(fn: () => void) { this.listeners.push(fn); }
  set(hidden: boolean) { this.isHidden = hidden; this.listeners.forEach((f) => f()); }
}

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => { resolve = a; reject = b; });
  return { promise, resolve, reject };
}

const timers = {
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
  clearTimeout: (h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

beforeEach(() => { vi.useFakeTimers(); });
afterEach(() => { vi.useRealTimers(); });

describe("Scheduler", () => {
  it("polls at its interval with at most one request in flight", async () => {
    const s = new Scheduler({ timers });
    let inFlight = 0;
    let maxInFlight = 0;
    let calls = 0;
    const gates: Array<{ resolve: (v: void) => void }> = [];
    s.poll({ kind: "status", intervalMs: 1000, run: async () => {
      calls++; inFlight++; maxInFlight = Math.max(maxInFlight, inFlight);
      const g = deferred<void>(); gates.push(g); await g.promise; inFlight--;
    } });
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toBe(1);
    // A slow answer: time passes, triggers arrive, nothing overlaps.
    await vi.advanceTimersByTimeAsync(5000);
    s.trigger("status");
    s.trigger("status");
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toBe(1);
    gates[0]!.resolve(undefined);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toBe(2); // the trigger made it run right after
    gates[1]!.resolve(undefined);
    await vi.advanceTimersByTimeAsync(999);
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(3);
    expect(maxInFlight).toBe(1);
    s.stopAll();
  });

  it("backs off exponentially with jitter on busy/unavailable errors, then recovers", async () => {
    const s = new Scheduler({ timers, random: () => 1, isBackoffError: (e) => e instanceof Busy, baseBackoffMs: 1000, maxBackoffMs: 8000 });
    const times: number[] = [];
    let fail = true;
    const failures: number[] = [];
    s.poll({ kind: "status", intervalMs: 100, onError: (_e, n) => failures.push(n), run: async () => {
      times.push(Date.now());
      if (fail) throw new Busy();
    } });
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(1000 + 2000 + 4000 + 8000 + 8000);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(failures).toEqual([1, 2, 3, 4, 5, 6]);
    expect(s.failures("status")).toBe(6);
    fail = false;
    await vi.advanceTimersByTimeAsync(8000);
    const n = times.length;
    await vi.advanceTimersByTimeAsync(100);
    expect(times.length).toBe(n + 1); // back to the normal interval
    expect(s.failures("status")).toBe(0);
    s.stopAll();
  });

  it("jitter stays within half and all of the exponential delay", () => {
    for (const r of [0, 0.25, 0.5, 0.999]) {
      const d = backoffDelay(3, 500, 30_000, () => r);
      expect(d).toBeGreaterThanOrEqual(1000);
      expect(d).toBeLessThanOrEqual(2000);
    }
    expect(backoffDelay(1, 500, 30_000, () => 0)).toBe(250);
    expect(backoffDelay(50, 500, 30_000, () => 1)).toBe(30_000);
  });

  it("other errors do not back off", async () => {
    const s = new Scheduler({ timers, isBackoffError: (e) => e instanceof Busy });
    let calls = 0;
    s.poll({ kind: "k", intervalMs: 100, run: async () => { calls++; throw new Error("bad request"); } });
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(300);
    expect(calls).toBe(4);
    expect(s.failures("k")).toBe(0);
    s.stopAll();
  });

  it("polls slower while the tab is hidden and refreshes on return", async () => {
    const vis = new FakeVisibility();
    const s = new Scheduler({ timers, visibility: vis, hiddenFactor: 5, hiddenMinMs: 3000 });
    let calls = 0;
    s.poll({ kind: "status", intervalMs: 1000, run: async () => { calls++; } });
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(3000);
    expect(calls).toBe(4);
    vis.set(true);
    await vi.advanceTimersByTimeAsync(4999);
    expect(calls).toBe(4);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(5);
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toBe(6);
    vis.set(false);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toBe(7);
    expect(s.effectiveInterval(200)).toBe(200);
    vis.isHidden = true;
    expect(s.effectiveInterval(200)).toBe(3000);
    s.stopAll();
  });

  it("one-off requests of a kind never overlap; a newer queued one supersedes an older", async () => {
    const s = new Scheduler({ timers });
    const g1 = deferred<number>();
    let running = 0;
    let max = 0;
    const job = (v: number, gate?: Promise<number>) => async () => {
      running++; max = Math.max(max, running);
      const out = gate ? await gate : v;
      running--;
      return out;
    };
    const p1 = s.run("rows", job(1, g1.promise));
    const p2 = s.run("rows", job(2));
    const p3 = s.run("rows", job(3));
    await expect(p2).rejects.toBeInstanceOf(Superseded);
    expect(s.inFlight("rows")).toBe(true);
    g1.resolve(1);
    await expect(p1).resolves.toBe(1);
    await expect(p3).resolves.toBe(3);
    expect(max).toBe(1);
    // another kind runs independently
    await expect(s.run("thumbs", job(4))).resolves.toBe(4);
  });

  it("a one-off request waits out the kind's back-off", async () => {
    const s = new Scheduler({ timers, random: () => 1, isBackoffError: (e) => e instanceof Busy, baseBackoffMs: 1000 });
    await expect(s.run("rows", async () => { throw new Busy(); })).rejects.toBeInstanceOf(Busy);
    let ran = false;
    const p = s.run("rows", async () => { ran = true; return 1; });
    await vi.advanceTimersByTimeAsync(999);
    expect(ran).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await expect(p).resolves.toBe(1);
  });
});
