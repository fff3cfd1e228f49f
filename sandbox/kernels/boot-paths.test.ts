/**
 * A profile's boot arguments and the boot sandbox's extra read-only paths, through the real engine
 * (bwrap, QEMU): the project's kernel configured as an external profile whose QEMU also opens a
 * drive from a folder outside the checkout. Listed in qemu.extraReadOnlyPaths, QEMU sees it and
 * the kernel boots; not listed, QEMU cannot open it and the run says so.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runToEnd, startTestEngine, type TestEngine } from "../../test/sandbox/helpers";
import { buildKernel } from "./host";
import { type ExternalKernelConfig, externalProfile, osbeProfile } from "./profile";

const osbe = osbeProfile();
let base: string;
let t: TestEngine;

function config(name: string, listed: boolean): ExternalKernelConfig {
  const disk = path.join(base, "disks", "scratch.img");
  return {
    name,
    sourceDir: osbe.sourceDir,
    buildCommand: osbe.buildCommand,
    imagePath: osbe.imagePath,
    imageKind: "elf-kernel",
    successExitCode: 33,
    replaceableFiles: [{ path: "src/hello.rs", lesson: "the boot message" }],
    qemu: {
      binary: "x86_64",
      memoryMiB: 32,
      cpu: "qemu32",
      extraArgs: ["-drive", `if=none,id=scratch,format=raw,readonly=on,file=${disk}`],
      ...(listed ? { extraReadOnlyPaths: [path.join(base, "disks")] } : {}),
    },
    limits: { boot: { wallSeconds: 10 } },
  };
}

beforeAll(async () => {
  const warm = await buildKernel(osbe, osbe.sourceDir, 15 * 60 * 1000);
  expect(warm.ok, warm.stderr).toBe(true);
  // Not under /tmp: the sandbox has its own /tmp.
  base = fs.mkdtempSync("/var/tmp/osbe-boot-paths-test-");
  fs.chmodSync(base, 0o755);
  fs.mkdirSync(path.join(base, "disks"), { mode: 0o755 });
  fs.writeFileSync(path.join(base, "disks", "scratch.img"), Buffer.alloc(64 * 1024), { mode: 0o644 });
  t = startTestEngine(282_000, { concurrency: 1, kernels: [externalProfile(config("listed", true)), externalProfile(config("unlisted", false))] });
}, 15 * 60 * 1000);

afterEach(async () => {
  await t.expectNothingLeft();
});

afterAll(async () => {
  await t?.dispose();
  if (base) fs.rmSync(base, { recursive: true, force: true });
});

describe("boot arguments and the boot sandbox's extra paths", () => {
  it("boots with the profile's CPU and an extra drive from a listed folder", async () => {
    const run = await runToEnd(t.engine, { language: "kernel", kernel: "listed" });
    expect(run.stdout.split("\n")[0]).toBe("Hello from the OSByExample kernel!");
    expect(run.exit, run.stderr).toMatchObject({ phase: "run", exitCode: 33, message: "kernel exited: success" });
  }, 120_000);

  it("says QEMU could not start when the drive's folder is not listed (the sandbox does not see it)", async () => {
    const run = await runToEnd(t.engine, { language: "kernel", kernel: "unlisted" });
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/scratch\.img.*No such file or directory/);
    expect(run.exit).toMatchObject({ phase: "run", exitCode: 1, message: "QEMU failed to start the kernel (status 1)" });
  }, 120_000);
});
