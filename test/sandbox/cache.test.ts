/**
 * The compile cache's documented bound (sandbox/cache.ts): entries beyond maxBytes go least
 * recently used first, a hit makes an entry recent, the order after a restart comes from the
 * binaries' mtimes, and an entry a running program uses is never evicted under it. First the cache
 * on its own folder, then through a real engine whose bound is smaller than any program.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CompileCache, type CachedCompile } from "../../sandbox/cache";
import { c, runToEnd, start, startTestEngine, type TestEngine } from "./helpers";

const META: CachedCompile = { items: [], rendered: "", stdout: "", stderr: "", timeMs: 1 };
const key = (n: number) => n.toString(16).padStart(64, "0");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Entry folders in a cache folder (64 hex digits each). */
const entriesIn = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((n) => /^[0-9a-f]{64}$/.test(n))
    .sort();

describe("the compile cache on its own", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "cache-"));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function put(cache: CompileCache, k: string, bytes: number): Promise<void> {
    const incoming = cache.incomingPath(k, "test");
    fs.writeFileSync(incoming, Buffer.alloc(bytes, 1));
    expect(await cache.put(k, incoming, META)).toBe(true);
    await sleep(5); // the next step's Date.now() is later: the order below is the order of the steps
  }

  it("keeps its size under the bound, least recently used first, a hit counting as a use", async () => {
    const cache = new CompileCache(path.join(dir, "lru"), 2500);
    await cache.open();
    await put(cache, key(1), 1000);
    await put(cache, key(2), 1000);
    expect(await cache.acquire(key(1))).toEqual(META); // a hit: 1 is now more recent than 2
    cache.release(key(1));
    await sleep(5);
    await put(cache, key(3), 1000); // 3000 bytes > 2500: the least recently used goes
    expect([cache.has(key(1)), cache.has(key(2)), cache.has(key(3))]).toEqual([true, false, true]);
    expect(entriesIn(cache.dir)).toEqual([key(1), key(3)]);
    expect(cache.size).toEqual({ entries: 2, bytes: 2000 });
  });

  it("never evicts an entry in use, however old; the entry just stored stays even beyond the bound", async () => {
    const cache = new CompileCache(path.join(dir, "in-use"), 1500);
    await cache.open();
    await put(cache, key(1), 1000);
    expect(await cache.acquire(key(1))).not.toBeNull(); // a running program holds it
    await put(cache, key(2), 1000); // over the bound, but 1 is in use and 2 was just stored
    expect(entriesIn(cache.dir)).toEqual([key(1), key(2)]);
    await put(cache, key(3), 1000); // 2 is the only one free to go
    expect(entriesIn(cache.dir)).toEqual([key(1), key(3)]);
    cache.release(key(1)); // the program ended
    await put(cache, key(4), 1000);
    expect(entriesIn(cache.dir)).toEqual([key(4)]);
    // One program larger than the whole bound is still stored for the run that compiled it.
    await put(cache, key(5), 4000);
    expect(await cache.acquire(key(5))).toEqual(META);
    cache.release(key(5));
  });

  it("after a restart, orders by the binaries' mtimes and keeps to a smaller bound", async () => {
    const folder = path.join(dir, "restart");
    const before = new CompileCache(folder, 10_000);
    await before.open();
    for (const n of [1, 2, 3]) await put(before, key(n), 1000);
    // 2 was used last, 3 long ago, then 1.
    const at = (k: string, secondsAgo: number) => fs.utimesSync(before.binaryPath(k), new Date(), new Date(Date.now() - secondsAgo * 1000));
    at(key(1), 200);
    at(key(2), 100);
    at(key(3), 300);
    fs.writeFileSync(path.join(folder, `incoming-${key(9).slice(0, 16)}-crashed`), "a store a crash cut off");
    const after = new CompileCache(folder, 2000);
    await after.open();
    expect(fs.readdirSync(folder).sort()).toEqual([key(1), key(2)]);
    expect(after.size).toEqual({ entries: 2, bytes: 2000 });
  });
});

describe("the compile cache under a real engine", () => {
  let t: TestEngine;
  beforeAll(() => {
    // A bound smaller than any program: each store evicts every entry no run holds.
    t = startTestEngine(278_000, { concurrency: 2, cacheMaxBytes: 1 });
  });
  afterEach(async () => await t.expectNothingLeft());
  afterAll(async () => await t?.dispose());

  const hello = (word: string) => c(`#include <stdio.h>\nint main(void) { puts("${word}"); return 0; }\n`);

  it("never evicts the binary of a running program; evicts it once the program ended", { timeout: 180_000 }, async () => {
    const waiting = start(t.engine, c(`#include <stdio.h>\nint main(void) { char line[64]; if (fgets(line, sizeof line, stdin)) printf("got %s", line); return 0; }\n`));
    await waiting.waitFor((e) => e.type === "running");
    const [held] = entriesIn(t.cacheDir);
    expect(held, "the running program's entry").toBeDefined();

    // Two more programs compile, are stored and run while the first still runs: each store evicts
    // what no run holds, never the running program's entry, and each run gets its own binary.
    for (const word of ["second", "third"]) {
      const run = await runToEnd(t.engine, hello(word));
      expect(run.exit).toMatchObject({ exitCode: 0, message: "exited with code 0" });
      expect(run.stdout).toBe(`${word}\n`);
      expect(entriesIn(t.cacheDir)).toContain(held);
    }
    expect(entriesIn(t.cacheDir)).toHaveLength(2); // the held one and the last stored ("second" went)

    waiting.handle.writeStdin("line\n");
    const first = await waiting.finished;
    expect(first.stdout).toBe("got line\n");
    expect((await runToEnd(t.engine, hello("fourth"))).stdout).toBe("fourth\n");
    expect(entriesIn(t.cacheDir), "the first program's entry, free now, goes at the next store").not.toContain(held);
    expect(entriesIn(t.cacheDir)).toHaveLength(1);
  });
});
