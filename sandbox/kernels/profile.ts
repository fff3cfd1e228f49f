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
import { z } from "zod";

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
   * Crates a run may rebuild (those holding lesson files), for the people reading the profile. Run
   * trees no longer treat them apart: their big artifacts are shared like any other (a rebuild
   * writes new files), their incremental caches copied like any other (see ./tree.ts).
   */
  editableCrates: string[];
  /**
   * Folders of the target dir (relative to it) that a run's build only reads, e.g. `bootimage`
   * (bootimage's build of the bootloader) when the engine writes the image itself: the sandbox
   * mounts the warm tree's folder there read-only instead of the run tree copying its files.
   */
  sharedTargetDirs: string[];
  /** The bootable image the build produces, relative to sourceDir. */
  imagePath: string;
  /** What the image is, and so how QEMU boots it (see IMAGE_KINDS). */
  imageKind: ImageKind;
  /**
   * Host files or folders outside sourceDir the build needs (vendored crates, a linker, a
   * toolchain not in /usr), shown read-only to the build sandbox at the same absolute paths.
   */
  extraReadOnlyPaths: string[];
  /** The files slides may replace, with the lesson each holds. Any other path is refused. */
  replaceableFiles: ReplaceableFile[];
  /**
   * QEMU's binary and arguments; `{image}` stands for the kernel image's path. `extraReadOnlyPaths`:
   * host paths the boot sandbox also sees read-only at the same absolute paths (e.g. firmware).
   */
  qemu: { binary: string; args: string[]; extraReadOnlyPaths: string[] };
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

/**
 * How QEMU boots an image of each kind:
 *   elf-kernel  a multiboot ELF, loaded by QEMU itself: `-kernel {image}` (the project's kernel,
 *               the eduOS-rs stage tags)
 *   raw-disk    a bootable disk image (boot sector, bootloader and kernel), e.g. made by
 *               `bootimage`: `-drive format=raw,file={image}`, each boot from its own writable
 *               copy (QEMU refuses a read-only IDE disk; snapshot=on would need TMPDIR, which
 *               glibc ignores in the sandbox)
 *   iso         a bootable CD image (e.g. GRUB made by grub-mkrescue): `-cdrom {image}`
 *   bootloader-0.9  imagePath is the x86_64 kernel ELF the build makes; the engine itself writes
 *               the raw disk image `bootimage` would make (the `bootloader` 0.9 crate's stages
 *               and the kernel), from a stage set-up made once (./bootloader09.ts): no bootimage
 *               per run. Booted like raw-disk.
 */
export const IMAGE_KINDS = ["elf-kernel", "raw-disk", "iso", "bootloader-0.9"] as const;
export type ImageKind = (typeof IMAGE_KINDS)[number];

/** QEMU's arguments that load an image of this kind (`{image}` is replaced at boot). */
export function imageArgs(kind: ImageKind): string[] {
  switch (kind) {
    case "elf-kernel":
      return ["-kernel", "{image}"];
    case "raw-disk":
    case "bootloader-0.9":
      // The engine boots each run from its own writable copy (see KernelJob.ownDisk).
      return ["-drive", "format=raw,file={image}"];
    case "iso":
      return ["-cdrom", "{image}"];
  }
}

/** QEMU binaries a profile may name by their guest architecture alone. */
export const QEMU_SYSTEMS: Record<string, string> = {
  x86_64: "/usr/bin/qemu-system-x86_64",
  i386: "/usr/bin/qemu-system-i386",
};

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

/** What the engine's QEMU command line is built from (see qemuArgs). */
export interface QemuMachine {
  /** Guest memory. */
  memoryMiB: number;
  /** `-machine`: "pc" (i440FX, the default) or "q35", optionally with properties. */
  machine: string;
  /** `-cpu`, e.g. "qemu64,apic,fsgsbase,rdtscp,xsave,xsaveopt,fxsr"; undefined: QEMU's default. */
  cpu?: string;
  /** `-smp`; undefined: one CPU. */
  smp?: number;
  /** How the image is given to QEMU. */
  imageKind: ImageKind;
  /** More arguments after the engine's own: devices (`-device …`), another `-drive`… */
  extraArgs: string[];
}

