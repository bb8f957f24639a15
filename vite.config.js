// One entry per page: every static/src/pages/<page>.js becomes a hashed bundle in static/dist/,
// found by Django through dist/manifest.json (a plain name: collectstatic skips dot folders).
import { readdirSync } from "node:fs";
import { resolve } from "node:path";
import { defineConfig } from "vite";

const pagesDir = resolve(import.meta.dirname, "static/src/pages");
const input = Object.fromEntries(
  readdirSync(pagesDir)
    .filter((name) => name.endsWith(".js"))
    .map((name) => [name.replace(/\.js$/, ""), resolve(pagesDir, name)]),
);

export default defineConfig({
  root: resolve(import.meta.dirname, "static/src"),
  base: "./",
  publicDir: false,
  // node_modules may be a link to a shared install: keep module ids inside the repository.
  resolve: { preserveSymlinks: true },
  build: {
    outDir: resolve(import.meta.dirname, "static/dist"),
    emptyOutDir: true,
    manifest: "manifest.json",
    sourcemap: false,
    target: "es2022",
    chunkSizeWarningLimit: 8000,
    rollupOptions: { input },
  },
  worker: { format: "es" },
  optimizeDeps: { exclude: ["@cornerstonejs/dicom-image-loader"] },
});
