/**
 * The image step of `bootloader` 0.9 kernels (eduOS-rs's current version, blog_os-style kernels),
 * done by our own code instead of `bootimage`.
 *
 * `bootimage` makes a raw disk image by rebuilding the bootloader crate around the kernel: its
 * build script strips the kernel, wraps it in an object file and links the bootloader with it;
 * the image is the linked bootloader flattened (stage 1 in the boot sector, stages 2-4, then the
 * kernel's bytes at a 512-byte boundary, padded to whole sectors). That is 1.45 s of cargo and
 * linking per edit here. But the bootloader's bytes do not depend on the kernel, except for the
 * kernel's size, which the linker writes into the bootloader's code (`_kernel_size`, as an
 * immediate in stages 2 and 3 and folded into constants such as 0x400000 + size in stage 4).
 *
 * So set-up links the bootloader twice, with the warm kernel and with the same kernel made
 * 0x10101 bytes longer; the bytes that differ are exactly where the size is written, each a
 * 32-bit little-endian `size + addend` (checked: every differing byte must be explained). That
 * "stage" (the bootloader's bytes and those places) is kept in the warm tree, and a run's image is
 * then written in microseconds: the stage with the new size patched in, the kernel, padding.
 *
 * The kernel is also cut to what the bootloader loads: the ELF header, the program headers and
 * the segments' bytes, without debug sections, symbols or section headers (the bootloader reads
 * program headers only). Stage 2 reads the kernel from disk one 512-byte sector per BIOS call,
 * about 0.3-1 ms each under QEMU's TCG here: eduOS-rs's debug kernel is 9.7 MB with debug info,
 * 1.59 MB as `bootimage` strips it (--strip-debug) and 0.78 MB cut like this, which halves the
 * time from QEMU's start to the first serial line.
 *
 * Node only. Everything here that reads a run's kernel treats it as hostile input: bounds are
 * checked and the result is limited in size.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runCommand } from "./host";
import type { KernelProfile } from "./profile";

const SECTOR = 512;
/** About what the second, probing link adds to the kernel's size: changes the size's three low bytes. */
const PROBE_GROWTH = 0x10101;
/** ELF constants used below. */
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
const EM_X86_64 = 62;
const PT_LOAD = 1;
const PF_X = 1;

const alignUp = (n: number, to: number) => Math.ceil(n / to) * to;

/**
 * The part of an x86_64 ELF kernel that `bootloader` 0.9 loads: everything up to the end of the
 * last segment's file bytes (ELF header, program headers, segments), with the section header
 * fields cleared. Throws a message a student can act on when the file is no such kernel.
 */
export function loadableKernel(elf: Buffer, maxBytes = 64 * 1024 * 1024): Buffer {
  const fail = (why: string): never => {
    throw new Error(`the build's kernel is not an x86_64 ELF executable the bootloader can load: ${why}`);
  };
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) fail("no ELF header");
  if (elf[4] !== ELFCLASS64) fail("not a 64-bit ELF (bootloader 0.9 boots x86_64 kernels; a 32-bit multiboot kernel uses imageKind elf-kernel)");
  if (elf[5] !== ELFDATA2LSB) fail("not little-endian");
  if (elf.readUInt16LE(16) !== ET_EXEC) fail("not an executable (ET_EXEC)");
  if (elf.readUInt16LE(18) !== EM_X86_64) fail(`machine ${elf.readUInt16LE(18)}, not x86_64`);
  const ehsize = elf.readUInt16LE(52);
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  if (ehsize !== 64 || phentsize !== 56) fail("unexpected header sizes");
  if (phnum === 0 || phoff < 64 || phoff + phnum * phentsize > elf.length) fail("program headers missing or outside the file");
  let end = phoff + phnum * phentsize;
  let code = false;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const type = elf.readUInt32LE(at);
    const flags = elf.readUInt32LE(at + 4);
    const offset = elf.readBigUInt64LE(at + 8);
    const fileSize = elf.readBigUInt64LE(at + 32);
    if (fileSize === 0n) continue;
    if (offset + fileSize > BigInt(elf.length)) fail(`segment ${i} lies outside the file`);
    end = Math.max(end, Number(offset + fileSize));
    if (type === PT_LOAD && flags & PF_X) code = true;
  }
  if (!code) fail("no loadable code segment (is the entry point set?)");
  if (end > maxBytes) fail(`its loadable part is ${end} bytes, more than ${maxBytes}`);
  const kernel = Buffer.from(elf.subarray(0, end));
  kernel.writeBigUInt64LE(0n, 40); // e_shoff
  kernel.writeUInt16LE(0, 60); // e_shnum
  kernel.writeUInt16LE(0, 62); // e_shstrndx
  return kernel;
}

