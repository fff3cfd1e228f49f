/** `npm run check` (scripts/check.ts) on fixture decks: output format and exit codes. */
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import os from "node:os";
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
      "test/fixtures/decks/escape/index.adoc:5: error: include file is outside the course folder (CONTENT_DIR): ../../secret.adoc",
      "test/fixtures/decks/no-index/index.adoc: error: no index.adoc in the deck folder",
    ]);
    expect(r.stderr).toContain("9 decks checked: 5 problems");
    expect(r.code).toBe(1);
  });

  it("reports a path that does not exist", async () => {
    const r = await check(["test/fixtures/decks/does-not-exist"]);
    expect(r.stdout).toContain("test/fixtures/decks/does-not-exist: error: cannot check: no such file or directory");
    expect(r.code).toBe(1);
  });

  it("fails on a deck whose only problem is a warning (it still renders), and passes once it is fixed", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "check-warn-"));
    try {
      await fs.mkdir(path.join(dir, "d"));
      const index = path.join(dir, "d/index.adoc");
      await fs.writeFile(index, "= D\n\n== A slide\n\ntext\n\n==== Skips a level\n\nmore\n");
      const warned = await check(["--no-run", path.join(dir, "d")]);
      expect(warned.stdout.trim()).toBe(`${index}:7: warning: section title out of sequence: expected level 2, got level 3`);
      expect(warned.code).toBe(1);

      await fs.writeFile(index, "= D\n\n== A slide\n\ntext\n\n=== One level down\n\nmore\n");
      const fixed = await check(["--no-run", path.join(dir, "d")]);
      expect(fixed.stdout).toBe("");
      expect(fixed.stderr).toContain("1 deck checked: no problems");
      expect(fixed.code).toBe(0);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("prints notes (what the site does differently) without failing", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "check-note-"));
    try {
      await fs.mkdir(path.join(dir, "d"));
      const index = path.join(dir, "d/index.adoc");
      await fs.writeFile(index, "= D\n:revealjsdir: https://cdn.jsdelivr.net/npm/reveal.js@4.1.2\n\n== A slide\n\ntext\n");
      const r = await check(["--no-run", path.join(dir, "d")]);
      expect(r.stdout.trim()).toBe(`${index}:2: note: the site serves reveal.js 5 itself; :revealjsdir: is ignored`);
      expect(r.code).toBe(0);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("refuses an include outside CONTENT_DIR with file and line", async () => {
    const r = await check(["--no-run", "test/fixtures/decks/escape"]);
    expect(r.stdout.trim()).toBe("test/fixtures/decks/escape/index.adoc:5: error: include file is outside the course folder (CONTENT_DIR): ../../secret.adoc");
    expect(r.code).toBe(1);
  }, 60_000);
});
