/** What a test file left in its TMPDIR (test/setup.ts), for the file's own check and the run's (test/global-setup.ts). */
import fs from "node:fs";
import path from "node:path";

/**
 * An engine's own folders under its default places (a server or `npm run check` started by a test
 * uses them): its helper builds and compile cache are kept by design, and removed with the file's
 * TMPDIR; so are tsx's and Playwright's compile caches (tsx-<uid>, playwright-transform-cache-<uid>). The sandbox temp
 * root and the kernel runs' root must be empty: an entry there is a run's leftover.
 */
const ENGINE_FOLDERS = new Set([
  "osbyexample-helpers",
  "osbyexample-cache",
  `tsx-${process.getuid?.() ?? 0}`,
  `playwright-transform-cache-${process.getuid?.() ?? 0}`,
]);
const RUN_ROOTS = new Set(["osbyexample-sandbox", "osbyexample-kernel-runs"]);

export function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).flatMap((name) => {
    if (ENGINE_FOLDERS.has(name)) return [];
    if (RUN_ROOTS.has(name)) return fs.readdirSync(path.join(dir, name)).map((run) => `${name}/${run}`);
    return [name];
  });
}

