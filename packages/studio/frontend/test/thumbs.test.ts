import { afterEach, describe, expect, it, vi } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Api } from "../src/api/client";
import { dataUrl, ThumbnailStore } from "../src/data/thumbs";
import { Scheduler } from "../src/scheduler";

const KB = 1024;

function fakeApi(opts: { batched?: boolean; bytes?: number } = {}) {
  const calls: string[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const data = (id: string) => new Uint8Array(opts.bytes ?? 10 * KB).fill(id.length);
  const api = {
    async getThumbnails(req: { split: string; sampleIds: string[]; size: number }) {
      if (opts.batched === false) throw new ConnectError("unimplemented", Code.Unimplemented);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      calls.push([...req.sampleIds]);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      return { thumbnails: req.sampleIds.map((id) => (id === "bad" ? { sampleId: id, data: new Uint8Array(), mimeType: "", error: "no preview" } : { sampleId: id, data: data(id), mimeType: "image/png", error: "" })) };
    },
    async getThumbnail(req: { sampleId: string }) {
      calls.push([req.sampleId]);
      return { data: data(req.sampleId), mimeType: "image/png" };
    },
  };
  return { api: api as unknown as Api, calls, maxInFlight: () => maxInFlight };
}

const refs = (n: number, split = "train") => Array.from({ length: n }, (_, i) => ({ id: String(i), split }));

afterEach(() => vi.restoreAllMocks());

describe("ThumbnailStore", () => {
  it("fetches visible thumbnails first, in batches, one request at a time", async () => {
    const { api, calls, maxInFlight } = fakeApi();
    const store = new ThumbnailStore(api, new Scheduler(), 1000, 100);
    store.batchSize = 4;
    store.want(refs(6), refs(10).slice(6));
    await store.idle();
    expect(calls).toEqual([["0", "1", "2", "3"], ["4", "5", "6", "7"], ["8", "9"]]);
    expect(maxInFlight()).toBe(1);
    expect(store.url({ id: "3", split: "train" })).toMatch(/^data:image\/png;base64,/);
  });

  it("stays within the entry and MB budgets (counting what the page holds)", async () => {
    const { api } = fakeApi({ bytes: 200 * KB }); // ~267 KiB as base64
    const store = new ThumbnailStore(api, new Scheduler(), 5, 1); // 5 entries, 1 MB = 3 of them
    store.batchSize = 8;
    store.want(refs(8), []);
    await store.idle();
    expect(store.cache.size).toBe(3);
    expect(store.cache.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(store.liveUrls()).toBe(3);
  });

  it("keeps a thumbnail a cell still shows after eviction (not fetched again); forgets it when the cell lets go", async () => {
    const { api, calls } = fakeApi();
    const store = new ThumbnailStore(api, new Scheduler(), 2, 100);
    const shown = new Map<string, string>();
    store.events.on((e) => {
      if (e.url) {
        store.pin({ id: e.key.split("\u0000")[1]!, split: "train" }, e.url);
        shown.set(e.key, e.url);
      }
    });
    store.batchSize = 4;
    store.want(refs(4), []);
    await store.idle();
    expect(store.cache.size).toBe(2);
    expect(store.liveUrls()).toBe(4); // 2 evicted, but on screen
    expect(store.url({ id: "0", split: "train" })).toBe(shown.get("train\u00000"));
    store.want(refs(4), []);
    await store.idle();
    expect(calls).toHaveLength(1);
    store.unpin({ id: "0", split: "train" }, shown.get("train\u00000")!);
    expect(store.liveUrls()).toBe(3);
    expect(store.url({ id: "0", split: "train" })).toBeUndefined();
  });

  it("encodes the bytes exactly (base64 of every byte value, in chunks)", () => {
    const bytes = new Uint8Array(70_000).map((_, i) => (i * 7) % 256);
    const url = dataUrl(bytes, "image/webp");
    expect(url.startsWith("data:image/webp;base64,")).toBe(true);
    expect(Buffer.from(url.slice(url.indexOf(",") + 1), "base64").equals(Buffer.from(bytes))).toBe(true);
    expect(dataUrl(new Uint8Array([1]), "")).toBe("data:application/octet-stream;base64,AQ==");
  });

  it("records per-sample errors and falls back to one call per cell without GetThumbnails", async () => {
    const { api, calls } = fakeApi({ batched: false });
    const store = new ThumbnailStore(api, new Scheduler(), 100, 100);
    store.want(refs(3), []);
    await store.idle();
    expect(calls.map((c) => c.length)).toEqual([1, 1, 1]);
    expect(store.url({ id: "2", split: "train" })).toMatch(/^data:image\/png;base64,/);
    const b = fakeApi();
    const s2 = new ThumbnailStore(b.api, new Scheduler(), 100, 100);
    s2.want([{ id: "bad", split: "train" }], []);
    await s2.idle();
    expect(s2.error({ id: "bad", split: "train" })).toBe("no preview");
  });
});
