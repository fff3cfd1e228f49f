/**
 * A raw disk image through the real engine, always (no eduOS-rs needed): a profile whose "kernel"
 * is a boot sector assembled by NASM (in the build sandbox, like cargo for the others), booted by
 * SeaBIOS from `-drive format=raw`. It prints on the serial port and exits through isa-debug-exit.
 * This is the path the current eduOS-rs takes (imageKind raw-disk / bootloader-0.9): QEMU opens
 * the disk for writing, so each boot gets its own writable copy, and nothing of it is left behind.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runToEnd, startTestEngine, type TestEngine } from "../../test/sandbox/helpers";
import { externalProfile, type KernelProfile } from "./profile";

/** A boot sector: writes `message` to COM1, then `exitValue` to isa-debug-exit (status 2v+1). */
function bootSector(message: string, exitValue = 0x10): string {
  return [
    "bits 16",
    "org 0x7c00",
    "  cli",
    "  xor ax, ax",
    "  mov ds, ax",
    "  mov si, msg",
    "  mov dx, 0x3f8",
    "next:",
    "  lodsb",
    "  test al, al",
    "  jz done",
    "  out dx, al",
    "  jmp next",
    "done:",
    `  mov al, ${exitValue}`,
    "  out 0xf4, al",
    "halt:",
    "  hlt",
    "  jmp halt",
    `msg: db "${message}", 13, 10, 0`,
    "times 510-($-$$) db 0",
    "dw 0xaa55",
    "",
  ].join("\n");
}

let dir: string;
let profile: KernelProfile;
let t: TestEngine | undefined;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "raw-disk-test-"));
  fs.chmodSync(dir, 0o755); // the sandbox user reads the warm tree's unchanged folders
  fs.mkdirSync(path.join(dir, "src"));
  fs.mkdirSync(path.join(dir, "target"));
  fs.writeFileSync(path.join(dir, "src/boot.asm"), bootSector("Hello from a boot sector!"));
  profile = externalProfile({
    name: "bootsector",
    sourceDir: dir,
    buildCommand: ["/usr/bin/nasm", "-f", "bin", "-o", "target/disk.img", "src/boot.asm"],
    imagePath: "target/disk.img",
    imageKind: "raw-disk",
    replaceableFiles: [{ path: "src/boot.asm", lesson: "a boot sector" }],
    exitMeanings: { 35: "the boot sector reported failure" },
    limits: { boot: { wallSeconds: 20 } },
  });
  // The warm tree: the image built once on the host, as scripts/build-kernels.ts would.
  execFileSync(profile.buildCommand[0]!, profile.buildCommand.slice(1), { cwd: dir });
  t = startTestEngine(286_000, { concurrency: 1, kernels: [profile] });
});

afterAll(async () => {
  await t?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("a raw disk image (imageKind raw-disk) through the engine", () => {
  it("boots an edited boot sector from the disk, streams its serial output and reads its exit", async () => {
    const run = await runToEnd(t!.engine, { language: "kernel", kernel: "bootsector", files: [{ name: "src/boot.asm", content: bootSector("Edited on a slide") }] });
    expect(run.compiled?.ok, run.compiled?.stderr).toBe(true);
    expect(run.stdout).toBe("Edited on a slide\r\n");
    expect(run.exit).toMatchObject({ phase: "run", exitCode: 33, message: "kernel exited: success" });
    await t!.expectNothingLeft();
  }, 120_000);

  it("boots the same image twice (the second time from the compile cache) and a failing one", async () => {
    const request = { language: "kernel" as const, kernel: "bootsector", files: [{ name: "src/boot.asm", content: bootSector("twice") }] };
    const first = await runToEnd(t!.engine, request);
    const second = await runToEnd(t!.engine, request);
    expect(second.compiled?.cached).toBe(true);
    for (const run of [first, second]) {
      expect(run.stdout).toBe("twice\r\n");
      expect(run.exit).toMatchObject({ exitCode: 33 });
    }
    const failing = await runToEnd(t!.engine, { ...request, files: [{ name: "src/boot.asm", content: bootSector("going wrong", 0x11) }] });
    expect(failing.stdout).toBe("going wrong\r\n");
    expect(failing.exit).toMatchObject({ exitCode: 35, message: "kernel reported failure (status 35): the boot sector reported failure" });
    await t!.expectNothingLeft();
  }, 180_000);
});