/**
 * QEMU's arguments with the serial console on stdout, isa-debug-exit at 0xf4 and no reboot:
 * what the engine needs to stream a kernel's console and read its exit, plus the profile's
 * machine, CPU, memory, image and extra devices.
 */
export function qemuArgs(machine: QemuMachine): string[] {
  return [
    "-nodefaults", // no VGA, NIC, floppy...: less to set up, faster boot
    "-machine", machine.machine,
    ...(machine.cpu ? ["-cpu", machine.cpu] : []),
    ...(machine.smp ? ["-smp", String(machine.smp)] : []),
    // A small JIT buffer: QEMU would otherwise reserve 1 GiB, which fails under an address-space rlimit.
    "-accel", "tcg,tb-size=32",
    "-m", `${machine.memoryMiB}M`,
    "-display", "none",
    "-monitor", "none",
    "-serial", "stdio",
    // A triple fault resets the CPU; exit instead of rebooting into the same fault forever.
    "-no-reboot",
    "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ...imageArgs(machine.imageKind),
    ...machine.extraArgs,
  ];
}

/** QEMU arguments for a multiboot kernel with the serial console on stdout. */
export function multibootQemuArgs(memoryMiB = 32): string[] {
  return qemuArgs({ memoryMiB, machine: "pc", imageKind: "elf-kernel", extraArgs: [] });
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
    sharedTargetDirs: [],
    imagePath: "target/i686-osbe/debug/osbe-kernel",
    imageKind: "elf-kernel",
    extraReadOnlyPaths: [], // Debian's toolchain and the vendored std crates are all in /usr
    replaceableFiles: [
      { path: "src/hello.rs", lesson: "the boot message" },
      { path: "src/syscall.rs", lesson: "a system call through int 0x80" },
      { path: "src/scheduler.rs", lesson: "a cooperative round-robin scheduler" },
      { path: "src/tasks.rs", lesson: "the tasks the scheduler runs" },
    ],
    qemu: { binary: "/usr/bin/qemu-system-x86_64", args: multibootQemuArgs(32), extraReadOnlyPaths: [] },
    successExitCode: 33, // the kernel writes 0x10 to isa-debug-exit (src/qemu.rs)
    exitMeanings: { 35: "the kernel panicked" }, // 0x11
    diagnostics: "cargo-json",
    limits: DEFAULT_KERNEL_LIMITS,
  };
}

/**
 * What a lecturer writes to add an external kernel checkout (JSON). Only name, sourceDir,
 * buildCommand and imagePath are required; the rest defaults to the osbe profile's conventions.
 * Unknown fields are refused (a misspelt field would otherwise be ignored silently).
 *
 * eduOS-rs, for example (the stage3 tag checked out in /srv/eduos-rs, its crates vendored in
 * /srv/eduos-vendor, outside the checkout):
 *   { "name": "eduos", "sourceDir": "/srv/eduos-rs",
 *     "buildCommand": ["/usr/bin/cargo", "build", "--offline", "--target", "i686-eduos.json", "--message-format=json",
 *       "--config", "source.crates-io.replace-with=\"vendored\"", "--config", "source.vendored.directory=\"/srv/eduos-vendor\""],
 *     "env": { "CARGO_TARGET_I686_EDUOS_LINKER": "/usr/bin/ld",
 *              "CARGO_TARGET_I686_EDUOS_RUSTFLAGS": "-Zcrate-attr=feature(int_lowest_highest_one) -Clinker-flavor=ld -Clink-arg=-melf_i386" },
 *     "extraReadOnlyPaths": ["/srv/eduos-vendor"],
 *     "imagePath": "target/i686-eduos/debug/eduos-rs", "imageKind": "elf-kernel",
 *     "editableCrates": ["eduos-rs"], "successExitCode": 5,
 *     "replaceableFiles": [{ "path": "src/main.rs", "lesson": "the tasks" }] }
 * A raw disk image (bootimage) instead: "imageKind": "raw-disk", "imagePath": "target/…/bootimage-eduos-rs.bin",
 * and e.g. "qemu": { "cpu": "qemu64,apic,fsgsbase,rdtscp,xsave,xsaveopt,fxsr", "memoryMiB": 256 }.
 */
