/**
 * `npm run bench:sandbox`: where a sandbox's time over the bare program goes, part by part, and
 * what preparing sandboxes ahead of use takes off a run's path. Prints medians (ms) and writes
 * bench/results/sandbox-start-<time>.json.
 *
 *   cgroups     create the five cgroups with limits, and remove them
 *   tmpfs       mount the workspace tmpfs with its folders, and unmount and delete it
 *   prepare     a whole prepared sandbox: tmpfs, cgroups, sh → setpriv → bwrap → sandbox-init ready
 *   /bin/true   bare on the host; in a fresh sandbox (start → result, → removed); in a prepared
 *               one (start → result): what a run waits for
 *   stdbuf      the same in a prepared sandbox with the program environment (LD_PRELOAD libstdbuf)
 *
 * ROUNDS (default 20). Needs root, like the server.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CgroupSet } from "../sandbox/cgroup";
import { BwrapDriver, defaultBwrapOptions } from "../sandbox/drivers/bwrap";
import type { SandboxSpec } from "../sandbox/drivers/driver";
import { defaultLimits } from "../sandbox/limits";
import { PROGRAM_ENV, SANDBOX_ENV } from "../sandbox/toolchains/toolchain";
import { Workspace } from "../sandbox/workspace";

const ROUNDS = Number(process.env.ROUNDS ?? 20);
const MiB = 1024 * 1024;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function main(): Promise<void> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "bench-sandbox-"));
  fs.chmodSync(base, 0o711);
  const tempRoot = path.join(base, "sandboxes");
  const driver = new BwrapDriver({ ...defaultBwrapOptions(), tempRoot, uidBase: 279_000 });
  await driver.prepare();
  const limits = defaultLimits.run;
  const shape = { slot: 0, workspaceMiB: limits.workspaceMiB, readOnlyBinds: [], readWriteBinds: [] };
  const spec = (name: string, env: Record<string, string>): SandboxSpec => ({
    name,
    slot: 0,
    program: "/usr/bin/true",
    argv0: "true",
    args: [],
    files: [{ name: "main.c", content: "int main(void) { return 0; }\n" }],
    env,
    limits,
    stdin: "",
    closeStdinAfterInput: true,
    onStdout: () => undefined,
    onStderr: () => undefined,
  });
  const t = {
    cgroupCreate: [] as number[],
    cgroupRemove: [] as number[],
    tmpfsCreate: [] as number[],
    tmpfsRemove: [] as number[],
    prepare: [] as number[],
    bare: [] as number[],
    freshResult: [] as number[],
    freshRemoved: [] as number[],
    preparedResult: [] as number[],
    preparedRemoved: [] as number[],
    preparedStdbufResult: [] as number[],
  };
  let n = 0;
  const name = () => `bench-sandbox-${process.pid}-${(n++).toString(36)}`;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      let start = performance.now();
      const cgroup = new CgroupSet(driver.options.cgroupParent, name());
      await cgroup.create({ memoryBytes: limits.memoryMiB * MiB, processes: limits.processes, cpuShares: limits.cpuShares });
      t.cgroupCreate.push(performance.now() - start);
      start = performance.now();
      await cgroup.remove();
      t.cgroupRemove.push(performance.now() - start);

      const ws = new Workspace(path.join(tempRoot, name()));
      start = performance.now();
      await ws.create(limits.workspaceMiB * MiB, 279_000, 279_000, []);
      t.tmpfsCreate.push(performance.now() - start);
      start = performance.now();
      await ws.dispose();
      t.tmpfsRemove.push(performance.now() - start);

      start = performance.now();
      spawnSync("/usr/bin/true");
      t.bare.push(performance.now() - start);

      start = performance.now();
      const fresh = driver.start(spec(name(), SANDBOX_ENV));
      const freshResult = await fresh.result;
      t.freshResult.push(performance.now() - start);
      await fresh.removed;
      t.freshRemoved.push(performance.now() - start);
      if (freshResult.exitCode !== 0) throw new Error(`fresh sandbox: ${JSON.stringify(freshResult)}`);

      for (const [env, into, removedInto] of [
        [SANDBOX_ENV, t.preparedResult, t.preparedRemoved],
        [PROGRAM_ENV, t.preparedStdbufResult, null],
      ] as const) {
        start = performance.now();
        const prepared = driver.prepareSandbox(name(), shape);
        await prepared.ready;
        t.prepare.push(performance.now() - start);
        start = performance.now();
        const process = prepared.start(spec(prepared.name, env));
        const result = await process.result;
        into.push(performance.now() - start);
        await process.removed;
        removedInto?.push(performance.now() - start);
        if (result.exitCode !== 0) throw new Error(`prepared sandbox: ${JSON.stringify(result)}`);
      }
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
  const row = (label: string, values: number[]) => console.log(`${label.padEnd(58)} ${median(values).toFixed(2).padStart(8)} ms`);
  console.log(`sandbox start, medians of ${ROUNDS} (${os.cpus().length} cores; load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")})`);
  row("cgroups: create 5 with limits", t.cgroupCreate);
  row("cgroups: remove", t.cgroupRemove);
  row("tmpfs workspace: mount + folders", t.tmpfsCreate);
  row("tmpfs workspace: unmount + delete", t.tmpfsRemove);
  row("prepare a sandbox (tmpfs, cgroups, sh/setpriv/bwrap/init) ", t.prepare);
  row("/bin/true bare on the host", t.bare);
  row("/bin/true, fresh sandbox: start → result", t.freshResult);
  row("/bin/true, fresh sandbox: start → removed", t.freshRemoved);
  row("/bin/true, prepared sandbox: start → result (a run's wait)", t.preparedResult);
  row("/bin/true, prepared sandbox: start → removed", t.preparedRemoved);
  row("/bin/true, prepared, with LD_PRELOAD libstdbuf: → result", t.preparedStdbufResult);
  const dir = path.join(import.meta.dirname, "results");
  fs.mkdirSync(dir, { recursive: true });
  const date = new Date().toISOString();
  const medians = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)]));
  fs.writeFileSync(
    path.join(dir, `sandbox-start-${date.replace(/[:.]/g, "-")}.json`),
    `${JSON.stringify({ date, rounds: ROUNDS, loadAverage: os.loadavg(), mediansMs: medians }, null, 2)}\n`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
