/**
 * Kernel profiles: everything the kernel lab needs to know to build a teaching kernel and boot it
 * in QEMU, as data. The project's own kernel (kernels/osbe) is one profile; an external checkout
 * such as eduOS-rs is another, configured by JSON (a path, a build command, an image path) and
 * handled by exactly the same code.
 *
 * A run never builds in the warm tree itself: see ./tree.ts for how a run gets its own copy.
 *
 * Node only: nothing here knows about HTTP, WebSockets or the browser.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Where the project's kernels live, resolved from this file (sandbox/kernels/ → kernels/). */
export const KERNELS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../kernels");

/** A source file a slide may replace, relative to the kernel's source folder. */
export interface ReplaceableFile {
  path: string;
  /** What the lesson in this file is about, for authors and error messages. */
  lesson: string;
}

/** Limits of one phase (build or boot). Same names and meaning as the engine's PhaseLimits. */
export interface KernelPhaseLimits {
  memoryMiB: number;
  cpuSeconds: number;
  wallSeconds: number;
  /** Processes and threads together (cgroup pids.max). */
  processes: number;
  outputBytes: number;
  fileSizeMiB: number;
  openFiles: number;
  /** RLIMIT_AS, if the driver sets one: rustc maps libcore's 57 MB metadata, QEMU its JIT buffer. */
  addressSpaceMiB: number;
}

export interface KernelProfile {
  /** What a runnable block names: `kernel: osbe`. */
  name: string;
  description: string;
  /** Absolute path of the kernel's source folder on the host; its warm build tree is inside. */
  sourceDir: string;
  /** The warm build tree (cargo's target dir), relative to sourceDir. */
  targetDir: string;
  /**
   * Where the sandbox mounts the run's copy of sourceDir. By default sourceDir itself: the warm
   * tree was built there, and rustc's incremental cache and cargo's caches are keyed by absolute
   * paths, so the same path keeps one-file rebuilds at their fastest (~0.2 s instead of ~0.35 s).
   * If the warm tree is built inside the sandbox instead, build it at this path too.
   */
  mountPath: string;
  /** argv of the build, run with sourceDir (the run's copy) as working directory. */
  buildCommand: string[];
  /** The build's complete environment (nothing is inherited from the server). */
  env: Record<string, string>;
  /**
   * Crates a run may rebuild. Their artifacts are always copied into a run's tree, never shared
   * with the warm tree; everything else big (core, alloc, dependencies) is shared read-only.
   */
  editableCrates: string[];
  /** The bootable multiboot ELF the build produces, relative to sourceDir. */
  imagePath: string;
  /** The files slides may replace, with the lesson each holds. Any other path is refused. */
  replaceableFiles: ReplaceableFile[];
  /** QEMU's binary and arguments; `{image}` stands for the kernel image's path. */
  qemu: { binary: string; args: string[] };
  /**
   * QEMU's exit status that means success. With isa-debug-exit, a value v written by the kernel
   * becomes status (v << 1) | 1.
   */
  successExitCode: number;
  /** Words for other exit statuses the kernel uses on purpose (e.g. its panic code). */
  exitMeanings: Record<number, string>;
  /** Diagnostics format of the build: cargo's JSON messages (rustc diagnostics inside). */
  diagnostics: "cargo-json" | "text";
  limits: { build: KernelPhaseLimits; boot: KernelPhaseLimits };
}

/** The environment the project's Rust kernels build with: Debian's toolchain in /usr, offline. */
export function debianRustEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    // /usr/bin first: Debian's rustc-web/cargo-web, not rustup's under /root (unreachable in the sandbox).
    PATH: "/usr/bin:/bin",
    // -Z build-std and the JSON target spec are unstable features; Debian's stable rustc allows them with this.
    RUSTC_BOOTSTRAP: "1",
    // Cargo wants a home for its caches; the kernel's .cargo/config.toml says everything else.
    CARGO_HOME: "/tmp/cargo-home",
    HOME: "/tmp",
    CARGO_TERM_COLOR: "never",
    // Incremental compilation is what makes a one-file rebuild fast.
    CARGO_INCREMENTAL: "1",
    ...extra,
  };
}