export interface ExternalKernelConfig {
  name: string;
  description?: string;
  sourceDir: string;
  buildCommand: string[];
  imagePath: string;
  /** Default "elf-kernel" (`-kernel`). */
  imageKind?: ImageKind;
  targetDir?: string;
  mountPath?: string;
  env?: Record<string, string>;
  /** Absolute host paths the build sees read-only at the same paths (see KernelProfile). */
  extraReadOnlyPaths?: string[];
  /** Folders of the target dir a run only reads (see KernelProfile). */
  sharedTargetDirs?: string[];
  editableCrates?: string[];
  replaceableFiles?: Array<{ path: string; lesson?: string }>;
  qemu?: {
    /** "x86_64" (default), "i386", or an absolute path to a qemu-system-* binary. */
    binary?: string;
    /** The whole argument list instead of the engine's (must contain `{image}`); rarely needed. */
    args?: string[];
    memoryMiB?: number;
    machine?: string;
    cpu?: string;
    smp?: number;
    /** Appended to the engine's arguments: devices, another drive… */
    extraArgs?: string[];
    /** Absolute host paths the boot sandbox sees read-only at the same paths. */
    extraReadOnlyPaths?: string[];
  };
  successExitCode?: number;
  exitMeanings?: Record<number, string>;
  diagnostics?: "cargo-json" | "text";
  limits?: { build?: Partial<KernelPhaseLimits>; boot?: Partial<KernelPhaseLimits> };
}

const NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** Folders the sandbox makes itself: an extra path may not hide them, nor lie inside them. */
const SANDBOX_OWN_PATHS = ["/proc", "/dev", "/work", "/tmp", "/out", "/program", "/sandbox-init", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/warm"];

/** QEMU options the engine sets itself (the serial console is the run's output; the exit device is read). */
const QEMU_ENGINE_OPTIONS: Record<string, string> = {
  "-serial": "the serial console is the run's output (stdio)",
  "-monitor": "the engine sets it (none)",
  "-display": "the engine sets it (none)",
  "-nographic": "the engine sets -display none and the serial console itself",
  "-daemonize": "QEMU must stay in the run's sandbox",
  "-qmp": "the engine talks to QEMU through nothing but the serial console",
  "-pidfile": "the engine watches QEMU itself",
  "-kernel": 'set "imageKind": "elf-kernel" instead',
  "-cdrom": 'set "imageKind": "iso" instead',
  "-machine": 'set "qemu.machine" instead',
  "-M": 'set "qemu.machine" instead',
  "-cpu": 'set "qemu.cpu" instead',
  "-smp": 'set "qemu.smp" instead',
  "-m": 'set "qemu.memoryMiB" instead',
  "-accel": "the engine sets it (tcg with a small JIT buffer, which fits the address-space limit)",
  "-enable-kvm": "the sandbox has no /dev/kvm",
};

const within = (inner: string, outer: string) => inner === outer || outer === "/" || inner.startsWith(`${outer}/`);

const absolutePath = z
  .string({ error: "must be an absolute path" })
  .refine((p) => path.isAbsolute(p), "must be an absolute path")
  .transform((p) => (p.length > 1 ? path.normalize(p).replace(/\/+$/, "") : p));

const insideSourceDir = z
  .string({ error: "must be a path inside sourceDir" })
  .refine((p) => p !== "" && !path.isAbsolute(p) && !path.normalize(p).startsWith("..") && path.normalize(p) !== ".", "must be a path inside sourceDir")
  .transform((p) => path.normalize(p));

const extraPath = absolutePath.superRefine((p, ctx) => {
  if (p === "/") ctx.addIssue({ code: "custom", message: "must not be / (the sandbox would see the whole host)" });
  const own = SANDBOX_OWN_PATHS.find((o) => within(p, o) || within(o, p));
  if (own && p !== "/") ctx.addIssue({ code: "custom", message: `${p} overlaps the sandbox's own ${own} (it is there already, or would be hidden)` });
});

const phaseLimits = z.strictObject({
  memoryMiB: z.number().int().positive().optional(),
  cpuSeconds: z.number().positive().optional(),
  wallSeconds: z.number().positive().optional(),
  processes: z.number().int().positive().optional(),
  outputBytes: z.number().int().positive().optional(),
  fileSizeMiB: z.number().int().positive().optional(),
  openFiles: z.number().int().positive().optional(),
  addressSpaceMiB: z.number().int().positive().optional(),
});

/** A QEMU option value: no spaces or shell-ish characters, so it reads as what it is. */
const qemuValue = z.string().regex(/^[A-Za-z0-9_.,=+-]+$/, "must be a QEMU option value (letters, digits and _ . , = + -)");

const ExternalKernelConfigSchema = z.strictObject({
  name: z.string({ error: `name must match ${NAME}` }).regex(NAME, `name must match ${NAME}`),
  description: z.string().optional(),
  sourceDir: absolutePath,
  buildCommand: z.array(z.string(), { error: "buildCommand must be a non-empty argv array of strings" }).min(1, "buildCommand must be a non-empty argv array of strings"),
  imagePath: insideSourceDir,
  imageKind: z.enum(IMAGE_KINDS, { error: `imageKind must be one of ${IMAGE_KINDS.join(", ")}` }).optional(),
  targetDir: insideSourceDir.optional(),
  mountPath: absolutePath.optional(),
  env: z.record(z.string(), z.string()).optional(),
  extraReadOnlyPaths: z.array(extraPath).optional(),
  editableCrates: z.array(z.string()).optional(),
  sharedTargetDirs: z.array(insideSourceDir).optional(),
  replaceableFiles: z.array(z.strictObject({ path: insideSourceDir, lesson: z.string().optional() })).optional(),
  qemu: z
    .strictObject({
      binary: z
        .string()
        .refine(
          (b) => Object.hasOwn(QEMU_SYSTEMS, b) || (path.isAbsolute(b) && /^qemu-system-[a-z0-9_]+$/.test(path.basename(b))),
          `must be ${Object.keys(QEMU_SYSTEMS).join(" or ")}, or an absolute path to a qemu-system-* binary`,
        )
        .optional(),
      args: z.array(z.string()).min(1).optional(),
      memoryMiB: z.number().int().min(1).max(4096).optional(),
      machine: qemuValue.optional(),
      cpu: qemuValue.optional(),
      smp: z.number().int().min(1).max(8).optional(),
      extraArgs: z.array(z.string()).optional(),
      extraReadOnlyPaths: z.array(extraPath).optional(),
    })
    .optional(),
  successExitCode: z.number().int().min(0, "successExitCode must be an exit status (0-255)").max(255, "successExitCode must be an exit status (0-255)").optional(),
  exitMeanings: z.record(z.string().regex(/^\d{1,3}$/, "exitMeanings' keys must be exit statuses"), z.string()).optional(),
  diagnostics: z.enum(["cargo-json", "text"]).optional(),
  limits: z.strictObject({ build: phaseLimits.optional(), boot: phaseLimits.optional() }).optional(),
});

/** The first problems of a profile that does not parse, as `field: problem` in words. */
function describeIssues(issues: z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 5)
    .map((issue) => {
      const where = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "");
      const message = issue.code === "unrecognized_keys" ? `unknown field(s) ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}` : issue.message;
      // The messages of required fields already name them.
      return where && !message.startsWith(`${where} `) ? `${where}: ${message}` : message;
    })
    .join("; ");
}

