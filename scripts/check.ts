/**
 * npm run check [--no-run] [paths…] — check every deck of CONTENT_DIR (default ./content), or the decks,
 * deck folders or index.adoc files given. Prints each problem as `content/<deck>/index.adoc:LINE: message`
 * and exits non-zero when there is any error or warning (notes, `note:`, are printed but do not fail). Runnable blocks are compiled and run in the sandbox unless
 * `--no-run` is given (then only the decks' markup is checked).
 */
import { checkDeck, deckChecks, formatForTerminal, resolveTargets, RUNNING_CHECKS } from "../lib/deck/server/check";

async function main(): Promise<number> {
  const argv = process.argv.slice(2).filter((a) => a !== "--");
  const noRun = argv.includes("--no-run");
  const args = argv.filter((a) => a !== "--no-run");
  const checks = deckChecks.filter((c) => !(noRun && RUNNING_CHECKS.has(c.name)));
  try {
    return await checkAll(args, checks);
  } finally {
    for (const c of checks) await c.close?.();
  }
}

async function checkAll(args: string[], checks: typeof deckChecks): Promise<number> {
  const { targets, problems } = await resolveTargets(args);
  for (const p of problems) console.log(formatForTerminal(p));
  const failing = (list: typeof problems) => list.filter((p) => p.severity !== "info").length;
  let count = failing(problems);
  if (targets.length === 0 && problems.length === 0) {
    console.error("no decks found (a deck is a folder with an index.adoc in CONTENT_DIR)");
    return 1;
  }
  for (const target of targets) {
    const result = await checkDeck(target, checks);
    for (const p of result.problems) console.log(formatForTerminal(p));
    count += failing(result.problems);
  }
  for (const c of checks) {
    const line = c.summary?.();
    if (line) console.error(line);
  }
  console.error(`${targets.length} ${targets.length === 1 ? "deck" : "decks"} checked: ${count === 0 ? "no problems" : `${count} ${count === 1 ? "problem" : "problems"}`}`);
  return count === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
