/**
 * The bootloader 0.9 image step (our own code): always runs, on synthetic ELF files and a
 * synthetic bootloader, plus the project's own kernel (a 32-bit multiboot ELF, refused with words).
 * With a prepared eduOS-rs checkout (OSBE_TEST_KERNELS_FILE = a profiles JSON file with a
 * profile of imageKind bootloader-0.9, its warm tree and stage made by scripts/build-kernels.ts),
 * also the real thing: the stage reproduces bootimage's image and a written image boots in QEMU.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { findSizeSites, imageFromKernel, loadableKernel, loadStage, writeBootImage } from "./bootloader09";
import { KERNELS_DIR, loadKernelProfiles, qemuArgv } from "./profile";

/** A minimal x86_64 ELF executable: header, program headers, segments, then "debug" bytes and section headers. */
function syntheticElf(options: { segments?: Array<{ type?: number; flags?: number; bytes: number }>; machine?: number; trailing?: number } = {}): Buffer {
  const segments = options.segments ?? [
    { type: 1, flags: 5, bytes: 300 }, // PT_LOAD R+X: code
    { type: 1, flags: 6, bytes: 100 }, // PT_LOAD R+W: data
    { type: 0x6474e551, flags: 6, bytes: 0 }, // PT_GNU_STACK
  ];
  const phoff = 64;
  let offset = phoff + 56 * segments.length;
  const header = Buffer.alloc(offset);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = 2; // 64-bit
  header[5] = 1; // little-endian
  header[6] = 1;
  header.writeUInt16LE(2, 16); // ET_EXEC
  header.writeUInt16LE(options.machine ?? 62, 18);
  header.writeUInt32LE(1, 20);
  header.writeBigUInt64LE(0x200000n, 24);
  header.writeBigUInt64LE(BigInt(phoff), 32);
  header.writeUInt16LE(64, 52);
  header.writeUInt16LE(56, 54);
  header.writeUInt16LE(segments.length, 56);
  header.writeUInt16LE(64, 58);
  const parts = [header];
  segments.forEach((segment, i) => {
    const at = phoff + 56 * i;
    header.writeUInt32LE(segment.type ?? 1, at);
    header.writeUInt32LE(segment.flags ?? 5, at + 4);
    header.writeBigUInt64LE(BigInt(segment.bytes ? offset : 0), at + 8);
    header.writeBigUInt64LE(BigInt(segment.bytes), at + 32);
    header.writeBigUInt64LE(BigInt(segment.bytes), at + 40);
    parts.push(Buffer.alloc(segment.bytes, 0x90 + i));
    offset += segment.bytes;
  });
  const trailing = options.trailing ?? 5000; // debug sections, symbols, section headers
  header.writeBigUInt64LE(BigInt(offset + trailing - 64 * 3), 40); // e_shoff
  header.writeUInt16LE(3, 60); // e_shnum
  header.writeUInt16LE(2, 62); // e_shstrndx
  parts.push(Buffer.alloc(trailing, 0xdb));
  return Buffer.concat(parts);
}

/** A "bootloader" of `sectors` sectors with the kernel's size written at `sites` (u32 LE, size + addend). */
function syntheticBootloader(kernelSize: number, sites: Array<{ offset: number; addend: number }>, sectors = 4): Buffer {
  const bootloader = Buffer.alloc(sectors * 512);
  for (let i = 0; i < bootloader.length; i++) bootloader[i] = (i * 7 + 3) & 0xff; // "code"
  for (const site of sites) bootloader.writeUInt32LE(kernelSize + site.addend, site.offset);
  return bootloader;
}

describe("loadableKernel", () => {
  it("keeps the header, program headers and segments, and drops what follows", () => {
    const elf = syntheticElf();
    const kernel = loadableKernel(elf);
    expect(kernel.length).toBe(64 + 56 * 3 + 300 + 100);
    expect(kernel.subarray(0, 40).equals(elf.subarray(0, 40))).toBe(true);
    expect(kernel.subarray(64).equals(elf.subarray(64, kernel.length))).toBe(true);
    // No section headers any more: the bootloader's ELF check must not look past the end.
    expect(kernel.readBigUInt64LE(40)).toBe(0n);
    expect(kernel.readUInt16LE(60)).toBe(0);
    expect(kernel.readUInt16LE(62)).toBe(0);
    expect(elf.readUInt16LE(60)).toBe(3); // the input is left as it was
  });

  it("refuses what the bootloader could not load, in words", () => {
    expect(() => loadableKernel(Buffer.from("#!/bin/sh\necho hi\n"))).toThrow(/not an x86_64 ELF executable the bootloader can load: no ELF header/);
    expect(() => loadableKernel(syntheticElf({ machine: 3 }))).toThrow(/machine 3, not x86_64/);
    expect(() => loadableKernel(syntheticElf({ segments: [{ type: 1, flags: 6, bytes: 64 }] }))).toThrow(/no loadable code segment/);
    const cut = syntheticElf();
    expect(() => loadableKernel(cut.subarray(0, 64 + 56 * 3 + 10))).toThrow(/segment 0 lies outside the file/);
    const wild = syntheticElf();
    wild.writeBigUInt64LE(0xffffffffffff0000n, 32); // program headers far past the end
    expect(() => loadableKernel(wild)).toThrow(/program headers missing or outside the file/);
    expect(() => loadableKernel(syntheticElf({ segments: [{ type: 1, flags: 5, bytes: 4096 }] }), 1024)).toThrow(/more than 1024/);
  });

  it("refuses the project's own kernel, a 32-bit multiboot ELF, and says what to use instead", () => {
    const osbe = path.join(KERNELS_DIR, "osbe/target/i686-osbe/debug/osbe-kernel");
    if (!fs.existsSync(osbe)) {
      // bootstrap.sh builds it before the tests; without it this check has nothing to read.
      console.log(`bootloader09.test: ${osbe} not built (run scripts/build-kernels.ts): the 32-bit refusal is checked on a synthetic header only`);
      const elf32 = syntheticElf();
      elf32[4] = 1;
      expect(() => loadableKernel(elf32)).toThrow(/not a 64-bit ELF .*imageKind elf-kernel/);
      return;
    }
    expect(() => loadableKernel(fs.readFileSync(osbe))).toThrow(/not a 64-bit ELF .*imageKind elf-kernel/);
  });
});

