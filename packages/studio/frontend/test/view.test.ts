import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Api } from "../src/api/client";
import { PAGE_SIZE, ViewModel } from "../src/data/view";
import { Scheduler } from "../src/scheduler";

/** A QuerySamples stand-in over `n` rows; "bad" queries get INVALID_ARGUMENT like the server. */
function fakeApi(n: number) {
  const asked: Array<{ query: string; offset: number; limit: number; sort: string }> = [];
  const api = {
    async querySamples(req: { query?: { kind: { value: string } }; page: { offset: bigint; limit: number }; sort: Array<{ column: string; descending: boolean }> }) {
      const query = req.query?.kind.value ?? "";
      const offset = Number(req.page.offset);
      asked.push({ query, offset, limit: req.page.limit, sort: req.sort.map((s) => `${s.column}${s.descending ? "-" : "+"}`).join(",") });
      if (query.includes(">>")) throw new ConnectError("query.text: expected a value (at position 6)", Code.InvalidArgument);
      const total = query ? Math.floor(n / 2) : n;
      const rows = [];
      for (let i = offset; i < Math.min(total, offset + req.page.limit); i++) {
        rows.push({ sampleId: String(i), split: "train", discarded: false, values: [{ kind: { case: "number", value: i / 10 } }], tags: [], categories: {} });
      }
      return { total: BigInt(total), offset: BigInt(offset), columns: [{ name: "loss", type: 1 }], rows };
    },
  };
  return { api: api as unknown as Api, asked };
}

describe("ViewModel", () => {
  it("loads the first page, then missing pages of a range in one request", async () => {
    const { api, asked } = fakeApi(1000);
    const view = new ViewModel(api, new Scheduler());
    await view.set("", { column: "loss", descending: true });
    expect(view.total).toBe(1000);
    expect(view.row(5)?.id).toBe("5");
    expect(view.value(7, "loss")).toBeCloseTo(0.7);
    await view.ensure(150, 650);
    expect(asked.slice(1)).toEqual([{ query: "", offset: PAGE_SIZE, limit: 3 * PAGE_SIZE, sort: "loss-" }]);
    expect(view.row(649)?.id).toBe("649");
    await view.ensure(0, 600); // all loaded: no request
    expect(asked).toHaveLength(2);
  });

  it("keeps the current view when a new query is refused", async () => {
    const { api } = fakeApi(1000);
    const view = new ViewModel(api, new Scheduler());
    await view.set("label == 1", null);
    expect(view.total).toBe(500);
    await expect(view.set("loss >> 2", null)).rejects.toBeInstanceOf(ConnectError);
    expect(view.query).toBe("label == 1");
    expect(view.total).toBe(500);
    expect(view.row(0)?.id).toBe("0");
  });

  it("paging the old view while a new query loads is skipped; the new query wins", async () => {
    const { api, asked } = fakeApi(1000);
    const view = new ViewModel(api, new Scheduler());
    await view.set("", null);
    const switching = view.set("x == 1", null);
    await view.ensure(400, 600);
    await switching;
    expect(asked.map((a) => a.query)).toEqual(["", "x == 1"]);
    expect(view.total).toBe(500);
  });
});

describe("ViewModel refresh after an edit", () => {
  it("is not superseded by a prefetch queued behind it, and a stale page answer does not overwrite it", async () => {
    const n = 1000;
    let tagged = false;
    const gates = new Map<string, () => void>();
    const api = {
      async querySamples(req: { page: { offset: bigint; limit: number } }) {
        const offset = Number(req.page.offset);
        const seenTagged = tagged; // what the server holds when the request arrives
        await new Promise<void>((r) => gates.set(`${offset}+${req.page.limit}`, r));
        const rows = [];
        for (let i = offset; i < Math.min(n, offset + req.page.limit); i++) {
          rows.push({ sampleId: String(i), split: "train", discarded: false, values: [], tags: seenTagged ? ["review"] : [], categories: {} });
        }
        return { total: BigInt(n), offset: BigInt(offset), columns: [], rows };
      },
    } as unknown as Api;
    const open = async (key: string): Promise<void> => {
      for (let i = 0; i < 50 && !gates.has(key); i++) await new Promise((r) => setTimeout(r, 0));
      const release = gates.get(key);
      expect(release, `a request ${key}`).toBeDefined();
      gates.delete(key);
      release!();
    };
    const view = new ViewModel(api, new Scheduler());
    const first = view.set("", null);
    await open(`0+${PAGE_SIZE}`);
    await first;
    const prefetch = view.ensure(PAGE_SIZE, 2 * PAGE_SIZE); // in flight, asked before the edit
    await new Promise((r) => setTimeout(r, 0));
    tagged = true; // the edit lands
    const refresh = view.refresh(0, 2 * PAGE_SIZE); // the grid re-reads what it shows
    const later = view.ensure(2 * PAGE_SIZE, 3 * PAGE_SIZE); // scrolling queues another prefetch
    await open(`0+${2 * PAGE_SIZE}`); // the refresh runs beside the prefetch (its own kind)
    await refresh;
    expect(view.row(0)?.tags).toEqual(["review"]);
    await open(`${PAGE_SIZE}+${PAGE_SIZE}`); // the stale prefetch answers after it
    await prefetch;
    await open(`${2 * PAGE_SIZE}+${PAGE_SIZE}`);
    await later;
    expect(view.row(PAGE_SIZE + 3)?.tags).toEqual(["review"]); // not overwritten by the older answer
    expect(view.row(2 * PAGE_SIZE)?.tags).toEqual(["review"]);
  });
});
