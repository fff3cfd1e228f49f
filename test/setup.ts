/**
 * Runs in every test file before its imports (vitest.config.ts `setupFiles`): the file's engines
 * and servers see the machine's state as little as possible.
 *
 * - The operator's variables of the shell that started `npm test` are dropped: a developer's
 *   SANDBOX_LIMITS or OSBE_KERNELS would change the limits and messages tests expect. A test that
 *   needs one sets it itself.
 * - TMPDIR is a fresh folder of this file's own, inside the run's folder (test/global-setup.ts):
 *   engine defaults (compile cache, sandbox temp root, kernel trees) and every `os.tmpdir()` land
 *   there, not in the machine's shared /tmp where `npm run check` and the dev server keep theirs.
 * - After the file, whatever its tests left there fails the file, listed by name.
 * Uid ranges are not the shell's: each test engine names its own, moved by the run's offset (test/sandbox/helpers.ts).
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, expect, inject } from "vitest";
import { leftovers } from "./temp-leftovers";

/** Read by the engine, the server or the deck loader (README, sandbox/limits.ts, kernels/README.md). */
export const OPERATOR_VARIABLES = [
  "SANDBOX_LIMITS",
  "SANDBOX_CONCURRENCY",
  "SANDBOX_MAX_WAIT_SECONDS",
  "SANDBOX_QUEUE_MEMORY_MIB",
  "SANDBOX_CLIENT_WAITING",
  "SANDBOX_DRIVER",
  "SANDBOX_IMAGE",
  "DOCKER_HOST",
  "OSBE_KERNELS",
  "OSBE_KERNELS_FILE",
  "OSBE_RUST_CRATES_TARGET",
  "CLIENT_LIMITS",
  "QUOTAS",
  "TRUST_PROXY",
  "REDIS_URL",
  "PREWARM",
  "LECTURER_TOKEN",
  "CONTENT_DIR",
  "DECK_WARNINGS",
  "PORT",
  "HOST",
  "METRICS_PORT",
  "REPLICA_NAME",
  "DRAIN_GRACE_MS",
  "DRAIN_READY_DELAY_MS",
  "LOG_LEVEL",
];
for (const name of OPERATOR_VARIABLES) delete process.env[name];

const runDir = inject("testTempRoot");
const fileDir = fs.mkdtempSync(path.join(runDir, `${path.basename(expect.getState().testPath ?? "file", ".test.ts")}-`));
// Sandbox users must traverse it to reach their workspaces and kernel trees below.
fs.chmodSync(fileDir, 0o711);
process.env.TMPDIR = fileDir;

afterAll(() => {
  const left = leftovers(fileDir);
  try {
    fs.rmSync(fileDir, { recursive: true, force: true });
  } catch (error) {
    left.push(`(not removable: ${(error as Error).message})`);
  }
  if (left.length > 0) throw new Error(`left in the temp directory (${fileDir}) after this file: ${left.join(", ")}`);
});

declare module "vitest" {
  export interface ProvidedContext {
    testTempRoot: string;
    uidOffset: number;
  }
}
