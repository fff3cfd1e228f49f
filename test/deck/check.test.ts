/** `npm run check` (scripts/check.ts) on fixture decks: output format and exit codes. */
import { execFile } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "../..");
const TSX = path.join(ROOT, "node_modules/.bin/tsx");

function check(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(TSX, ["scripts/check.ts", ...args], { cwd: ROOT, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("npm run check", () => {
  it("exits 0 for a good deck", async () => {
    const r = await check(["test/fixtures/decks/good"]);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("1 deck checked: no problems");
    expect(r.code).toBe(0);
  });

  it("prints file:line: message and exits non-zero for a broken deck", async () => {
    const r = await check(["test/fixtures/decks/broken-include/index.adoc"]);
    expect(r.stdout.trim()).toBe("test/fixtures/decks/broken-include/index.adoc:9: error: include file not found: broken-include/missing-part.adoc");
    expect(r.code).toBe(1);
  });

  it("checks every deck of CONTENT_DIR when given no paths, reporting each problem", async () => {
    // --no-run: this is about the decks' markup (the runnable fixture deck's blocks are the browser tests' toys).
    const r = await check(["--no-run"], { CONTENT_DIR: "test/fixtures/decks" });
    const lines = r.stdout.trim().split("\n");
    expect(lines).toEqual([
      "test/fixtures/decks/broken-block/index.adoc:5: warning: skipping reference to missing attribute: undefined-attribute",
      "test/fixtures/decks/broken-block/index.adoc:8: warning: unterminated listing block",
      "test/fixtures/decks/broken-include/index.adoc:9: error: include file not found: broken-include/missing-part.adoc",
      "test/fixtures/decks/escape/index.adoc:5: warning: include file has illegal reference to ancestor of jail; recovering automatically",
      "test/fixtures/decks/escape/index.adoc:5: error: include file not found: escape/good/parts/included.adoc",
      "test/fixtures/decks/no-index/index.adoc: error: no index.adoc in the deck folder",
    ]);
    expect(r.stderr).toContain("7 decks checked: 6 problems");
    expect(r.code).toBe(1);
  });

  it("reports a path that does not exist", async () => {
    const r = await check(["test/fixtures/decks/does-not-exist"]);
    expect(r.stdout).toContain("test/fixtures/decks/does-not-exist: error: cannot check: no such file or directory");
    expect(r.code).toBe(1);
  });
});
