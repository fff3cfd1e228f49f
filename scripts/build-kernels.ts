/**
 * Prepares the warm build trees of the kernel lab and proves each profile works the way slides
 * use it: builds every kernel profile (the project's kernels/osbe and any external one configured
 * by OSBE_KERNELS / OSBE_KERNELS_FILE) in its own source folder, so that a run only recompiles the
 * files a slide replaced; then runs one build and boot of an unchanged lesson file through the
 * engine, in the sandbox, exactly as a slide's run goes, and reports the first serial line or the
 * exact failure. A lecturer learns of a broken profile here, never from a student.
 *
 *   npx tsx scripts/build-kernels.ts              all profiles
 *   npx tsx scripts/build-kernels.ts osbe         only these
 *   npx tsx scripts/build-kernels.ts --no-proof   warm trees only (no sandbox: e.g. not root)
 *   npx tsx scripts/build-kernels.ts --prove      a proof run even if this warm tree passed one
 *
 * Exit status 1 when a profile is broken (its warm tree does not build, or the proof run fails).
 * Idempotent: when a tree is up to date, cargo only checks fingerprints (about 0.1 s); the proof
 * run (a few seconds with the engine's start) is skipped when the same profile already passed one
 * on the same warm image (a stamp in the target dir), so `npm start` does not pay it every time. The first build compiles core, alloc
 * and compiler_builtins from Debian's rust-web-src (about 25 s here). Runs never write into these
 * trees (sandbox/kernels/tree.ts), so nothing else should either while the server is up.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { RunEvent } from "../lib/protocol";
import { RunRequestSchema } from "../lib/protocol";
import { createEngine } from "../sandbox";
import { prepareBootloaderStage } from "../sandbox/kernels/bootloader09";
import { buildKernel } from "../sandbox/kernels/host";
import { extraPathsProblem, type KernelProfile, loadKernelProfiles } from "../sandbox/kernels/profile";

/** How a proof run went: the first serial line, or the exact failure. */
interface Proof {
  ok: boolean;
  /** The lesson file built (unchanged), if the profile has one. */
  file?: string;
  firstLine?: string;
  /** First serial line, from the run's start (tree, build in the sandbox, boot). */
  firstLineMs?: number;
  ending: string;
  /** What the build said when it failed: diagnostics, else the end of its stderr. */
  detail?: string;
}

/**
 * One run of the profile through the engine (bwrap, cgroups, the sandbox user): the first lesson
 * file replaced by its own unchanged content, so the kernel crate really is rebuilt in the sandbox
 * (cargo then loads every dependency's source) and the image really boots. A compile cache of its
 * own, so an earlier proof's image is never taken for this one.
 */
async function prove(profile: KernelProfile): Promise<Proof> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `kernel-proof-${profile.name}-`));
  fs.chmodSync(scratch, 0o711); // the sandbox user reaches the cached image through it
  const engine = createEngine({ kernels: [profile], concurrency: 1, cacheDir: path.join(scratch, "cache"), prepareSandboxes: false, namePrefix: `proof-${process.pid}` });
  try {
    const lesson = profile.replaceableFiles[0];
    const files = lesson ? [{ name: lesson.path, content: fs.readFileSync(path.join(profile.sourceDir, lesson.path), "utf8") }] : [];
    const request = RunRequestSchema.parse({ language: "kernel", kernel: profile.name, files });
    const started = performance.now();
    let serial = "";
    let firstLineMs: number | undefined;
    const events: RunEvent[] = [];
    await engine.run(request, (event) => {
      events.push(event);
      if (event.type === "stdout") {
        serial += event.data;
        if (firstLineMs === undefined && serial.includes("\n")) firstLineMs = performance.now() - started;
      }
    }).done;
    const end = events.find((e) => e.type === "exit" || e.type === "error");
    const ending = end && "message" in end ? end.message : "the run ended without an outcome";
    const compiled = events.find((e) => e.type === "compiled");
    const diagnostics = events.find((e) => e.type === "diagnostics");
    let detail: string | undefined;
    if (compiled?.type === "compiled" && !compiled.ok) {
      detail = (diagnostics?.type === "diagnostics" && diagnostics.rendered) || compiled.stderr.slice(-4000) || compiled.stdout.slice(-4000);
    }
    const ok = end?.type === "exit" && end.phase === "run" && end.exitCode === profile.successExitCode;
    const firstLine = serial.includes("\n") ? serial.slice(0, serial.indexOf("\n")).replace(/\r$/, "") : serial || undefined;
    return { ok, file: lesson?.path, firstLine, firstLineMs, ending, detail: ok ? undefined : (detail ?? (serial ? `serial console:\n${serial.slice(-4000)}` : undefined)) };
  } finally {
    await engine.shutdown();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** Where a passed proof is remembered, and what it is valid for: this profile, this warm image. */
function proofStamp(profile: KernelProfile): { file: string; identity: string } {
  const image = fs.statSync(path.join(profile.sourceDir, profile.imagePath));
  const identity = createHash("sha256").update(JSON.stringify([profile, image.ino, image.size, image.mtimeMs])).digest("hex");
  return { file: path.join(profile.sourceDir, profile.targetDir, ".osbe-proof.json"), identity };
}

function readStamp(file: string): { identity?: string; firstLine?: string; at?: string } {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return {};
  }
}

