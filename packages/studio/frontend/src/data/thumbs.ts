// Thumbnails: immutable, cached as `data:` URLs within the entry and MB budgets; fetched a page
// at a time (GetThumbnails) through the scheduler's "thumbs" kind, visible cells first, then
// the prefetch window. Servers without GetThumbnails get GetThumbnail per cell (4 at a time).
// Why `data:` and not blob URLs: `new Blob` + `URL.createObjectURL` register every thumbnail
// with the browser process synchronously — the largest main-thread cost while the grid scrolls
// (hundreds a second). A data URL is built in the page, is released by garbage collection (no
// revoke to track), and the <img decoding="async"> still decodes it off the main thread.

import { type Api, Code, errorCode, errorText, isBackoffError } from "../api/client.js";
import { sampleKey } from "../api/model.js";
import { BudgetCache, MB } from "../cache.js";
import { Emitter } from "../events.js";
import type { Scheduler } from "../scheduler.js";

export interface ThumbRef {
  id: string;
  split: string;
}

export interface ThumbEvent {
  key: string;
  url: string | null;
  error?: string;
}

const MAX_BATCH = 512;
const FALLBACK_CONCURRENCY = 4;

export class ThumbnailStore {
  readonly events = new Emitter<ThumbEvent>();
  readonly cache: BudgetCache<string, string>;
  private queue: ThumbRef[] = [];
  /** Thumbnails shown on screen, per cache key (URL + how many cells show it): still known
   * (not fetched again) once evicted. Two samples with equal bytes share a URL, not a pin. */
  private readonly shownByKey = new Map<string, { url: string; cells: number }>();
  private failed = new Map<string, string>();
  private pumping = false;
  private batched = true;
  size = 128;
  batchSize = 64;

  constructor(
    private readonly api: Api,
    private readonly scheduler: Scheduler,
    maxEntries: number,
    maxMb: number,
  ) {
    this.cache = new BudgetCache<string, string>({ maxEntries, maxBytes: maxMb * MB });
  }

  /** A cell shows `url` for `ref` (call unpin when it stops). */
  pin(ref: ThumbRef, url: string): void {
    const key = this.key(ref);
    const shown = this.shownByKey.get(key);
    if (shown && shown.url === url) shown.cells++;
    else this.shownByKey.set(key, { url, cells: 1 });
  }

  unpin(ref: ThumbRef, url: string): void {
    const key = this.key(ref);
    const shown = this.shownByKey.get(key);
    if (!shown || shown.url !== url) return;
    if (--shown.cells <= 0) this.shownByKey.delete(key);
  }

  /** Thumbnail URLs held now: the cache's plus the evicted ones still on screen. */
  liveUrls(): number {
    let evictedShown = 0;
    for (const key of this.shownByKey.keys()) if (!this.cache.has(key)) evictedShown++;
    return this.cache.size + evictedShown;
  }

  private key(ref: ThumbRef): string {
    return `${this.size}|${sampleKey(ref.split, ref.id)}`;
  }

  url(ref: ThumbRef): string | undefined {
    const key = this.key(ref);
    return this.cache.get(key) ?? this.shownByKey.get(key)?.url;
  }

  error(ref: ThumbRef): string | undefined {
    return this.failed.get(this.key(ref));
  }

  /** Sets the thumbnail edge (a new size is a new set of cache keys). */
  setSize(px: number): void {
    this.size = px;
  }

  /** Replaces the wish list: `visible` first, then `prefetch` (both in order). */
  want(visible: ThumbRef[], prefetch: ThumbRef[]): void {
    const seen = new Set<string>();
    const q: ThumbRef[] = [];
    for (const r of [...visible, ...prefetch]) {
      const k = this.key(r);
      if (seen.has(k) || this.cache.has(k) || this.shownByKey.has(k) || this.failed.has(k)) continue;
      seen.add(k);
      q.push(r);
    }
    this.queue = q;
    void this.pump();
  }

  clear(): void {
    this.cache.clear();
    this.failed.clear();
  }

  /** Waits until the queue is empty (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.pumping || this.queue.length) await new Promise((r) => setTimeout(r, 5));
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length) {
        const batch = this.takeBatch();
        if (!batch.length) break;
        try {
          await this.scheduler.run("thumbs", () => (this.batched ? this.fetchBatch(batch) : this.fetchEach(batch)));
        } catch (err) {
          if (this.batched && errorCode(err) === Code.Unimplemented) {
            this.batched = false;
            this.queue.unshift(...batch);
            continue;
          }
          if (isBackoffError(err)) {
            this.queue.unshift(...batch); // retried after the scheduler's back-off
            continue;
          }
          for (const r of batch) this.fail(r, errorText(err));
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Up to batchSize refs of one split (GetThumbnails takes one split per call). */
  private takeBatch(): ThumbRef[] {
    const first = this.queue[0];
    if (!first) return [];
    const n = Math.min(MAX_BATCH, Math.max(1, this.batchSize));
    const batch: ThumbRef[] = [];
    const rest: ThumbRef[] = [];
    for (const r of this.queue) {
      if (batch.length < n && r.split === first.split && !this.cache.has(this.key(r))) batch.push(r);
      else rest.push(r);
    }
    this.queue = rest;
    return batch;
  }

  private store(ref: ThumbRef, data: Uint8Array, mime: string): void {
    const key = this.key(ref);
    const url = dataUrl(data, mime);
    // Cells pin the URL first, so a cache too small for the screen never revokes a shown image.
    this.events.emit({ key: sampleKey(ref.split, ref.id), url });
    // Bytes counted as the URL's length (what the page holds); the budget applies to them.
    this.cache.set(key, url, url.length);
  }

  private fail(ref: ThumbRef, message: string): void {
    this.failed.set(this.key(ref), message);
    this.events.emit({ key: sampleKey(ref.split, ref.id), url: null, error: message });
  }

  private async fetchBatch(batch: ThumbRef[]): Promise<void> {
    const res = await this.api.getThumbnails({ split: batch[0]!.split, sampleIds: batch.map((r) => r.id), size: this.size });
    res.thumbnails.forEach((t, i) => {
      const ref = batch[i];
      if (!ref) return;
      if (t.error) this.fail(ref, t.error);
      else this.store(ref, t.data, t.mimeType);
    });
  }

  private async fetchEach(batch: ThumbRef[]): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batch.length) {
        const ref = batch[next++]!;
        try {
          const t = await this.api.getThumbnail({ sampleId: ref.id, split: ref.split, size: this.size });
          this.store(ref, t.data, t.mimeType);
        } catch (err) {
          if (isBackoffError(err)) throw err;
          this.fail(ref, errorText(err));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(FALLBACK_CONCURRENCY, batch.length) }, worker));
  }
}

/** The bytes as a `data:` URL (base64, built in chunks: no argument-count limit). */
export function dataUrl(data: Uint8Array, mime: string): string {
  let bin = "";
  for (let i = 0; i < data.length; i += 0x2000) bin += String.fromCharCode(...data.subarray(i, i + 0x2000));
  return `data:${mime || "application/octet-stream"};base64,${btoa(bin)}`;
}

export { MB };