/** Where, in the bootloader's bytes, the kernel's size is written: as `size + addend`, u32 LE. */
export interface SizeSite {
  offset: number;
  addend: number;
}

/** The bootloader part of a raw image, ready to take any kernel. */
export interface BootloaderStage {
  /** The image's bytes before the kernel (a whole number of sectors). */
  bootloader: Buffer;
  sizeSites: SizeSite[];
}

/**
 * The places where two links of the same bootloader, with kernels of `sizeA` and `sizeB` bytes,
 * differ, explained as 32-bit little-endian `size + addend` fields. Throws when a differing byte
 * is not explained so (then the bootloader is not one this image step understands).
 */
export function findSizeSites(a: Buffer, sizeA: number, b: Buffer, sizeB: number): SizeSite[] {
  if (a.length !== b.length) throw new Error(`the bootloader's size depends on the kernel's (${a.length} and ${b.length} bytes)`);
  const sites: SizeSite[] = [];
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    const valueA = i + 4 <= a.length ? a.readUInt32LE(i) : -1;
    const valueB = i + 4 <= b.length ? b.readUInt32LE(i) : -1;
    if (valueA < 0 || valueB - valueA !== sizeB - sizeA) {
      throw new Error(`the bootloader differs at byte 0x${i.toString(16)} in a way the kernel's size does not explain`);
    }
    sites.push({ offset: i, addend: valueA - sizeA });
    i += 3;
  }
  if (sites.length === 0) throw new Error("the kernel's size is written nowhere in the bootloader (not a bootloader 0.9 image?)");
  return sites;
}

/** The raw disk image: the stage with the kernel's size written in, the kernel, whole sectors. */
export function writeBootImage(stage: BootloaderStage, kernel: Buffer): Buffer {
  const image = Buffer.alloc(alignUp(stage.bootloader.length + kernel.length, SECTOR));
  stage.bootloader.copy(image, 0);
  for (const site of stage.sizeSites) {
    const value = kernel.length + site.addend;
    if (value < 0 || value > 0xffffffff) throw new Error(`a kernel of ${kernel.length} bytes does not fit this bootloader`);
    image.writeUInt32LE(value, site.offset);
  }
  kernel.copy(image, stage.bootloader.length);
  return image;
}

/** The stage as kept in the warm tree's target dir (JSON: the bootloader's bytes in base64). */
export function stagePath(profile: KernelProfile): string {
  return path.join(profile.sourceDir, profile.targetDir, ".osbe-bootloader-0.9-stage.json");
}

interface StageFile {
  version: 1;
  /** Hash of what the stage was made from (see stageInputs). */
  inputs: string;
  bootloader: string;
  sizeSites: SizeSite[];
}

const loaded = new Map<string, { mtimeMs: number; stage: BootloaderStage }>();

/** The profile's stage, read once per version of the file. Throws with what to run when missing. */
export function loadStage(profile: KernelProfile): BootloaderStage {
  const file = stagePath(profile);
  let mtimeMs: number;
  try {
    mtimeMs = fs.statSync(file).mtimeMs;
  } catch {
    throw new Error(`kernel ${profile.name} has no bootloader stage at ${file} (run scripts/build-kernels.ts ${profile.name})`);
  }
  const known = loaded.get(file);
  if (known?.mtimeMs === mtimeMs) return known.stage;
  const data = JSON.parse(fs.readFileSync(file, "utf8")) as StageFile;
  const stage = { bootloader: Buffer.from(data.bootloader, "base64"), sizeSites: data.sizeSites };
  loaded.set(file, { mtimeMs, stage });
  return stage;
}

/** A run's image from the kernel ELF its build made. */
export function imageFromKernel(profile: KernelProfile, elf: Buffer, maxBytes?: number): Buffer {
  return writeBootImage(loadStage(profile), loadableKernel(elf, maxBytes));
}

/**
 * What the stage depends on: the kernel's manifest (its `package.metadata.bootloader` settings
 * and the bootloader's version and features through Cargo.lock) and the toolchain's environment.
 */
