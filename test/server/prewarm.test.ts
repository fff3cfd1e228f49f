/**
 * Prewarming with the real engine: after the server's start-up prewarm (and after a deck changes
 * under `npm run dev`), the first Run of an unchanged block is a compile-cache hit, for C, Rust and
 * kernel-lab blocks alike.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectRunnableBlocks, requestFor } from "../../lib/deck/server/runnable-check";
import { createPrewarmer } from "../../server/prewarm";
import { runToEnd, startTestEngine, type TestEngine } from "../sandbox/helpers";

const FIXTURES = path.resolve("test/fixtures");
let t: TestEngine;
let content: string;

const deck = (code: string) => `= Prewarm\n\n== C\n\n[source%run,c]\n----\n${code}\n----\n`;

beforeAll(async () => {
  t = startTestEngine(276_000, { concurrency: 2 });
  expect((await t.engine.health()).ready).toBe(true);
  content = fs.mkdtempSync(path.join(os.tmpdir(), "osbx-prewarm-"));
  fs.mkdirSync(path.join(content, "01-c"));
  fs.writeFileSync(path.join(content, "01-c", "index.adoc"), deck('#include <stdio.h>\nint main(void) { puts("prewarmed"); return 0; }'));
});

afterAll(async () => {
  await t.dispose();
  fs.rmSync(content, { recursive: true, force: true });
});

describe("prewarm", () => {
  it("at start: every deck's unchanged blocks are compiled, and their first run is a cache hit", async () => {
    const report = await createPrewarmer(t.engine, content).all();
    expect(report).toMatchObject({ blocks: 1, compiled: 1, failed: 0 });
    const { blocks } = (await collectRunnableBlocks("01-c", { contentDir: content }))!;
    const run = await runToEnd(t.engine, requestFor(blocks[0]!));
    expect(run.compiled).toMatchObject({ ok: true, cached: true });
    expect(run.stdout).toBe("prewarmed\n");
    await t.expectNothingLeft();
  }, 120_000);

  it("C and Rust blocks of a course deck, and a kernel-lab block, are cache hits after prewarming", async () => {
    const prewarmer = createPrewarmer(t.engine, FIXTURES);
    const pass = await prewarmer.deck("runnable-pass");
    expect(pass.compiled + pass.cached).toBeGreaterThanOrEqual(2);
    const kernel = await prewarmer.deck("runnable-kernel");
    expect(kernel.compiled + kernel.cached).toBeGreaterThanOrEqual(1);
    const blocks = [
      ...(await collectRunnableBlocks("runnable-pass", { contentDir: FIXTURES }))!.blocks,
      ...(await collectRunnableBlocks("runnable-kernel", { contentDir: FIXTURES }))!.blocks,
    ];
    const rust = blocks.find((b) => b.language === "rust" && !b.kernel && !b.expected?.kind.startsWith("compile"));
    const kernelBlock = blocks.find((b) => b.kernel && b.files[0]?.name === "src/hello.rs");
    for (const block of [rust!, kernelBlock!]) {
      const run = await runToEnd(t.engine, requestFor(block));
      expect(run.compiled, block.id).toMatchObject({ ok: true, cached: true });
    }
    await t.expectNothingLeft();
  }, 240_000);

  it("under npm run dev: a changed deck's new code is compiled when the file is saved", async () => {
    const messages: string[] = [];
    const prewarmer = createPrewarmer(t.engine, content, (m) => messages.push(m));
    const unwatch = prewarmer.watch();
    try {
      await new Promise((resolve) => setTimeout(resolve, 200)); // the watcher is set up
      fs.writeFileSync(path.join(content, "01-c", "index.adoc"), deck('#include <stdio.h>\nint main(void) { puts("edited"); return 0; }'));
      for (let i = 0; i < 600 && !messages.some((m) => m.includes("01-c changed")); i++) await new Promise((r) => setTimeout(r, 100));
      expect(messages.join("\n")).toMatch(/01-c changed, 1 blocks compiled/);
      const { blocks } = (await collectRunnableBlocks("01-c", { contentDir: content }))!;
      const run = await runToEnd(t.engine, requestFor(blocks[0]!));
      expect(run.compiled).toMatchObject({ ok: true, cached: true });
      expect(run.stdout).toBe("edited\n");
    } finally {
      unwatch();
      prewarmer.stop();
    }
  }, 120_000);
});
