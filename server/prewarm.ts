/**
 * Prewarming: the unchanged code of every runnable block (C, C++, assembly, Rust and kernel-lab
 * blocks) is compiled into the compile cache in the background, when the server starts and, under
 * `npm run dev`, whenever a deck changes. The first Run of an unchanged example is then a cache
 * hit. The engine runs this work only on slots no student waits for (engine.prewarm), one block
 * at a time, so it never stands in a student's way.
 */
import fs from "node:fs";
import path from "node:path";
import { listDeckNames } from "../lib/deck/server/decks";
import { collectRunnableBlocks, requestFor } from "../lib/deck/server/runnable-check";
import { watchDecks } from "../lib/deck/server/watch";
import type { Engine, PrewarmOutcome } from "../sandbox/api";

export interface PrewarmReport {
  blocks: number;
  compiled: number;
  cached: number;
  failed: number;
}

export interface Prewarmer {
  /** Prewarms every deck's blocks; settles when done (a later call waits for the one under way). */
  all(): Promise<PrewarmReport>;
  /** Prewarms one deck's blocks. */
  deck(name: string): Promise<PrewarmReport>;
  /** Prewarms each deck again when its files change (development); returns the unsubscribe. */
  watch(): () => void;
  /** Stops: work not yet started is dropped. */
  stop(): void;
}

export function createPrewarmer(engine: Engine, contentDir: string, log: (message: string) => void = () => undefined): Prewarmer {
  let stopped = false;
  // One block at a time, in order: a chain of work.
  let chain: Promise<unknown> = Promise.resolve();
  const enqueue = <T>(work: () => Promise<T>): Promise<T> => {
    const next = chain.then(work, work);
    chain = next.catch(() => undefined);
    return next;
  };

  async function prewarmDeck(name: string): Promise<PrewarmReport> {
    const report: PrewarmReport = { blocks: 0, compiled: 0, cached: 0, failed: 0 };
    const found = await collectRunnableBlocks(name, { contentDir }).catch(() => null);
    if (!found) return report;
    for (const block of found.blocks) {
      if (stopped) break;
      let outcome: PrewarmOutcome = "failed";
      try {
        outcome = await engine.prewarm(requestFor(block));
      } catch {
        // a block the schema refuses is the deck check's to report
      }
      report.blocks++;
      report[outcome]++;
    }
    return report;
  }

  const add = (a: PrewarmReport, b: PrewarmReport): PrewarmReport => ({
    blocks: a.blocks + b.blocks,
    compiled: a.compiled + b.compiled,
    cached: a.cached + b.cached,
    failed: a.failed + b.failed,
  });

  return {
    all() {
      return enqueue(async () => {
        let total: PrewarmReport = { blocks: 0, compiled: 0, cached: 0, failed: 0 };
        const started = Date.now();
        for (const name of await listDeckNames(contentDir)) {
          if (stopped) break;
          total = add(total, await prewarmDeck(name));
        }
        log(
          `prewarm: ${total.blocks} runnable blocks in ${((Date.now() - started) / 1000).toFixed(1)} s (${total.compiled} compiled, ${total.cached} already cached, ${total.failed} did not compile)`,
        );
        return total;
      });
    },
    deck(name) {
      return enqueue(() => prewarmDeck(name));
    },
    watch() {
      return watchDecks((deck) => {
        if (stopped) return;
        // A change in a course folder (shared snippets, no index.adoc) may concern any deck: all of them
        // (unchanged blocks are cache hits).
        const isDeck = deck !== "*" && fs.existsSync(path.join(contentDir, deck, "index.adoc"));
        const work = isDeck ? this.deck(deck) : this.all();
        void work.then((r) => {
          if (deck !== "*" && r.compiled > 0) log(`prewarm: ${deck} changed, ${r.compiled} blocks compiled`);
        });
      }, contentDir);
    },
    stop() {
      stopped = true;
    },
  };
}
