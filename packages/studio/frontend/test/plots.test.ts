import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildChartData, ema, nearestStep, rangeOf, toCsv } from "../src/plots/chart.js";
import { extremeIndices, uniformIndices } from "../src/plots/downsample.js";
import { CardLayout, matchesSearch } from "../src/plots/layout.js";
import { CurveStore, type CurvesIn } from "../src/plots/store.js";

const answer = (nextSeq: number, series: CurvesIn["series"], markers: CurvesIn["markers"] = [], branches = ["b0"]): CurvesIn => ({
  nextSeq, series, markers, branches,
});
const pts = (signal: string, branch: string, steps: number[], values = steps.map((s) => s / 10)) => ({
  signal, split: "train", branch, steps, values,
});

describe("extremeIndices", () => {
  it("keeps endpoints, the global extremes and stays within the cap", () => {
    const values = Array.from({ length: 10_000 }, (_, i) => Math.sin(i / 50));
    values[4321] = 99;
    values[777] = -99;
    const idx = extremeIndices(values, 200);
    expect(idx.length).toBeLessThanOrEqual(200);
    for (const must of [0, 9999, 4321, 777]) expect(idx).toContain(must);
    expect([...idx].sort((a, b) => a - b)).toEqual(idx);
  });

  it("returns everything under the cap; caps below 4 count as 4", () => {
    expect(extremeIndices([3, 1, 2], 10)).toEqual([0, 1, 2]);
    expect(extremeIndices([5, 1, 9, 2, 7, 3], 2)).toEqual([0, 1, 2, 5]);
  });

  it("uniformIndices spaces points evenly with both ends", () => {
    expect(uniformIndices(11, 3)).toEqual([0, 5, 10]);
    expect(uniformIndices(5, 1)).toEqual([4]);
    expect(uniformIndices(3, 0)).toEqual([0, 1, 2]);
  });
});

const python = process.env.WL_PYTHON ?? (existsSync("/work/venv/bin/python") ? "/work/venv/bin/python" : "python3");
const haveCore = spawnSync(python, ["-c", "import weightslab.operations.downsample"], { encoding: "utf8" }).status === 0;