/** Checks and completes an external kernel's configuration; throws with a readable message. */
export function externalProfile(config: ExternalKernelConfig): KernelProfile {
  const where = `kernel profile ${JSON.stringify((config as { name?: unknown } | null)?.name)}`;
  const fail = (why: string): never => {
    throw new Error(`${where}: ${why}`);
  };
  if (typeof config !== "object" || config === null || Array.isArray(config)) fail("must be an object");
  const parsed = ExternalKernelConfigSchema.safeParse(config);
  if (!parsed.success) fail(describeIssues(parsed.error.issues));
  const c = parsed.data!;
  const mountPath = c.mountPath ?? c.sourceDir;

  // Extra paths next to, never over or under, the kernel's own folders: the run tree is mounted at
  // mountPath, and the warm tree must stay out of the sandbox's sight but for what runs share.
  const extraBuild = c.extraReadOnlyPaths ?? [];
  const extraBoot = c.qemu?.extraReadOnlyPaths ?? [];
  for (const [field, paths] of [["extraReadOnlyPaths", extraBuild], ["qemu.extraReadOnlyPaths", extraBoot]] as const) {
    paths.forEach((p, i) => {
      for (const [name, dir] of [["mountPath", mountPath], ["sourceDir", c.sourceDir]] as const) {
        if (within(p, dir) || within(dir, p)) {
          fail(`${field}[${i}]: ${p} overlaps ${name} ${dir} (vendored crates inside the checkout need no extra path; put other things beside it)`);
        }
      }
    });
  }

  const imageKind: ImageKind = c.imageKind ?? "elf-kernel";
  const binary = c.qemu?.binary === undefined ? QEMU_SYSTEMS.x86_64! : (Object.hasOwn(QEMU_SYSTEMS, c.qemu.binary) ? QEMU_SYSTEMS[c.qemu.binary]! : c.qemu.binary);
  let args: string[];
  if (c.qemu?.args) {
    const shaping = (["memoryMiB", "machine", "cpu", "smp", "extraArgs"] as const).filter((k) => c.qemu?.[k] !== undefined);
    if (shaping.length) fail(`qemu.args replaces the whole command line: give either it or qemu.${shaping.join(", qemu.")}`);
    if (!c.qemu.args.some((a) => a.includes("{image}"))) fail("qemu.args must contain {image} (where the kernel image goes)");
    if (c.imageKind) fail("qemu.args replaces the whole command line, which then says how the image is loaded: leave out imageKind");
    args = [...c.qemu.args];
  } else {
    const extraArgs = c.qemu?.extraArgs ?? [];
    extraArgs.forEach((arg, i) => {
      const option = arg.startsWith("--") ? arg.slice(1) : arg;
      const why = Object.hasOwn(QEMU_ENGINE_OPTIONS, option) ? QEMU_ENGINE_OPTIONS[option] : undefined;
      if (why) fail(`qemu.extraArgs[${i}]: ${arg} is not allowed: ${why}`);
    });
    args = qemuArgs({
      memoryMiB: c.qemu?.memoryMiB ?? 64,
      machine: c.qemu?.machine ?? "pc",
      cpu: c.qemu?.cpu,
      smp: c.qemu?.smp,
      imageKind,
      extraArgs,
    });
  }

  return {
    name: c.name,
    description: c.description ?? `external kernel ${c.name}`,
    sourceDir: c.sourceDir,
    targetDir: c.targetDir ?? "target",
    mountPath,
    buildCommand: [...c.buildCommand],
    env: debianRustEnv(c.env ?? {}),
    editableCrates: c.editableCrates ?? [],
    sharedTargetDirs: c.sharedTargetDirs ?? [],
    imagePath: c.imagePath,
    imageKind,
    extraReadOnlyPaths: extraBuild,
    replaceableFiles: (c.replaceableFiles ?? []).map((f) => ({ path: f.path, lesson: f.lesson ?? "" })),
    qemu: { binary, args, extraReadOnlyPaths: extraBoot },
    successExitCode: c.successExitCode ?? 33,
    exitMeanings: Object.fromEntries(Object.entries(c.exitMeanings ?? {}).map(([k, v]) => [Number(k), v])),
    diagnostics: c.diagnostics ?? (c.buildCommand.some((a) => a.startsWith("--message-format=json")) ? "cargo-json" : "text"),
    limits: {
      build: { ...DEFAULT_KERNEL_LIMITS.build, ...c.limits?.build },
      boot: { ...bootLimitsFor(c.qemu?.memoryMiB ?? 64), ...c.limits?.boot },
    },
  };
}

