import { defineConfig } from "vitest/config";
import path from "node:path";

export default defineConfig({
  resolve: { alias: { "@": path.resolve(import.meta.dirname) } },
  test: {
    include: ["{lib,server,sandbox,scripts,test}/**/*.test.ts"],
    // Each file: the shell's operator variables dropped, its own TMPDIR, nothing left behind (test/setup.ts).
    globalSetup: ["test/global-setup.ts"],
    setupFiles: ["test/setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // The sandbox tests share the machine's two cores and its cgroups: one file at a time.
    fileParallelism: false,
  },
});
