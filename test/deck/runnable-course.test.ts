/**
 * The sample course checks itself: `npm run check` on content/ compiles and runs every runnable example
 * in the real sandbox and must find nothing wrong. (Part of `npm test`, so CI runs it.)
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "../..");
const TSX = path.join(ROOT, "node_modules/.bin/tsx");

describe("the sample course", () => {
  it("passes npm run check: every runnable example compiles, runs and prints what its slide says", { timeout: 300_000 }, async () => {
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(TSX, ["scripts/check.ts", "content"], { cwd: ROOT, timeout: 280_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/runnable blocks: \d+ compiled and run, all as expected/);
    expect(r.code).toBe(0);
  });
});
