/**
 * A server that crashes (kill -9) in the middle of a run: its sandbox's processes die with it, and
 * the cgroups, workspace mount and temp folder it leaves are removed by the next engine that starts
 * on the same temp root once they are stale (sandbox/drivers/bwrap.ts removeStale). The docker
 * driver's counterpart is in hostile.test.ts.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import { BwrapDriver, defaultBwrapOptions } from "../../sandbox/drivers/bwrap";
import { processesOfUids } from "./helpers";

const ROOT = path.resolve(__dirname, "../..");
const UID_BASE = 283_000 + inject("uidOffset");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let base: string;
beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), "crash-"));
  fs.chmodSync(base, 0o711);
});
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

const mountsUnder = (dir: string) =>
  fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((line) => line.split(" ")[4]?.startsWith(`${dir}/`));

describe("a crashed server", () => {
  it("leaves no process; its cgroups, mounts and temp folders go when the next engine starts", { timeout: 180_000 }, async () => {
    const tempRoot = path.join(base, "sandboxes");
    const prefix = `crash-${process.pid}`;
    const script = path.join(base, "crashing-server.mts");
    const SLEEPER = `#include <stdio.h>\n#include <unistd.h>\nint main(void) { puts("up"); fflush(stdout); for (;;) sleep(1000); }\n`;
    fs.writeFileSync(
      script,
      `import { createEngine } from ${JSON.stringify(path.join(ROOT, "sandbox/index.ts"))};
      import { BwrapDriver, defaultBwrapOptions } from ${JSON.stringify(path.join(ROOT, "sandbox/drivers/bwrap.ts"))};
      const driver = new BwrapDriver({ ...defaultBwrapOptions(), tempRoot: ${JSON.stringify(tempRoot)}, uidBase: ${UID_BASE} });
      const engine = createEngine({ driver, namePrefix: ${JSON.stringify(prefix)}, concurrency: 1, kernels: [], cacheDir: ${JSON.stringify(path.join(base, "cache"))} });
      engine.run({ language: "c", files: [{ name: "main.c", content: ${JSON.stringify(SLEEPER)} }], flags: [], args: [], limits: { wallSeconds: 60 } },
        (e) => { if (e.type === "stdout") console.log("RUNNING"); else if (e.type === "exit" || e.type === "error") console.log(JSON.stringify(e)); });
      `,
    );
    // node itself (not the tsx wrapper, whose child would survive the kill).
    const child = spawn(process.execPath, ["--import", "tsx", script], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    try {
      await new Promise<void>((resolve, reject) => {
        let said = "";
        child.stdout!.on("data", (d: Buffer) => {
          said += d.toString();
          if (said.includes("RUNNING")) resolve();
        });
        child.once("exit", (code) => reject(new Error(`the server exited by itself (${code}): ${said}`)));
      });
      expect(processesOfUids(UID_BASE, UID_BASE + 1).length, "the program runs as the slot's uid").toBeGreaterThan(0);
    } finally {
      child.kill("SIGKILL");
    }

    // Its sandboxes die with it (bwrap --die-with-parent): nothing runs on as the sandbox uid.
    let running = processesOfUids(UID_BASE, UID_BASE + 1);
    for (let i = 0; i < 300 && running.length > 0; i++) {
      await sleep(100);
      running = processesOfUids(UID_BASE, UID_BASE + 1);
    }
    expect(running, "processes of the crashed server's sandboxes").toEqual([]);

    // What it left: the run's (and the prepared sandboxes') cgroups, temp folders and tmpfs mounts.
    const crashed = new BwrapDriver({ ...defaultBwrapOptions(), tempRoot, uidBase: UID_BASE });
    const left = crashed.leftovers(prefix);
    expect(left.length, "cgroups and temp folders the crash left").toBeGreaterThan(0);

    // A fresh leftover may be another server's sandbox being primed: the next start leaves it...
    const soon = new BwrapDriver({ ...defaultBwrapOptions(), tempRoot, uidBase: UID_BASE });
    await soon.prepare();
    await soon.close();
    expect(crashed.leftovers(prefix)).toEqual(left);
    // ...and removes it once stale (10 minutes): made older here rather than waited for.
    const old = new Date(Date.now() - 11 * 60 * 1000);
    for (const dir of left) fs.utimesSync(dir, old, old);
    const next = new BwrapDriver({ ...defaultBwrapOptions(), tempRoot, uidBase: UID_BASE });
    await next.prepare();
    await next.close();
    expect(crashed.leftovers(prefix), "after the next engine's start").toEqual([]);
    expect(mountsUnder(tempRoot), "workspace mounts after the next engine's start").toEqual([]);
    expect(fs.readdirSync(tempRoot)).toEqual([]);
  });
});