function stageInputs(profile: KernelProfile): string {
  const hash = createHash("sha256").update(JSON.stringify(profile.env));
  for (const file of ["Cargo.toml", "Cargo.lock", ".cargo/config.toml"]) {
    const p = path.join(profile.sourceDir, file);
    hash.update(`\0${file}\0`).update(fs.existsSync(p) ? fs.readFileSync(p) : "");
  }
  return hash.digest("hex");
}

/** What bootimage would build the bootloader with, read from `cargo metadata`. */
interface BootloaderBuild {
  manifestPath: string;
  name: string;
  features: string[];
  target: string;
  buildStd?: string;
}

async function bootloaderBuild(profile: KernelProfile): Promise<BootloaderBuild> {
  const result = await runCommand(["/usr/bin/cargo", "metadata", "--format-version", "1", "--offline"], {
    cwd: profile.sourceDir,
    env: profile.env,
    timeoutMs: 120_000,
  });
  if (result.exitCode !== 0) throw new Error(`cargo metadata failed: ${result.stderr.slice(-2000)}`);
  // biome-ignore lint/suspicious/noExplicitAny: cargo's metadata JSON, read field by field below
  const metadata: any = JSON.parse(result.stdout);
  const kernelManifest = path.join(profile.sourceDir, "Cargo.toml");
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const kernel = metadata.packages.find((p: any) => p.manifest_path === kernelManifest);
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const dependency = kernel?.dependencies.find((d: any) => (d.rename ?? d.name) === "bootloader");
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const bootloader = dependency && metadata.packages.find((p: any) => p.name === dependency.name);
  if (!bootloader) throw new Error(`${kernelManifest} has no dependency on the bootloader crate`);
  if (!/^0\.9\./.test(bootloader.version)) throw new Error(`bootloader ${bootloader.version}: this image step knows bootloader 0.9 only`);
  // biome-ignore lint/suspicious/noExplicitAny: as above
  const node = metadata.resolve?.nodes.find((n: any) => n.id === bootloader.id);
  const settings = bootloader.metadata?.bootloader ?? {};
  if (typeof settings.target !== "string") throw new Error("the bootloader's Cargo.toml names no package.metadata.bootloader.target");
  return {
    manifestPath: bootloader.manifest_path,
    name: bootloader.name,
    features: [...(node?.features ?? []), ...(bootloader.features?.binary ? ["binary"] : [])],
    target: path.join(path.dirname(bootloader.manifest_path), settings.target),
    buildStd: typeof settings["build-std"] === "string" ? settings["build-std"] : undefined,
  };
}

/** Links the bootloader around `kernelFile` as bootimage 0.10 does, and flattens it: the raw image. */
async function linkImage(profile: KernelProfile, build: BootloaderBuild, kernelFile: string, scratch: string): Promise<Buffer> {
  const argv = [
    "/usr/bin/cargo",
    "build",
    ...(build.buildStd ? [`-Zbuild-std=${build.buildStd}`] : []),
    "--manifest-path", build.manifestPath,
    "--bin", build.name,
    "--target-dir", path.join(profile.sourceDir, profile.targetDir, "bootimage", build.name),
    "--features", build.features.join(" "),
    "--target", build.target,
    "-Zjson-target-spec",
    "--release",
    "--message-format=json",
  ];
  const env = { ...profile.env, KERNEL: kernelFile, KERNEL_MANIFEST: path.join(profile.sourceDir, "Cargo.toml"), RUSTFLAGS: "" };
  const result = await runCommand(argv, { cwd: profile.sourceDir, env, timeoutMs: 15 * 60_000 });
  if (result.exitCode !== 0) throw new Error(`building the bootloader failed (status ${result.exitCode}):\n${result.stderr.slice(-3000)}`);
  const executable = result.stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { executable?: string | null })
    .find((record) => record.executable)?.executable;
  if (!executable) throw new Error("building the bootloader produced no executable");
  const flat = path.join(scratch, "image.bin");
  await objcopy(["-I", "elf64-x86-64", "-O", "binary", executable, flat], scratch);
  const image = fs.readFileSync(flat);
  return Buffer.concat([image, Buffer.alloc(alignUp(image.length, SECTOR) - image.length)]);
}

/** The image's bytes before a kernel of `size` bytes at its end (the kernel starts at a sector). */
function bootloaderPart(image: Buffer, kernel: Buffer): Buffer {
  const start = Math.floor((image.length - kernel.length) / SECTOR) * SECTOR;
  if (start <= 0 || !image.subarray(start, start + kernel.length).equals(kernel)) {
    throw new Error("the linked image does not end with the kernel at a sector boundary (not a bootloader 0.9 image?)");
  }
  return Buffer.from(image.subarray(0, start));
}

