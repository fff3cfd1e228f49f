/** The dev watcher behind /api/dev/deck-events: a save under <content>/<deck>/ is announced as that deck. */
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect, it } from "vitest";
import { watchDecks } from "../../lib/deck/server/watch";

it("announces a changed deck once per save, by folder name", async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "deck-watch-"));
  await fs.mkdir(path.join(dir, "alpha/parts"), { recursive: true });
  await fs.writeFile(path.join(dir, "alpha/index.adoc"), "= A\n");
  const seen: string[] = [];
  const stop = watchDecks((deck) => seen.push(deck), dir);
  try {
    await new Promise((r) => setTimeout(r, 100));
    await fs.writeFile(path.join(dir, "alpha/parts/p.adoc"), "x\n");
    await fs.writeFile(path.join(dir, "alpha/index.adoc"), "= A changed\n");
    await expect.poll(() => seen, { timeout: 3000 }).toEqual(["alpha"]);
  } finally {
    stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
