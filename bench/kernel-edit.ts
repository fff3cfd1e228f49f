/**
 * Kernel lab: edit one lesson file → first serial line, through the engine, beside the bare
 * figure on the host, in one run.
 *
 *   npm run bench:kernel          (ROUNDS=9 by default; needs root, the warm tree of kernels/osbe)
 *
 * engine  engine.run({language: "kernel", kernel: "osbe", files: [src/hello.rs]}) until the first
 *         complete serial line arrives as `stdout`: run tree + cargo in bwrap + QEMU in bwrap.
 * bare    the same steps without the sandbox: a run tree (sandbox/kernels/tree.ts), cargo on the
 *         host with the tree bound at the warm tree's path (`unshare -m`, as the engine mounts
 *         it), QEMU on the host until its first serial line (sandbox/kernels/host.ts).
 * Every round changes the boot message, so every build really recompiles the kernel crate.
 * Target: engine median ≤ 1 s.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { RunRequestSchema } from "../lib/protocol";
import { createEngine } from "../sandbox";
import { bootKernel, runCommand } from "../sandbox/kernels/host";
import { osbeProfile } from "../sandbox/kernels/profile";
import { prepareRunTree, removeRunTree } from "../sandbox/kernels/tree";

const ROUNDS = Number(process.env.ROUNDS ?? 9);
const profile = osbeProfile();
const HELLO = fs.readFileSync(path.join(profile.sourceDir, "src/hello.rs"), "utf8");
// A nonce per invocation: the engine's compile cache must not already hold an earlier bench's image.
const NONCE = Date.now().toString(36);
const helloFor = (round: number, who: string) => `${HELLO.replace("Hello from the OSByExample kernel!", `${who} round ${round}`)}// ${NONCE}\n`;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function engineOnce(engine: ReturnType<typeof createEngine>, round: number): Promise<{ firstLineMs: number; buildMs: number }> {
  const expected = `engine round ${round}`;
  const request = RunRequestSchema.parse({ language: "kernel", kernel: "osbe", files: [{ name: "src/hello.rs", content: helloFor(round, "engine") }] });
  const start = performance.now();
  let firstLineMs = 0;
  let buildMs = 0;
  let serial = "";
  let ending = "";
  await engine.run(request, (event) => {
    if (event.type === "compiled") buildMs = event.timeMs;
    if (event.type === "stdout") {
      serial += event.data;
      if (!firstLineMs && serial.includes("\n")) firstLineMs = performance.now() - start;
    }
    if (event.type === "exit" || event.type === "error") ending = event.message;
  }).done;
  if (serial.split("\n")[0] !== expected || ending !== "kernel exited: success") {
    throw new Error(`engine round ${round}: ${ending}; serial ${JSON.stringify(serial.slice(0, 200))}`);
  }
  return { firstLineMs, buildMs };
}

async function bareOnce(base: string, round: number): Promise<{ firstLineMs: number; buildMs: number }> {
  const runDir = path.join(base, `round-${round}`, profile.name);
  const start = performance.now();
  try {
    const tree = await prepareRunTree({ profile, runDir, files: { "src/hello.rs": helloFor(round, "bare") } });
    // The run tree at the warm tree's own path, in a private mount namespace: the host never sees it.
    const build = await runCommand(
      ["/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c", 'mount --bind "$0" "$1" && cd "$1" && shift && exec "$@"',
        tree.sourceDir, profile.mountPath, ...profile.buildCommand],
      { cwd: "/", env: profile.env, timeoutMs: profile.limits.build.wallSeconds * 1000 },
    );
    if (build.exitCode !== 0) throw new Error(`bare build failed: ${build.stderr.slice(-2000)}`);
    const buildMs = build.ms;
    const bootStart = performance.now();
    const boot = await bootKernel(profile, tree.imagePath);
    if (boot.outcome.kind !== "success" || boot.stdout.split("\n")[0] !== `bare round ${round}` || boot.firstLineMs === null) {
      throw new Error(`bare boot: ${boot.outcome.message}; ${boot.stdout.slice(0, 200)}`);
    }
    return { firstLineMs: bootStart - start + boot.firstLineMs, buildMs };
  } finally {
    await removeRunTree(path.dirname(runDir));
  }
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error("run as root (the sandbox needs cgroups and the sandbox uids)");
  const engine = createEngine({ concurrency: 1 });
  const health = await engine.health();
  const osbe = health.kernels.find((k) => k.name === "osbe");
  if (!osbe?.available) throw new Error(`kernel osbe is not available: ${osbe?.problem ?? "no profile"} (run scripts/build-kernels.ts)`);
  // Bare trees on the warm tree's file system, so big artifacts are hard-linked as in the engine.
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "bench-kernel-"));
  const engineRuns: Array<{ firstLineMs: number; buildMs: number }> = [];
  const bareRuns: Array<{ firstLineMs: number; buildMs: number }> = [];
  try {
    await engineOnce(engine, 0); // page cache and the first sandbox's set-up
    await bareOnce(base, 0);
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate, so both see the same machine load.
      engineRuns.push(await engineOnce(engine, round));
      bareRuns.push(await bareOnce(base, round));
    }
  } finally {
    await engine.shutdown();
    fs.rmSync(base, { recursive: true, force: true });
  }
  const e = median(engineRuns.map((r) => r.firstLineMs));
  const b = median(bareRuns.map((r) => r.firstLineMs));
  const fmt = (ms: number) => `${ms.toFixed(0).padStart(5)} ms`;
  console.log(`kernel lab: edit src/hello.rs → first serial line, median of ${ROUNDS} (${os.availableParallelism?.() ?? os.cpus().length} cores)`);
  console.log(`  engine (run tree + cargo in bwrap + QEMU in bwrap)  ${fmt(e)}   (build ${fmt(median(engineRuns.map((r) => r.buildMs)))})`);
  console.log(`  bare   (run tree + cargo on the host + QEMU)         ${fmt(b)}   (build ${fmt(median(bareRuns.map((r) => r.buildMs)))})`);
  console.log(`  ratio engine/bare: ${(e / b).toFixed(2)}×   target ≤ 1000 ms: ${e <= 1000 ? "met" : "MISSED"}`);
}

main().catch((error) => {
  console.error(`bench:kernel: ${error instanceof Error ? error.message : error}`);
  process.exitCode = 1;
});
