/**
 * A profile whose flags changed after its warm tree was built (the lecturer edited the JSON and
 * did not run scripts/build-kernels.ts): a run would have to rebuild the standard library in the
 * sandbox. The run's message says so and what to do, instead of only "build exited with code 101".
 * Real engine, real cargo: the project's kernel with extra rustflags and a short build limit.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runToEnd, startTestEngine, type TestEngine } from "../../test/sandbox/helpers";
import { buildKernel } from "./host";
import { externalProfile, osbeProfile } from "./profile";

const osbe = osbeProfile();
let t: TestEngine;

beforeAll(async () => {
  const warm = await buildKernel(osbe, osbe.sourceDir, 15 * 60 * 1000);
  expect(warm.ok, warm.stderr).toBe(true);
  const changed = externalProfile({
    name: "changed-flags",
    sourceDir: osbe.sourceDir,
    buildCommand: osbe.buildCommand,
    imagePath: osbe.imagePath,
    successExitCode: 33,
    // Other rustflags than the warm tree's: cargo must rebuild core, alloc and compiler_builtins.
    env: { CARGO_TARGET_I686_OSBE_RUSTFLAGS: "-Cdebug-assertions=on" },
    replaceableFiles: [{ path: "src/hello.rs", lesson: "the boot message" }],
    // Compiling core needs ~1 GiB: a small memory limit ends the attempt within seconds, the wall limit at the latest.
    limits: { build: { wallSeconds: 20, memoryMiB: 256 } },
  });
  t = startTestEngine(284_000, { concurrency: 1, kernels: [changed] });
}, 15 * 60 * 1000);

afterEach(async () => {
  await t.expectNothingLeft();
});

afterAll(async () => {
  await t?.dispose();
});

describe("a warm tree that does not match its profile", () => {
  it("is named in the run's message, with what to do", async () => {
    const run = await runToEnd(t.engine, { language: "kernel", kernel: "changed-flags", files: [{ name: "src/hello.rs", content: "pub fn hello() {}\n" }] });
    console.log(`a run on a warm tree made for other flags: ${run.exit?.message}`);
    expect(run.compiled?.ok).toBe(false);
    expect(run.exit).toMatchObject({
      phase: "compile",
      message: expect.stringMatching(/^compilation failed.* — the run had to rebuild the standard library: kernel changed-flags's warm tree does not match its profile \(run scripts\/build-kernels\.ts\)$/),
    });
  }, 120_000);
});
