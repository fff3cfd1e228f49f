/**
 * Once per `vitest run` (vitest.config.ts `globalSetup`): a temp folder for the whole run, in which
 * each test file gets its own TMPDIR (test/setup.ts). Each file removes its own after its tests; one
 * still here was skipped or could not be removed: what its tests left there fails the run, listed.
 * Also the run's offset for sandbox uids (test/sandbox/helpers.ts).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { leftovers } from "./temp-leftovers";

export default function setup(project: TestProject) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "osbe-vitest-"));
  fs.chmodSync(root, 0o711); // sandbox users traverse it to their workspaces
  project.provide("testTempRoot", root);
  // Test engines' sandbox uids are their file's base (e.g. 230000) plus this run's own millions:
  // another \`npm test\` on the same machine (a colleague's, CI's) uses other uids, so neither takes
  // the other's sandbox processes for its own leftovers. Below 2^31.
  project.provide("uidOffset", (1 + Math.floor(Math.random() * 1999)) * 1_000_000);
  return () => {
    const left = fs.readdirSync(root).flatMap((dir) => leftovers(path.join(root, dir)).map((name) => `${dir}/${name}`));
    try {
      fs.rmSync(root, { recursive: true, force: true });
    } catch (error) {
      left.push(`(not removable: ${(error as Error).message})`);
    }
    if (left.length > 0) throw new Error(`left in the test run's temp directory ${root}: ${left.join(", ")}`);
  };
}