describe.runIf(haveCore)("the same picks as the core's downsampling", () => {
  it("agrees with weightslab.operations.downsample.extreme_indices", () => {
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const cases = [
      { values: Array.from({ length: 1000 }, () => rnd()), cap: 50 },
      { values: Array.from({ length: 333 }, (_, i) => Math.cos(i) * i), cap: 17 },
      { values: Array.from({ length: 5000 }, () => rnd() * 100 - 50), cap: 400 },
    ];
    const script = "import json,sys\nfrom weightslab.operations.downsample import extreme_indices\n"
      + "print(json.dumps([extreme_indices(c['values'], c['cap']).tolist() for c in json.load(sys.stdin)]))";
    const r = spawnSync(python, ["-c", script], { input: JSON.stringify(cases), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const expected = JSON.parse(r.stdout) as number[][];
    cases.forEach((c, i) => expect(extremeIndices(c.values, c.cap)).toEqual(expected[i]));
  });
});

describe("CurveStore", () => {
  it("appends incremental answers per (signal, split, branch) and moves the cursor", () => {
    const store = new CurveStore();
    expect(store.ingest(answer(3, [pts("loss", "b0", [1, 2, 3])]))).toEqual(new Set(["loss"]));
    store.ingest(answer(5, [pts("loss", "b0", [4, 5]), pts("loss", "b1", [3, 4])], [], ["b0", "b1"]));
    expect(store.cursor).toBe(5);
    const series = store.series("loss");
    expect(series.map((s) => s.branch)).toEqual(["b0", "b1"]);
    expect(series[0]!.steps).toEqual([1, 2, 3, 4, 5]);
    expect(store.version("loss")).toBe(2);
  });

  it("inserts late points in step order", () => {
    const store = new CurveStore();
    store.ingest(answer(2, [pts("acc", "b", [10, 20])]));
    store.ingest(answer(3, [pts("acc", "b", [15], [7])]));
    expect(store.series("acc")[0]!.steps).toEqual([10, 15, 20]);
    expect(store.series("acc")[0]!.values).toEqual([1, 7, 2]);
  });

  it("reports a cursor that went backwards (restarted server) and can reset", () => {
    const store = new CurveStore();
    store.ingest(answer(10, [pts("loss", "b", [1])]));
    expect(store.ingest(answer(2, []))).toBeNull();
    store.reset();
    expect(store.cursor).toBe(0);
    expect(store.signals()).toEqual([]);
  });

  it("thins a long series to the cap, keeping its spike", () => {
    const store = new CurveStore(100);
    const steps = Array.from({ length: 250 }, (_, i) => i);
    const values = steps.map(() => 1);
    values[123] = 50;
    store.ingest(answer(250, [pts("loss", "b", steps, values)]));
    const s = store.series("loss")[0]!;
    expect(s.steps.length).toBeLessThanOrEqual(100);
    expect(s.values).toContain(50);
    expect(s.steps[0]).toBe(0);
    expect(s.steps[s.steps.length - 1]).toBe(249);
  });

  it("a new marker marks every signal as changed", () => {
    const store = new CurveStore();
    store.ingest(answer(2, [pts("loss", "b", [1]), pts("acc", "b", [1])]));
    const changed = store.ingest(answer(2, [], [{ step: 1, kind: "evaluation", text: "", branch: "b" }]));
    expect(changed).toEqual(new Set(["loss", "acc"]));
    expect(store.markers).toHaveLength(1);
  });
});

describe("buildChartData", () => {
  it("aligns few points on their exact steps", () => {
    const d = buildChartData([{ steps: [1, 3], values: [10, 30] }, { steps: [2, 3], values: [20, 31] }], { buckets: 100 });
    expect(d.x).toEqual([1, 2, 3]);
    expect(d.y).toEqual([[10, null, 30], [null, 20, 31]]);
    expect(d.points).toBe(4);
  });

  it("buckets many points with a min/max band that keeps spikes", () => {
    const steps = Array.from({ length: 1000 }, (_, i) => i);
    const values = steps.map(() => 1);
    values[500] = 9;
    const d = buildChartData([{ steps, values }], { buckets: 10 });
    expect(d.x).toHaveLength(10);
    expect(Math.max(...(d.hi[0]!.filter((v) => v !== null) as number[]))).toBe(9);
    expect(d.lo[0]!.every((v) => v === 1)).toBe(true);
    const spikeBucket = d.hi[0]!.indexOf(9);
    expect(d.y[0]![spikeBucket]).toBeCloseTo(1 + 8 / 100);
  });

  it("restricts to [xmin, xmax] and counts the points inside", () => {
    const steps = Array.from({ length: 100 }, (_, i) => i);
    const d = buildChartData([{ steps, values: steps }], { buckets: 500, xmin: 10, xmax: 19 });
    expect(d.x).toEqual(steps.slice(10, 20));
    expect(d.points).toBe(10);
    expect(rangeOf(steps, 10, 19)).toEqual([10, 20]);
  });

  it("ema smooths with debiasing and leaves 0 as raw", () => {
    expect(ema([1, 2, 3], 0)).toEqual([1, 2, 3]);
    const s = ema([4, 4, 4], 0.9);
    s.forEach((v) => expect(v).toBeCloseTo(4));
    const step = ema([0, 10], 0.5);
    expect(step[1]).toBeCloseTo((0.5 * 0 * 0.5 + 0.5 * 10) / (1 - 0.25));
  });
});

describe("csv and helpers", () => {
  it("writes full-precision values and quotes odd fields", () => {
    const csv = toCsv([{ signal: "a,b", split: "train", branch: "x", step: 3, value: 0.1 + 0.2 }]);
    expect(csv).toBe('signal,split,branch,step,value\n"a,b",train,x,3,0.30000000000000004\n');
  });

  it("nearestStep snaps to the closest point", () => {
    expect(nearestStep([10, 20, 30], 14)).toBe(10);
    expect(nearestStep([10, 20, 30], 26)).toBe(30);
    expect(nearestStep([], 3)).toBeNull();
  });
});

describe("CardLayout", () => {
  it("gives new signals a card each, merges and splits", () => {
    const layout = new CardLayout();
    expect(layout.sync(["loss", "accuracy", "val_loss"])).toBe(true);
    expect(layout.groups).toEqual([["accuracy"], ["loss"], ["val_loss"]]);
    layout.merge("loss", "val_loss");
    expect(layout.groups).toEqual([["accuracy"], ["loss", "val_loss"]]);
    expect(layout.sync(["loss", "val_loss"])).toBe(false);
    layout.split("loss");
    expect(layout.groups).toEqual([["accuracy"], ["loss"], ["val_loss"]]);
  });

  it("merges every signal matching a search and filters cards by it", () => {
    const layout = new CardLayout();
    layout.sync(["train_loss", "val_loss", "accuracy"]);
    const matching = ["train_loss", "val_loss", "accuracy"].filter((s) => matchesSearch(s, "LOSS"));
    expect(layout.mergeAll(matching)).toBe("train_loss");
    expect(layout.visible("loss")).toEqual([["train_loss", "val_loss"]]);
    expect(matchesSearch("train_loss", "tr loss")).toBe(true);
    expect(matchesSearch("train_loss", "val")).toBe(false);
  });

  it("restores a saved layout, dropping junk and duplicates", () => {
    const layout = new CardLayout([["a", "b"], ["b", "c"], "x", [1], []]);
    expect(layout.groups).toEqual([["a", "b"], ["c"]]);
  });
});
