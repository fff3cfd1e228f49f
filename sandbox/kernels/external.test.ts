/**
 * External kernels (eduOS-rs) through the real engine, when the machine has one prepared:
 *
 *   OSBE_TEST_KERNELS_FILE=/srv/eduos-kernels.json npx vitest run sandbox/kernels/external.test.ts
 *
 * The file holds kernel profiles as OSBE_KERNELS_FILE does (kernels/README.md), with their warm
 * trees built (scripts/build-kernels.ts). For each profile: an edited lesson file builds in the
 * sandbox and boots with the edit on the serial console and the profile's success status; a
 * type error in it comes back as rustc's diagnostic on the right line. Nothing is fetched: with no
 * file configured these tests are skipped, saying why. The project's own kernel is tested
 * always (kernel.test.ts, test/sandbox/kernel-engine.test.ts, scripts/build-kernels.test.ts).
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runToEnd, startTestEngine, type TestEngine } from "../../test/sandbox/helpers";
import { bootKernel } from "./host";
import { type KernelProfile, loadKernelProfiles } from "./profile";

const FILE = process.env.OSBE_TEST_KERNELS_FILE;
const profiles: KernelProfile[] = FILE ? loadKernelProfiles({ OSBE_KERNELS_FILE: FILE }).filter((p) => p.name !== "osbe") : [];
if (!FILE) {
  console.log("external kernels: skipped, no prepared checkout configured (set OSBE_TEST_KERNELS_FILE to a kernel profiles JSON file; kernels/README.md)");
}

let t: TestEngine | undefined;
beforeAll(() => {
  if (profiles.length > 0) t = startTestEngine(280_000, { concurrency: 1, kernels: profiles });
});
afterEach(async () => {
  await t?.expectNothingLeft();
});
afterAll(async () => {
  await t?.dispose();
});

describe.skipIf(!FILE)("external kernel profiles (OSBE_TEST_KERNELS_FILE)", () => {
  it("the file names at least one external profile", () => {
    expect(profiles.length, `${FILE} holds no profile besides osbe`).toBeGreaterThan(0);
  });

  for (const profile of profiles) {
    const lesson = profile.replaceableFiles[0];
    const original = () => fs.readFileSync(path.join(profile.sourceDir, lesson!.path), "utf8");

    it(`${profile.name}: is available with its warm tree`, async () => {
      expect(lesson, "the profile names a lesson file").toBeDefined();
      const health = (await t!.engine.health()).kernels.find((k) => k.name === profile.name);
      expect(health, JSON.stringify(health)).toMatchObject({ available: true });
    });

    it(`${profile.name}: an edited lesson file builds in the sandbox and boots with the edit`, async () => {
      // The warm kernel's first serial line, written differently in the lesson file if it holds it.
      const warm = await bootKernel(profile, path.join(profile.sourceDir, profile.imagePath), 60_000);
      expect(warm.outcome.kind, warm.stdout + warm.stderr).toBe("success");
      const firstLine = warm.stdout.split("\n")[0]!.replace(/\r$/, "");
      const source = original();
      const edited = source.includes(firstLine) && firstLine.length >= 8 && !/["\\]/.test(firstLine);
      const content = edited ? source.replace(firstLine, "Edited on a slide of the kernel lab") : `${source}\n// edited on a slide\n`;
      const run = await runToEnd(t!.engine, { language: "kernel", kernel: profile.name, files: [{ name: lesson!.path, content }] });
      expect(run.compiled?.ok, run.compiled?.stderr).toBe(true);
      expect(run.stdout.split("\n")[0]!.replace(/\r$/, "")).toBe(edited ? "Edited on a slide of the kernel lab" : firstLine);
      expect(run.exit).toMatchObject({ phase: "run", exitCode: profile.successExitCode, message: "kernel exited: success" });
    }, 300_000);

    it(`${profile.name}: a type error comes back as rustc's diagnostic on its line`, async () => {
      const source = original();
      const line = source.split("\n").length + 1;
      const content = `${source}\nfn osbe_broken() -> u32 { "not a number" }\n`;
      const run = await runToEnd(t!.engine, { language: "kernel", kernel: profile.name, files: [{ name: lesson!.path, content }] });
      expect(run.compiled?.ok).toBe(false);
      expect(run.exit).toMatchObject({ phase: "compile", message: expect.stringMatching(/^compilation failed: \d+ errors?/) });
      expect(run.diagnostics?.items).toContainEqual(expect.objectContaining({ file: lesson!.path, line, severity: "error" }));
    }, 300_000);
  }
});