/** QEMU arguments for a multiboot kernel with the serial console on stdout. */
export function multibootQemuArgs(memoryMiB = 32): string[] {
  return [
    "-nodefaults", // no VGA, NIC, floppy...: less to set up, faster boot
    "-machine", "pc",
    // A small JIT buffer: QEMU would otherwise reserve 1 GiB, which fails under an address-space rlimit.
    "-accel", "tcg,tb-size=32",
    "-m", `${memoryMiB}M`,
    "-display", "none",
    "-monitor", "none",
    "-serial", "stdio",
    // A triple fault resets the CPU; exit instead of rebooting into the same fault forever.
    "-no-reboot",
    "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
    "-kernel", "{image}",
  ];
}

/**
 * Measured on these machines (kernels/osbe, one-file rebuild, bwrap as nobody, cgroup v1):
 * the build peaks at 13 pids and ~45 MiB charged memory with a warm page cache (rustc's shared
 * libraries, ~250 MiB, are charged to whoever reads them first), and fails below 768 MiB of
 * address space; QEMU peaks at 5 pids and ~26 MiB charged, ~50 MiB resident.
 */
export const DEFAULT_KERNEL_LIMITS: KernelProfile["limits"] = {
  build: {
    memoryMiB: 768,
    cpuSeconds: 30,
    wallSeconds: 30,
    processes: 64,
    outputBytes: 1024 * 1024,
    fileSizeMiB: 64,
    openFiles: 256,
    addressSpaceMiB: 1024,
  },
  boot: {
    memoryMiB: 256,
    cpuSeconds: 10,
    wallSeconds: 5,
    processes: 16,
    outputBytes: 256 * 1024,
    fileSizeMiB: 1,
    openFiles: 64,
    // With -accel tcg,tb-size=32 (multibootQemuArgs); QEMU's default 1 GiB JIT buffer needs more.
    addressSpaceMiB: 512,
  },
};

/** The project's own teaching kernel, kernels/osbe. */
export function osbeProfile(kernelsDir = KERNELS_DIR): KernelProfile {
  return {
    name: "osbe",
    description: "The OSByExample teaching kernel: multiboot, serial console, int 0x80, cooperative scheduler",
    sourceDir: path.join(kernelsDir, "osbe"),
    targetDir: "target",
    mountPath: path.join(kernelsDir, "osbe"), // the warm tree's own path: see mountPath
    buildCommand: ["/usr/bin/cargo", "build", "--offline", "--locked", "--message-format=json"],
    env: debianRustEnv(),
    editableCrates: ["osbe-kernel"],
    imagePath: "target/i686-osbe/debug/osbe-kernel",
    replaceableFiles: [
      { path: "src/hello.rs", lesson: "the boot message" },
      { path: "src/syscall.rs", lesson: "a system call through int 0x80" },
      { path: "src/scheduler.rs", lesson: "a cooperative round-robin scheduler" },
      { path: "src/tasks.rs", lesson: "the tasks the scheduler runs" },
    ],
    qemu: { binary: "/usr/bin/qemu-system-x86_64", args: multibootQemuArgs(32) },
    successExitCode: 33, // the kernel writes 0x10 to isa-debug-exit (src/qemu.rs)
    exitMeanings: { 35: "the kernel panicked" }, // 0x11
    diagnostics: "cargo-json",
    limits: DEFAULT_KERNEL_LIMITS,
  };
}

/**
 * What a lecturer writes to add an external kernel checkout (JSON). Only name, sourceDir,
 * buildCommand and imagePath are required; the rest defaults to the osbe profile's conventions.
 *
 * eduOS-rs, for example (a stage tag checked out in /srv/eduos, its crates vendored):
 *   { "name": "eduos", "sourceDir": "/srv/eduos",
 *     "buildCommand": ["cargo", "build", "--offline", "--target", "i686-eduos.json"],
 *     "imagePath": "target/i686-eduos/debug/eduos-rs",
 *     "editableCrates": ["eduos-rs"], "successExitCode": 5,
 *     "replaceableFiles": [{ "path": "src/lib.rs", "lesson": "..." }] }
 */