describe("findSizeSites and writeBootImage", () => {
  const sites = [
    { offset: 0x85, addend: 0 }, // stage 2: mov ecx, _kernel_size
    { offset: 0x3e5, addend: 0 }, // stage 3
    { offset: 0x690, addend: 0x400000 }, // stage 4: 0x400000 + size, folded
    { offset: 0x695, addend: 0x400000 },
  ];

  it("finds every place the kernel's size is written, with its addend", () => {
    const a = syntheticBootloader(0x1843d8, sites);
    const b = syntheticBootloader(0x1843d8 + 0x10151, sites);
    expect(findSizeSites(a, 0x1843d8, b, 0x1843d8 + 0x10151)).toEqual(sites);
  });

  it("refuses a difference the size does not explain, and bootloaders of different lengths", () => {
    const a = syntheticBootloader(1000, sites);
    const b = syntheticBootloader(1000 + 0x10151, sites);
    b[0x200] ^= 0xff;
    expect(() => findSizeSites(a, 1000, b, 1000 + 0x10151)).toThrow(/differs at byte 0x200 in a way the kernel's size does not explain/);
    expect(() => findSizeSites(a, 1000, Buffer.concat([a, Buffer.alloc(512)]), 2000)).toThrow(/size depends on the kernel's/);
    expect(() => findSizeSites(a, 1000, a, 2000)).toThrow(/written nowhere/);
  });

  it("writes the bootloader with the new size, the kernel at its end, padded to whole sectors", () => {
    const stage = { bootloader: syntheticBootloader(1000, sites), sizeSites: sites };
    const kernel = loadableKernel(syntheticElf());
    const image = writeBootImage(stage, kernel);
    expect(image.length % 512).toBe(0);
    expect(image.length).toBe(stage.bootloader.length + Math.ceil(kernel.length / 512) * 512);
    // Exactly what a link with this kernel would have made.
    const linked = syntheticBootloader(kernel.length, sites);
    expect(image.subarray(0, stage.bootloader.length).equals(linked)).toBe(true);
    expect(image.subarray(stage.bootloader.length, stage.bootloader.length + kernel.length).equals(kernel)).toBe(true);
    expect(image.subarray(stage.bootloader.length + kernel.length).every((byte) => byte === 0)).toBe(true);
    // The stage itself is not changed by writing an image.
    expect(stage.bootloader.equals(syntheticBootloader(1000, sites))).toBe(true);
  });
});

/** A prepared eduOS-rs (x86_64, bootloader 0.9) profile, if the set-up configured one. */
function preparedProfile() {
  const file = process.env.OSBE_TEST_KERNELS_FILE;
  if (!file) return { why: "OSBE_TEST_KERNELS_FILE is not set (a profiles JSON file with a bootloader-0.9 profile, see kernels/README.md)" };
  const profile = loadKernelProfiles({ OSBE_KERNELS_FILE: file }).find((p) => p.imageKind === "bootloader-0.9");
  if (!profile) return { why: `${file} names no profile of imageKind bootloader-0.9` };
  try {
    loadStage(profile);
  } catch (error) {
    return { why: (error as Error).message };
  }
  return { profile };
}

const prepared = preparedProfile();
if (!prepared.profile) console.log(`bootloader09.test: the eduOS-rs checks are skipped: ${prepared.why}`);

describe.skipIf(!prepared.profile)("with a prepared eduOS-rs checkout", () => {
  it("writes an image QEMU boots to eduOS-rs's success exit", { timeout: 120_000 }, () => {
    const profile = prepared.profile!;
    const image = imageFromKernel(profile, fs.readFileSync(path.join(profile.sourceDir, profile.imagePath)));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bootloader09-test-"));
    try {
      const file = path.join(dir, "disk.img");
      fs.writeFileSync(file, image);
      const [qemu, ...args] = qemuArgv(profile, file);
      const result = spawnSync(qemu!, args, { encoding: "utf8", timeout: 100_000, input: "" });
      expect(result.stdout).toContain("Hello from eduOS-rs!");
      expect(result.status).toBe(profile.successExitCode);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
