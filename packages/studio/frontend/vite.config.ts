import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadEnv } from "vite";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

// `npm run dev` has no launcher to generate /config.js: an empty one (no-store), so index.html's
// <script src="/config.js"> loads without a 404 and every setting falls back to its VITE_* value.
function devConfigJs(): Plugin {
  return {
    name: "weightslab-dev-config-js",
    apply: "serve",
    configureServer(server) {
      server.middlewares.use("/config.js", (_req, res) => {
        res.setHeader("Content-Type", "text/javascript; charset=utf-8");
        res.setHeader("Cache-Control", "no-store");
        res.end("// npm run dev: no runtime settings (VITE_* values apply)\n");
      });
    },
  };
}

// `npm run build` writes the site into the Python package (served by `weightslab studio`);
// `npm run dev` serves on VITE_HOST:VITE_PORT and reads VITE_* from the environment / .env.
export default defineConfig(({ mode }) => {
  const env = loadEnv(mode, process.cwd(), "VITE_");
  const port = Number(process.env.VITE_PORT ?? env.VITE_PORT ?? 5173);
  return {
    base: "./",
    envPrefix: "VITE_",
    plugins: [devConfigJs()],
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