export interface ExternalKernelConfig {
  name: string;
  description?: string;
  sourceDir: string;
  buildCommand: string[];
  imagePath: string;
  targetDir?: string;
  mountPath?: string;
  env?: Record<string, string>;
  editableCrates?: string[];
  replaceableFiles?: ReplaceableFile[];
  qemu?: { binary?: string; args?: string[]; memoryMiB?: number };
  successExitCode?: number;
  exitMeanings?: Record<number, string>;
  diagnostics?: "cargo-json" | "text";
  limits?: { build?: Partial<KernelPhaseLimits>; boot?: Partial<KernelPhaseLimits> };
}

const NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** Checks and completes an external kernel's configuration; throws with a readable message. */
export function externalProfile(config: ExternalKernelConfig): KernelProfile {
  const where = `kernel profile ${JSON.stringify(config?.name)}`;
  const fail = (why: string): never => {
    throw new Error(`${where}: ${why}`);
  };
  if (typeof config !== "object" || config === null) fail("must be an object");
  if (typeof config.name !== "string" || !NAME.test(config.name)) fail(`name must match ${NAME}`);
  if (typeof config.sourceDir !== "string" || !path.isAbsolute(config.sourceDir)) fail("sourceDir must be an absolute path");
  if (!Array.isArray(config.buildCommand) || config.buildCommand.length === 0 || !config.buildCommand.every((a) => typeof a === "string"))
    fail("buildCommand must be a non-empty argv array of strings");
  const relative = (p: unknown, field: string): string => {
    if (typeof p !== "string" || p === "" || path.isAbsolute(p) || path.normalize(p).startsWith(".."))
      fail(`${field} must be a path inside sourceDir`);
    return path.normalize(p as string);
  };
  const imagePath = relative(config.imagePath, "imagePath");
  const targetDir = relative(config.targetDir ?? "target", "targetDir");
  const replaceableFiles = (config.replaceableFiles ?? []).map((f, i) => ({
    path: relative(f?.path, `replaceableFiles[${i}].path`),
    lesson: typeof f?.lesson === "string" ? f.lesson : "",
  }));
  const exitCode = config.successExitCode ?? 33;
  if (!Number.isInteger(exitCode) || exitCode < 0 || exitCode > 255) fail("successExitCode must be an exit status (0-255)");
  const mountPath = config.mountPath ?? path.normalize(config.sourceDir);
  if (!path.isAbsolute(mountPath)) fail("mountPath must be absolute");

  return {
    name: config.name,
    description: config.description ?? `external kernel ${config.name}`,
    sourceDir: path.normalize(config.sourceDir),
    targetDir,
    mountPath,
    buildCommand: [...config.buildCommand],
    env: debianRustEnv(config.env ?? {}),
    editableCrates: config.editableCrates ?? [],
    imagePath,
    replaceableFiles,
    qemu: {
      binary: config.qemu?.binary ?? "/usr/bin/qemu-system-x86_64",
      args: config.qemu?.args ?? multibootQemuArgs(config.qemu?.memoryMiB ?? 64),
    },
    successExitCode: exitCode,
    exitMeanings: config.exitMeanings ?? {},
    diagnostics: config.diagnostics ?? (config.buildCommand.some((a) => a.startsWith("--message-format=json")) ? "cargo-json" : "text"),
    limits: {
      build: { ...DEFAULT_KERNEL_LIMITS.build, ...config.limits?.build },
      boot: { ...DEFAULT_KERNEL_LIMITS.boot, ...config.limits?.boot },
    },
  };
}

