import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadEnv } from "vite";
import { defineConfig } from "vitest/config";

// `npm run build` writes the site into the Python package (served by `weightslab studio`);
// `npm run dev` serves on VITE_HOST:VITE_PORT and reads VITE_* from the environment / .env.
export default defineConfig(({ mode }) => {
  const env = loadEnv(mode, process.cwd(), "VITE_");
  const port = Number(process.env.VITE_PORT ?? env.VITE_PORT ?? 5173);
  return {
    base: "./",
    envPrefix: "VITE_",
    server: {
      host: process.env.VITE_HOST ?? env.VITE_HOST ?? "0.0.0.0",
      port: Number.isFinite(port) ? port : 5173,
      strictPort: true,
    },
    build: {
      outDir: resolve(dirname(fileURLToPath(import.meta.url)), "../src/weightslab_studio/static"),
      emptyOutDir: true,
      target: "es2022",
      sourcemap: false,
      assetsInlineLimit: 0,
      chunkSizeWarningLimit: 800,
    },
    test: {
      environment: "node",
      include: ["test/**/*.test.ts"],
    },
  };
});
