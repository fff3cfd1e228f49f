/**
 * The last step of `npm test` (scripts/test.sh): fails, listing them, when the run's TMPDIR holds
 * anything but the engines' own folders: a sandbox's or kernel run's folder, a test's temp folder.
 */
import { leftovers } from "../test/temp-leftovers";

const dir = process.argv[2];
if (!dir) throw new Error("usage: tsx scripts/test-leftovers.ts <the run's TMPDIR>");
const left = leftovers(dir);
if (left.length > 0) {
  console.error(`npm test left these in its temp directory ${dir}:\n${left.map((name) => `  ${name}`).join("\n")}`);
  process.exit(1);
}
console.error("npm test: nothing left in its temp directory");