/**
 * Boot limits that fit the guest's memory: QEMU maps the guest's RAM and its JIT buffer in its own
 * address space, and whatever RAM the guest touches is charged to the sandbox's cgroup. The
 * defaults fit up to 64 MiB of guest RAM; a bigger guest (e.g. `"memoryMiB": 256`) gets room
 * beyond it, so QEMU does not die at start ("failed to allocate memory for stack").
 */
export function bootLimitsFor(guestMiB: number): KernelPhaseLimits {
  const base = DEFAULT_KERNEL_LIMITS.boot;
  return {
    ...base,
    addressSpaceMiB: Math.max(base.addressSpaceMiB, guestMiB + 448),
    memoryMiB: Math.max(base.memoryMiB, guestMiB + 192),
  };
}

/**
 * Why the sandbox user could not see a profile's extra path, if it could not: missing, or a
 * folder on the way not searchable (or the path itself not readable) by others. The sandbox runs
 * as an unprivileged uid, so a path under /root (mode 0700) is not visible in it.
 */
export function extraPathProblem(p: string): string | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(p);
  } catch {
    return `${p} does not exist`;
  }
  const parts = p.split("/").filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const dir = `/${parts.slice(0, i).join("/")}`;
    const mode = fs.statSync(dir).mode;
    if ((mode & 0o001) === 0) return `${p} is not visible to the sandbox user: ${dir} has mode ${(mode & 0o777).toString(8)} (others may not enter it)`;
  }
  if ((stat.mode & 0o004) === 0 || (stat.isDirectory() && (stat.mode & 0o001) === 0)) {
    return `${p} is not readable by the sandbox user (mode ${(stat.mode & 0o777).toString(8)})`;
  }
  return undefined;
}

/** The first extra read-only path of a profile the sandbox user could not see, with its field. */
export function extraPathsProblem(profile: { extraReadOnlyPaths: string[]; qemu: { extraReadOnlyPaths: string[] } }): string | undefined {
  for (const [field, paths] of [["extraReadOnlyPaths", profile.extraReadOnlyPaths], ["qemu.extraReadOnlyPaths", profile.qemu.extraReadOnlyPaths]] as const) {
    for (const p of paths) {
      const problem = extraPathProblem(p);
      if (problem) return `${field}: ${problem}`;
    }
  }
  return undefined;
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
  // Inside an option list (`-drive format=raw,file={image}`) a comma is written twice.
  return [profile.qemu.binary, ...profile.qemu.args.map((a) => (a === "{image}" ? imagePath : a.replaceAll("{image}", imagePath.replaceAll(",", ",,"))))];
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
  // Status 1 is also QEMU's own failure; it is the kernel's only where the profile says so (eduOS-rs
  // writes 0 to isa-debug-exit when it panics or fails: status 1).
  if (exitCode !== null && ((exitCode % 2 === 1 && exitCode > 1) || (exitCode === 1 && profile.exitMeanings[1] !== undefined))) {
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
