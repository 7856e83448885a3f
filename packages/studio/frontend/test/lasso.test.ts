import { describe, expect, it } from "vitest";
import type { Api } from "../src/api/client";
import { PAGE_SIZE, ViewModel } from "../src/data/view";
import { Scheduler } from "../src/scheduler";
import { positionsInRect, Selection, toSpans } from "../src/selection";

const key = (id: string | number): string => `train\u0000${id}`;

/** QuerySamples over `n` rows whose id at position i is `s{i}` (sorted view), recording requests. */
function fakeApi(n: number) {
  const asked: Array<{ offset: number; limit: number; query: string }> = [];
  const api = {
    async querySamples(req: { query?: { kind: { value: string } }; page: { offset: bigint; limit: number } }) {
      const offset = Number(req.page.offset);
      asked.push({ offset, limit: req.page.limit, query: req.query?.kind.value ?? "" });
      const rows = [];
      for (let i = offset; i < Math.min(n, offset + req.page.limit); i++) {
        rows.push({ sampleId: `s${i}`, split: "train", discarded: false, values: [], tags: [], categories: {} });
      }
      return { total: BigInt(n), offset: BigInt(offset), columns: [], rows };
    },
  };
  return { api: api as unknown as Api, asked };
}

describe("lasso geometry", () => {
  const g = { cols: 4, cellW: 100, cellH: 130, gap: 6, pad: 8, total: 30 };
  it("covers every cell the rectangle touches, in view order, within the view", () => {
    // rows 0..1, columns 1..2
    expect(positionsInRect(120, 10, 300, 200, g)).toEqual([1, 2, 5, 6]);
    // far below: rows 6..7 (positions 24..31, the view ends at 30)
    expect(positionsInRect(0, 6 * 136 + 10, 1000, 7 * 136 + 10, g)).toEqual([24, 25, 26, 27, 28, 29]);
  });
  it("merges positions into spans", () => {
    expect(toSpans([5, 1, 2, 3, 9], [[10, 12]])).toEqual([[1, 4], [5, 6], [9, 12]]);
    expect(toSpans([])).toEqual([]);
  });
});

describe("selection by position (rows not loaded yet)", () => {
  it("counts lassoed positions, shows them selected, and toggles one off", () => {
    const sel = new Selection();
    sel.setMany([key(0), key(1)], [], [400, 401, 402, 403]);
    expect(sel.size).toBe(6);
    expect(sel.hasAt(key("s401"), 401)).toBe(true);
    expect(sel.hasAt(key("s404"), 404)).toBe(false);
    sel.click(402, key("s402"), { shift: false, toggle: true }, () => []);
    expect(sel.size).toBe(5);
    expect(sel.pending()).toEqual([[400, 402], [403, 404]]);
    // a ctrl-lasso keeps the positions of the selection it started from
    sel.setMany([key(7)], sel.all(), [900], sel.pending());
    expect(sel.pending()).toEqual([[400, 402], [403, 404], [900, 901]]);
    sel.clear();
    expect(sel.size).toBe(0);
    expect(sel.pending()).toEqual([]);
  });

  it("a plain click replaces a lassoed selection", () => {
    const sel = new Selection();
    sel.setMany([], [], [10, 11]);
    sel.click(0, key(0), { shift: false, toggle: false }, () => []);
    expect(sel.all()).toEqual([key(0)]);
    expect(sel.pending()).toEqual([]);
  });

  it("resolves positions to ids through the view when an action runs: loaded rows from pages, the rest in one query per run", async () => {
    const { api, asked } = fakeApi(5000);
    const view = new ViewModel(api, new Scheduler());
    await view.set("loss > 1", { column: "loss", descending: true }); // page 0 loaded
    asked.length = 0;
    const sel = new Selection();
    // the lasso covered loaded rows 198..199 and, by position, rows 200..203 and 3000..3001
    sel.setMany([key("s198"), key("s199")], [], [200, 201, 202, 203, 3000, 3001]);
    expect(sel.size).toBe(8);
    await sel.resolve((spans) => view.keysAt(spans));
    expect(sel.pending()).toEqual([]);
    expect(new Set(sel.all())).toEqual(new Set(["s198", "s199", "s200", "s201", "s202", "s203", "s3000", "s3001"].map(key)));
    expect(asked).toEqual([
      { offset: 200, limit: 4, query: "loss > 1" },
      { offset: 3000, limit: 2, query: "loss > 1" },
    ]);
    // positions of loaded rows need no request
    sel.clear();
    sel.setMany([], [], [5, 6, PAGE_SIZE - 1]);
    await sel.resolve((spans) => view.keysAt(spans));
    expect(asked).toHaveLength(2);
    expect(sel.all()).toEqual([key("s5"), key("s6"), key(`s${PAGE_SIZE - 1}`)]);
  });

  it("positions past the end of the view resolve to nothing", async () => {
    const { api } = fakeApi(10);
    const view = new ViewModel(api, new Scheduler());
    await view.set("", null);
    expect(await view.keysAt([[8, 20]])).toEqual([key("s8"), key("s9")]);
  });
});
