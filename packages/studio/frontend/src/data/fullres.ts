// Full-resolution media for the detail modal: streamed (StreamSample) and kept within the
// modal MB budget. One stream at a time; walking to the next sample cancels the previous one.

import type { Api } from "../api/client.js";
import { sampleKey } from "../api/model.js";
import { BudgetCache, MB } from "../cache.js";
import { NpyError, npyToRgba, parseNpy, rgbaToPng } from "../npy.js";
import type { Scheduler } from "../scheduler.js";

const NPY_MIME = "application/x-npy";

/** Tensors arrive as .npy: shown as a PNG of the array (grey or colour, min-max scaled). */
async function npyBlobToPng(blob: Blob): Promise<Blob> {
  const arr = parseNpy(new Uint8Array(await blob.arrayBuffer()));
  const img = npyToRgba(arr);
  if (!img) throw new NpyError(`array of shape (${arr.shape.join(", ")}) is not an image`);
  return rgbaToPng(img);
}

export interface FullImage {
  url: string;
  mime: string;
  bytes: number;
}

export class FullResStore {
  readonly cache: BudgetCache<string, FullImage>;
  private abort: AbortController | null = null;
  /** An image larger than the whole budget: shown, never cached, released on the next load. */
  private transient: FullImage | null = null;

  constructor(private readonly api: Api, private readonly scheduler: Scheduler, maxMb: number) {
    this.cache = new BudgetCache<string, FullImage>({ maxEntries: 10_000, maxBytes: maxMb * MB }, (_k, v) => {
      if (v !== this.transient) URL.revokeObjectURL(v.url);
    });
  }

  async load(id: string, split: string, onProgress?: (loaded: number, total: number) => void): Promise<FullImage> {
    const key = sampleKey(split, id);
    const hit = this.cache.get(key);
    if (hit) return hit;
    this.abort?.abort();
    const ctl = new AbortController();
    this.abort = ctl;
    return this.scheduler.run("fullres", async () => {
      const parts: Uint8Array[] = [];
      let mime = "";
      let total = 0;
      let loaded = 0;
      for await (const chunk of this.api.streamSample({ sampleId: id, split, chunkBytes: 256 * 1024 }, { signal: ctl.signal, timeoutMs: 120_000 })) {
        if (chunk.mimeType) mime = chunk.mimeType;
        if (chunk.totalBytes) total = Number(chunk.totalBytes);
        parts.push(chunk.data);
        loaded += chunk.data.byteLength;
        onProgress?.(loaded, total);
      }
      let blob = new Blob(parts as BlobPart[], { type: mime || "application/octet-stream" });
      if (mime === NPY_MIME) blob = await npyBlobToPng(blob);
      const image: FullImage = { url: URL.createObjectURL(blob), mime, bytes: Math.max(loaded, blob.size) };
      if (this.transient) {
        URL.revokeObjectURL(this.transient.url);
        this.transient = null;
      }
      if (!this.cache.set(key, image, image.bytes)) {
        this.transient = image;
      }
      return image;
    });
  }

  cancel(): void {
    this.abort?.abort();
    this.abort = null;
  }

  clear(): void {
    this.cancel();
    this.cache.clear();
  }
}

export { MB };
