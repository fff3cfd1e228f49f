/**
 * Prepares the warm build trees of the kernel lab: builds every kernel profile (the project's
 * kernels/osbe and any external one configured by OSBE_KERNELS / OSBE_KERNELS_FILE) in its own
 * source folder, so that a run only recompiles the files a slide replaced.
 *
 *   npx tsx scripts/build-kernels.ts          all profiles
 *   npx tsx scripts/build-kernels.ts osbe     only these
 *
 * Idempotent: when a tree is up to date, cargo only checks fingerprints (about 0.1 s). The first
 * build compiles core, alloc and compiler_builtins from Debian's rust-web-src (about 25 s here).
 * Runs never write into these trees (sandbox/kernels/tree.ts), so nothing else should either
 * while the server is up.
 */
import fs from "node:fs";
import path from "node:path";
import { buildKernel } from "../sandbox/kernels/host";
import { loadKernelProfiles } from "../sandbox/kernels/profile";

async function main() {
  const wanted = process.argv.slice(2);
  const profiles = loadKernelProfiles().filter((p) => wanted.length === 0 || wanted.includes(p.name));
  const unknown = wanted.filter((name) => !profiles.some((p) => p.name === name));
  if (unknown.length) throw new Error(`unknown kernel profile(s): ${unknown.join(", ")}`);

  let failed = false;
  for (const profile of profiles) {
    if (!fs.existsSync(profile.sourceDir)) {
      console.error(`kernels: ${profile.name}: source folder ${profile.sourceDir} is missing`);
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
      continue;
    }
    for (const d of result.diagnostics.filter((d) => d.level === "warning")) console.warn(d.rendered ?? d.message);
    console.log(`kernels: ${profile.name}: warm tree ready in ${(result.ms / 1000).toFixed(2)} s (${path.relative(process.cwd(), image) || image})`);
  }
  if (failed) process.exitCode = 1;
}

main().catch((error) => {
  console.error(`kernels: ${error instanceof Error ? error.message : error}`);
  process.exitCode = 1;
});
