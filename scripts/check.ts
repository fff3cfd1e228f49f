/**
 * npm run check [paths…] — check every deck of CONTENT_DIR (default ./content), or the decks, deck folders
 * or index.adoc files given. Prints each problem as `content/<deck>/index.adoc:LINE: message` and exits
 * non-zero when there is any.
 */
import { checkDeck, formatForTerminal, resolveTargets } from "../lib/deck/server/check";

async function main(): Promise<number> {
  const args = process.argv.slice(2).filter((a) => a !== "--");
  const { targets, problems } = await resolveTargets(args);
  for (const p of problems) console.log(formatForTerminal(p));
  let count = problems.length;
  if (targets.length === 0 && problems.length === 0) {
    console.error("no decks found (a deck is a folder with an index.adoc in CONTENT_DIR)");
    return 1;
  }
  for (const target of targets) {
    const result = await checkDeck(target);
    for (const p of result.problems) console.log(formatForTerminal(p));
    count += result.problems.length;
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