/**
 * All kernel profiles: the project's own, plus external ones from configuration:
 *   OSBE_KERNELS        JSON array of ExternalKernelConfig, or
 *   OSBE_KERNELS_FILE   path of a JSON file holding that array.
 * An external profile may not reuse the name of one before it.
 */
export function loadKernelProfiles(env: Record<string, string | undefined> = process.env, kernelsDir = KERNELS_DIR): KernelProfile[] {
  const profiles = [osbeProfile(kernelsDir)];
  let text: string | undefined = env.OSBE_KERNELS;
  if (!text && env.OSBE_KERNELS_FILE) text = fs.readFileSync(env.OSBE_KERNELS_FILE, "utf8");
  if (!text) return profiles;
  let configs: unknown;
  try {
    configs = JSON.parse(text);
  } catch (error) {
    throw new Error(`kernel profiles: not valid JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(configs)) throw new Error("kernel profiles: expected a JSON array");
  for (const config of configs) {
    const profile = externalProfile(config as ExternalKernelConfig);
    if (profiles.some((p) => p.name === profile.name)) throw new Error(`kernel profiles: name ${profile.name} used twice`);
    profiles.push(profile);
  }
  return profiles;
}

export function findKernelProfile(name: string, profiles = loadKernelProfiles()): KernelProfile | undefined {
  return profiles.find((p) => p.name === name);
}

/** QEMU's argv for booting `imagePath` (absolute, as the QEMU process sees it). */
export function qemuArgv(profile: KernelProfile, imagePath: string): string[] {
  return [profile.qemu.binary, ...profile.qemu.args.map((a) => a.replaceAll("{image}", imagePath))];
}

/** Refuses a replaced file a profile does not list (and so any path trickery). */
export function checkReplaceable(profile: KernelProfile, file: string): ReplaceableFile {
  const found = profile.replaceableFiles.find((f) => f.path === path.normalize(file));
  if (!found) {
    const allowed = profile.replaceableFiles.map((f) => f.path).join(", ") || "none";
    throw new Error(`kernel ${profile.name}: ${JSON.stringify(file)} is not a replaceable file (allowed: ${allowed})`);
  }
  return found;
}

export type BootOutcome =
  | { kind: "success"; exitCode: number; message: string }
  | { kind: "failure"; exitCode: number; message: string }
  | { kind: "triple-fault"; exitCode: 0; message: string }
  | { kind: "timeout"; message: string }
  | { kind: "qemu-error"; exitCode: number | null; signal: string | null; message: string };

/**
 * Puts QEMU's ending into words. `timedOut` means the runner killed QEMU at the wall limit.
 * With -no-reboot, status 0 means the guest reset the machine; a teaching kernel does that only
 * through a triple fault (an exception while handling a double fault, e.g. a broken IDT).
 */
export function interpretQemuExit(
  profile: KernelProfile,
  exit: { exitCode: number | null; signal: string | null; timedOut: boolean },
): BootOutcome {
  const { exitCode, signal } = exit;
  if (exit.timedOut) {
    return { kind: "timeout", message: `the kernel was stopped at the wall limit of ${profile.limits.boot.wallSeconds} s (an endless loop, a hang or a reboot loop)` };
  }
  if (exitCode === profile.successExitCode) {
    return { kind: "success", exitCode, message: "the kernel finished successfully" };
  }
  if (exitCode === 0) {
    return { kind: "triple-fault", exitCode: 0, message: "triple fault: the CPU reset the machine (often a broken IDT, GDT or kernel stack)" };
  }
  if (exitCode !== null && exitCode % 2 === 1 && exitCode > 1) {
    const value = (exitCode - 1) >> 1;
    const meaning = profile.exitMeanings[exitCode] ?? "the kernel reported a failure";
    return { kind: "failure", exitCode, message: `${meaning} (isa-debug-exit value 0x${value.toString(16)}, QEMU status ${exitCode})` };
  }
  return {
    kind: "qemu-error",
    exitCode,
    signal,
    message: signal ? `QEMU was killed by ${signal}` : `QEMU failed to start the kernel (status ${exitCode})`,
  };
}
