/**
 * Documented outcomes no other test drives the real engine into: a compile stopped by the compile
 * phase's own limits, input typed while the program still compiles, the `internal` error when the
 * sandbox itself fails, and health's `available: false` (sandbox/README.md, README's protocol).
 */
import fs from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { osbeProfile } from "../../sandbox/kernels/profile";
import { c, compileReport, runToEnd, rust, start, startTestEngine, type TestEngine } from "./helpers";

describe("the compile phase's own limits", () => {
  let t: TestEngine;
  beforeAll(() => {
    // Lowered for the test, as an operator would through SANDBOX_LIMITS; a run's limits stay the defaults.
    t = startTestEngine(279_000, { limits: { compile: { cpuSeconds: 1, outputBytes: 4096 } } });
  });
  afterEach(async () => await t.expectNothingLeft());
  afterAll(async () => await t?.dispose());

  it("a compile that needs more CPU time than the compile limit is stopped there, and says so", { timeout: 180_000 }, async () => {
    // Each static_assert makes g++ evaluate about 2 s of constexpr loop (about 6 s in all, little
    // memory): the 1 s CPU limit stops it. CPU seconds: a loaded machine only makes it take longer.
    const spin = (k: number) => `static_assert(f(${k}) > 0);`;
    const source = `constexpr long f(long k) { long s = 0; for (long i = 0; i < 100000; i++) for (long j = 0; j < 10; j++) s += (i ^ j ^ k) % 7; return s; }\n${[1, 2, 3].map(spin).join("\n")}\nint main() {}\n`;
    const run = await runToEnd(t.engine, { language: "cpp", files: [{ name: "main.cpp", content: source }] });
    expect(run.compiled, compileReport(run)).toMatchObject({ ok: false, limit: "cpu" });
    expect(run.exit).toMatchObject({ phase: "compile", limit: "cpu", message: "compilation failed: compiler killed: CPU time limit of 1 s exceeded" });
    expect(run.events.some((e) => e.type === "running")).toBe(false);
  });

  it("a compile whose diagnostics exceed the compile output limit is stopped there, and says so", { timeout: 120_000 }, async () => {
    const source = `int main(void) {\n${Array.from({ length: 400 }, (_, i) => `  int v${i} = undeclared_${i};`).join("\n")}\n}\n`;
    const run = await runToEnd(t.engine, c(source));
    expect(run.compiled, compileReport(run)).toMatchObject({ ok: false, limit: "output" });
    expect(run.exit).toMatchObject({ phase: "compile", limit: "output", message: "compilation failed: compiler stopped: output limit of 4 KiB exceeded" });
    // A program within the compile limits still compiles and runs.
    const hello = await runToEnd(t.engine, c(`#include <stdio.h>\nint main(void) { puts("fine"); return 0; }\n`));
    expect(hello.stdout).toBe("fine\n");
  });
});

describe("a run's lifecycle", () => {
  let t: TestEngine;
  beforeAll(() => {
    t = startTestEngine(280_000, { concurrency: 1, prepareSandboxes: false });
  });
  afterEach(async () => await t.expectNothingLeft());
  afterAll(async () => await t?.dispose());

  it("keeps input typed while the program still compiles, and its end-of-file", { timeout: 120_000 }, async () => {
    const echo = `use std::io::Read;\nfn main() {\n    let mut s = String::new();\n    std::io::stdin().read_to_string(&mut s).unwrap();\n    print!("read {:?} then end-of-file (${Date.now()})", s);\n}\n`;
    const run = start(t.engine, rust(echo));
    await run.waitFor((e) => e.type === "compiling");
    run.handle.writeStdin("typed early\n");
    run.handle.closeStdin();
    const typedAt = run.collected.events.map((e) => e.type);
    const done = await run.finished;
    expect(typedAt, "typed before the compile ended").not.toContain("compiled");
    expect(done.stdout).toMatch(/^read "typed early\\n" then end-of-file/);
    expect(done.exit).toMatchObject({ exitCode: 0 });
  });

  it("ends with an `internal` error saying why when the sandbox itself cannot be set up", async () => {
    await t.engine.health(); // ready: the temp root exists
    // The host side breaks under the engine: its temp root is now a file, no workspace can be made.
    fs.rmSync(t.tempRoot, { recursive: true, force: true });
    fs.writeFileSync(t.tempRoot, "not a folder");
    try {
      const run = await runToEnd(t.engine, c(`int main(void) { return 0; }\n`));
      expect(run.error).toMatchObject({ type: "error", code: "internal", message: expect.stringMatching(/^sandbox failure: .*ENOTDIR/) });
      expect(run.events.some((e) => e.type === "running")).toBe(false);
    } finally {
      fs.rmSync(t.tempRoot, { force: true });
      fs.mkdirSync(t.tempRoot, { mode: 0o711 });
    }
    // The engine carries on once the host is mended.
    expect((await runToEnd(t.engine, c(`#include <stdio.h>\nint main(void) { puts("mended"); return 0; }\n`))).stdout).toBe("mended\n");
  });
});

describe("health", () => {
  it("says `available: false` and why for a kernel without a warm build tree; its runs fail in the same words", { timeout: 120_000 }, async () => {
    const cold = { ...osbeProfile(), name: "cold", targetDir: "no-warm-target" };
    const t = startTestEngine(281_000, { concurrency: 1, kernels: [osbeProfile(), cold] });
    try {
      const health = await t.engine.health();
      const problem = expect.stringMatching(/^kernel cold has no warm build tree at .*no-warm-target \(run scripts\/build-kernels\.ts\)$/);
      expect(health.kernels.find((k) => k.name === "cold")).toMatchObject({ available: false, problem });
      expect(health.kernels.find((k) => k.name === "osbe")).toMatchObject({ available: true });
      expect(health.kernels.find((k) => k.name === "osbe")).not.toHaveProperty("problem");
      const run = await runToEnd(t.engine, { language: "kernel", kernel: "cold" });
      expect(run.error ?? run.exit).toMatchObject({ message: expect.stringContaining("kernel cold has no warm build tree") });
      await t.expectNothingLeft();
    } finally {
      await t.dispose();
    }
  });
});
