import { describe, expect, it } from "vitest";
import { adaptivePrefetch, ConfigError, imageCacheEntries, resolveConfig } from "../src/config";

describe("resolveConfig", () => {
  it("uses defaults without config.js or VITE_*", () => {
    const c = resolveConfig(undefined, {}, { hardwareConcurrency: 4, deviceMemory: 4 });
    expect(c).toEqual({
      sandbox: false, histogramMaxBins: 512, maxPrefetchBatches: 2, maxImageCacheSize: null,
      gridCacheMaxMb: 128, modalCacheMaxMb: 64, apiBaseUrl: "https://localhost:8080",
    });
  });

  it("prefers config.js over VITE_* values", () => {
    const env = {
      VITE_IS_A_SANDBOX: "0", VITE_HISTOGRAM_MAX_BINS: "100", VITE_MAX_PREFETCH_BATCHES: "1",
      VITE_WS_MAX_IMAGE_CACHE_SIZE: "10", VITE_WS_GRID_CACHE_MAX_MB: "5", VITE_WS_MODAL_CACHE_MAX_MB: "6",
      VITE_SERVER_HOST: "envoy.example", VITE_SERVER_PORT: "9443",
    };
    const c = resolveConfig(
      { sandbox: true, histogramMaxBins: 64, maxPrefetchBatches: 3, maxImageCacheSize: 500, gridCacheMaxMb: 7,
        modalCacheMaxMb: 8, apiBaseUrl: null },
      env, {}, "https://127.0.0.1:8443",
    );
    expect(c).toEqual({
      sandbox: true, histogramMaxBins: 64, maxPrefetchBatches: 3, maxImageCacheSize: 500,
      gridCacheMaxMb: 7, modalCacheMaxMb: 8, apiBaseUrl: "https://127.0.0.1:8443",
    });
  });

  it("falls back to VITE_* per missing key", () => {
    const env = { VITE_IS_A_SANDBOX: "yes", VITE_WS_GRID_CACHE_MAX_MB: "5", VITE_HISTOGRAM_MAX_BINS: "100" };
    const c = resolveConfig({ gridCacheMaxMb: null, maxImageCacheSize: 9 }, env, {}, "https://h:1");
    expect(c.sandbox).toBe(true);
    expect(c.gridCacheMaxMb).toBe(5);
    expect(c.histogramMaxBins).toBe(100);
    expect(c.maxImageCacheSize).toBe(9);
    expect(c.apiBaseUrl).toBe("https://h:1");
  });

  it("names the Envoy origin from VITE_SERVER_* in dev mode", () => {
    const c = resolveConfig(undefined, { VITE_SERVER_PROTOCOL: "http", VITE_SERVER_HOST: "127.0.0.1", VITE_SERVER_PORT: "18080" });
    expect(c.apiBaseUrl).toBe("http://127.0.0.1:18080");
  });

  it("clamps histogram bins to 512", () => {
    expect(resolveConfig({ histogramMaxBins: 4096 }, {}).histogramMaxBins).toBe(512);
    expect(resolveConfig(undefined, { VITE_HISTOGRAM_MAX_BINS: "9999" }).histogramMaxBins).toBe(512);
  });

  it("rejects bad values naming the key", () => {
    expect(() => resolveConfig(undefined, { VITE_IS_A_SANDBOX: "maybe" })).toThrow(/VITE_IS_A_SANDBOX="maybe"/);
    expect(() => resolveConfig(undefined, { VITE_WS_GRID_CACHE_MAX_MB: "-1" })).toThrow(ConfigError);
    expect(() => resolveConfig({ modalCacheMaxMb: 1.5 }, {})).toThrow(/modalCacheMaxMb/);
    expect(() => resolveConfig(undefined, { VITE_SERVER_PROTOCOL: "ftp" })).toThrow(/VITE_SERVER_PROTOCOL/);
  });

  it("sizes the image cache from prefetch batches when unset", () => {
    const c = resolveConfig({ maxPrefetchBatches: 2 }, {});
    expect(imageCacheEntries(c, 50)).toBe(300);
    expect(imageCacheEntries({ ...c, maxImageCacheSize: 42 }, 50)).toBe(42);
  });

  it("adapts prefetch to the device", () => {
    expect(adaptivePrefetch({ hardwareConcurrency: 2, deviceMemory: 8 })).toBe(1);
    expect(adaptivePrefetch({ hardwareConcurrency: 16, deviceMemory: 16 })).toBe(3);
    expect(adaptivePrefetch({})).toBe(2);
  });
});
