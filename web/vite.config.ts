/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` proxies the API to a local `plait serve` on :8008.
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false },
  server: {
    proxy: {
      "/_matrix": { target: "http://127.0.0.1:8008", ws: true },
      "/_plait": { target: "http://127.0.0.1:8008", ws: true },
      "/.well-known": "http://127.0.0.1:8008",
    },
  },
  test: {
    environment: "happy-dom",
    include: ["src/**/*.test.{ts,tsx}"],
    pool: "threads",
    maxWorkers: 2,
  },
});