const OBJCOPY = "/usr/lib/llvm-22/bin/llvm-objcopy";

async function objcopy(args: string[], cwd: string): Promise<void> {
  const result = await runCommand([OBJCOPY, ...args], { cwd, env: { PATH: "/usr/bin:/bin" }, timeoutMs: 120_000 });
  if (result.exitCode !== 0) throw new Error(`llvm-objcopy ${args.join(" ")} failed: ${result.stderr}`);
}

/**
 * Set-up (host, like the warm build): makes the profile's bootloader stage from its warm kernel,
 * unless the stage on disk was made from the same manifest, lock file and environment. Two links
 * of the bootloader (each ~1-2 s once the bootloader's crates are built; the first build compiles
 * core for the bootloader's target, about a minute here): with the warm kernel, and with a copy
 * that has one more (non-debug) section, so its size differs in every byte that can. The
 * bootloader's build script strips debug sections itself, so the sizes compared are those of the
 * kernels stripped the same way. Checks that the stage reproduces both linked images byte for
 * byte before it is kept.
 */
export async function prepareBootloaderStage(profile: KernelProfile): Promise<{ made: boolean; sizeSites: number; bootloaderBytes: number; ms: number }> {
  const started = performance.now();
  const file = stagePath(profile);
  const inputs = stageInputs(profile);
  try {
    const existing = JSON.parse(fs.readFileSync(file, "utf8")) as StageFile;
    if (existing.version === 1 && existing.inputs === inputs) {
      return { made: false, sizeSites: existing.sizeSites.length, bootloaderBytes: Buffer.from(existing.bootloader, "base64").length, ms: performance.now() - started };
    }
  } catch {
    // none yet, or unreadable: make it
  }
  const warm = path.join(profile.sourceDir, profile.imagePath);
  loadableKernel(fs.readFileSync(warm)); // a kernel this step can take at all
  const build = await bootloaderBuild(profile);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `bootloader-stage-${profile.name}-`));
  try {
    // The file name becomes part of the bootloader's link (libkernel_bin-NAME.a): keep the kernel's.
    const name = path.basename(profile.imagePath);
    const kernelA = path.join(scratch, "a", name);
    const kernelB = path.join(scratch, "b", name);
    fs.mkdirSync(path.dirname(kernelA));
    fs.mkdirSync(path.dirname(kernelB));
    fs.copyFileSync(warm, kernelA);
    const strippedSize = async (kernel: string) => {
      await objcopy(["--strip-debug", kernel, `${kernel}.stripped`], scratch);
      return fs.readFileSync(`${kernel}.stripped`);
    };
    const strippedA = await strippedSize(kernelA);
    let strippedB = strippedA;
    // The low byte of the size must differ, or a site's first changed byte would not be its first.
    for (let extra = PROBE_GROWTH; (strippedB.length - strippedA.length) % 256 === 0; extra++) {
      fs.writeFileSync(path.join(scratch, "probe"), Buffer.alloc(extra, 0x5a));
      await objcopy(["--add-section", `.osbe_size_probe=${path.join(scratch, "probe")}`, kernelA, kernelB], scratch);
      strippedB = await strippedSize(kernelB);
    }
    const imageA = await linkImage(profile, build, kernelA, path.dirname(kernelA));
    const imageB = await linkImage(profile, build, kernelB, path.dirname(kernelB));
    const stage: BootloaderStage = { bootloader: bootloaderPart(imageA, strippedA), sizeSites: [] };
    stage.sizeSites = findSizeSites(stage.bootloader, strippedA.length, bootloaderPart(imageB, strippedB), strippedB.length);
    if (!writeBootImage(stage, strippedA).equals(imageA) || !writeBootImage(stage, strippedB).equals(imageB)) {
      throw new Error("the bootloader stage does not reproduce the linked images");
    }
    const data: StageFile = { version: 1, inputs, bootloader: stage.bootloader.toString("base64"), sizeSites: stage.sizeSites };
    fs.writeFileSync(`${file}.new`, JSON.stringify(data));
    fs.renameSync(`${file}.new`, file);
    return { made: true, sizeSites: stage.sizeSites.length, bootloaderBytes: stage.bootloader.length, ms: performance.now() - started };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