/** A path as short as it can be said: relative below the current folder, absolute elsewhere. */
const shown = (p: string) => (path.relative(process.cwd(), p).startsWith("..") ? p : path.relative(process.cwd(), p));

async function main() {
  const args = process.argv.slice(2);
  const proofWanted = !args.includes("--no-proof");
  const proofForced = args.includes("--prove");
  const wanted = args.filter((a) => !a.startsWith("--"));
  const profiles = loadKernelProfiles().filter((p) => wanted.length === 0 || wanted.includes(p.name));
  const unknown = wanted.filter((name) => !profiles.some((p) => p.name === name));
  if (unknown.length) throw new Error(`unknown kernel profile(s): ${unknown.join(", ")}`);
  const canProve = process.getuid?.() === 0;
  if (proofWanted && !canProve) console.warn("kernels: not root, so no proof runs in the sandbox (it needs cgroups and the sandbox uids); warm trees only");

  let failed = false;
  for (const profile of profiles) {
    if (!fs.existsSync(profile.sourceDir)) {
      console.error(`kernels: ${profile.name}: source folder ${profile.sourceDir} is missing`);
      failed = true;
      continue;
    }
    const pathProblem = extraPathsProblem(profile);
    if (pathProblem) {
      console.error(`kernels: ${profile.name}: ${pathProblem}`);
      failed = true;
      continue;
    }
    // The first build compiles core: give it far more time than a run's build gets.
    const result = await buildKernel(profile, profile.sourceDir, 15 * 60 * 1000);
    const image = path.join(profile.sourceDir, profile.imagePath);
    if (!result.ok || !fs.existsSync(image)) {
      failed = true;
      console.error(`kernels: ${profile.name}: build failed (${result.timedOut ? "timed out" : `status ${result.exitCode}`})`);
      for (const d of result.diagnostics) console.error(d.rendered ?? `${d.level}: ${d.message}`);
      if (result.diagnostics.length === 0) console.error(result.stderr.slice(-4000));
      if (result.ok) console.error(`kernels: ${profile.name}: the build produced no image at ${profile.imagePath}`);
      continue;
    }
    for (const d of result.diagnostics.filter((d) => d.level === "warning")) console.warn(d.rendered ?? d.message);
    console.log(`kernels: ${profile.name}: warm tree ready in ${(result.ms / 1000).toFixed(2)} s (${shown(image)})`);
    if (profile.imageKind === "bootloader-0.9") {
      // The bootloader a run's image is written with (two links of it the first time; then a check).
      try {
        const stage = await prepareBootloaderStage(profile);
        if (stage.made) console.log(`kernels: ${profile.name}: bootloader 0.9 stage made in ${(stage.ms / 1000).toFixed(2)} s (${stage.bootloaderBytes} bytes, the kernel's size at ${stage.sizeSites} places)`);
      } catch (error) {
        failed = true;
        console.error(`kernels: ${profile.name}: no bootloader 0.9 stage: ${(error as Error).message}`);
        continue;
      }
    }

    if (!proofWanted || !canProve) continue;
    const stamp = proofStamp(profile);
    const earlier = readStamp(stamp.file);
    if (!proofForced && earlier.identity === stamp.identity) {
      console.log(`kernels: ${profile.name}: proof run passed on this warm tree at ${earlier.at} (first serial line ${JSON.stringify(earlier.firstLine ?? "")}); --prove runs it again`);
      continue;
    }
    fs.rmSync(stamp.file, { force: true });
    let proof = await prove(profile);
    if (!proof.ok && /limit|stopped/.test(proof.ending)) {
      // A limit on a loaded machine (the first run reads the toolchain from disk): once more before
      // calling the profile broken. A profile that cannot build or boot fails the same way twice.
      console.warn(`kernels: ${profile.name}: proof run hit a limit (${proof.ending}); trying once more`);
      proof = await prove(profile);
    }
    const what = proof.file ? `unchanged ${proof.file}` : "the kernel as it is";
    if (proof.ok) {
      const when = proof.firstLineMs === undefined ? "" : ` after ${(proof.firstLineMs / 1000).toFixed(2)} s`;
      console.log(`kernels: ${profile.name}: proof run in the sandbox (${what}): first serial line${when}: ${JSON.stringify(proof.firstLine ?? "")}; ${proof.ending}`);
      fs.writeFileSync(stamp.file, `${JSON.stringify({ identity: stamp.identity, firstLine: proof.firstLine, at: new Date().toISOString() })}\n`);
    } else {
      failed = true;
      console.error(`kernels: ${profile.name}: PROOF RUN FAILED in the sandbox (${what}), as a slide's run would: ${proof.ending}`);
      if (proof.firstLine !== undefined) console.error(`kernels: ${profile.name}: first serial line: ${JSON.stringify(proof.firstLine)}`);
      if (proof.detail) console.error(proof.detail.trimEnd());
      console.error(
        `kernels: ${profile.name}: the build sandbox sees /usr, the run's copy of ${profile.sourceDir} at ${profile.mountPath}` +
          `${profile.extraReadOnlyPaths.length ? `, and ${profile.extraReadOnlyPaths.join(", ")}` : ""}: anything else the build needs goes into the profile's extraReadOnlyPaths`,
      );
    }
  }
  if (failed) process.exitCode = 1;
}

main().catch((error) => {
  console.error(`kernels: ${error instanceof Error ? error.message : error}`);
  process.exitCode = 1;
});
