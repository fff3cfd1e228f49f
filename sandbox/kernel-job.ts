/**
 * One kernel-lab run, top to bottom (the kernel's counterpart of job.ts):
 *   check    the kernel profile exists and every replaced file is one of its lesson files
 *   admit    wait for a sandbox slot (the same scheduler as programs), or answer "busy"
 *   cache    the compile cache may hold this kernel image already (same profile, same warm tree,
 *            same files: a lecture hall running the same slide builds it once); then boot it
 *   tree     on a miss, the run's own build tree from the warm one (kernels/tree.ts): source copied, the
 *            slide's files written over it, big artifacts hard-linked; owned by the slot's uid
 *            only where the run may write
 *   build    the profile's build command (cargo) in a sandbox, the tree bound read-write at the
 *            profile's mountPath (rustc's incremental cache is keyed by absolute paths), no
 *            network, the profile's build limits (compiling, diagnostics, compiled); the image
 *            goes into the compile cache
 *   boot     QEMU in a fresh sandbox, the cached image bound read-only where the build made it,
 *            the boot limits (running, the serial console as stdout, stats, exit in words)
 *   cleanup  always: the slot, the cache entry, the run tree; each sandbox removes its own
 *            processes, cgroups and workspace
 * Every run ends with exactly one `exit` or `error` event, after which `done` settles.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type { KernelRunRequest, LimitOverrides, Toolchain as ToolchainInfo } from "../lib/protocol";
import { KERNEL_SUCCESS_MESSAGE } from "../lib/protocol";
import type { EventSink } from "./api";
import { requestBytes, type JobOptions } from "./job";
import type { CompileCache, CachedCompile } from "./cache";
import type { SandboxDriver, SandboxResult } from "./drivers/driver";
import { limitMessage } from "./job";
import type { ServiceTimes } from "./service-times";
import { checkReplaceable, extraPathProblem, extraPathsProblem, interpretQemuExit, qemuArgv, type KernelPhaseLimits, type KernelProfile } from "./kernels/profile";
import { imageFromKernel, loadStage, stagePath } from "./kernels/bootloader09";
import { mountedDirBinds, prepareRunTree, removeRunTree, type RunTree } from "./kernels/tree";
import { formatSeconds, type PhaseLimits } from "./limits";
import { RunLifecycle, Stopped } from "./run-lifecycle";
import type { Scheduler } from "./scheduler";
import { parseKernelBuildOutput } from "./toolchains/kernel";

/** A kernel profile as the engine holds it. */
export interface KernelState {
  profile: KernelProfile;
}

/**
 * Why a kernel profile cannot run now, if it cannot: its warm tree or image is missing, or an
 * extra read-only path the sandbox should see is not there for the sandbox user. Checked at each
 * run and by health(), so a warm tree built after the engine started is used at once.
 */
export function warmTreeProblem(profile: KernelProfile): string | undefined {
  const target = path.join(profile.sourceDir, profile.targetDir);
  if (!fs.existsSync(target) || !fs.existsSync(path.join(profile.sourceDir, profile.imagePath))) {
    return `kernel ${profile.name} has no warm build tree at ${target} (run scripts/build-kernels.ts)`;
  }
  // The build sandbox mounts the warm tree's unchanged folders: the sandbox user must reach them.
  const source = extraPathProblem(profile.sourceDir);
  if (source) return `kernel ${profile.name}: its source folder ${source}`;
  if (profile.imageKind === "bootloader-0.9") {
    try {
      loadStage(profile);
    } catch (error) {
      return (error as Error).message;
    }
  }
  const problem = extraPathsProblem(profile);
  return problem ? `kernel ${profile.name}: ${problem}` : undefined;
}

export interface KernelJobContext {
  driver: SandboxDriver;
  scheduler: Scheduler;
  cache: CompileCache;
  ready: Promise<void>;
  kernels: KernelState[];
  /** The build tool's name and version, reported in `compiling`. */
  toolchain: ToolchainInfo;
  /** Where run trees are made: on the warm trees' file system (hard links), traversable by sandbox uids. */
  treeRoot: string;
  /** The most a request's limit overrides may ask for (the engine's maxima). */
  maxima: Required<LimitOverrides>;
  /** cpu.shares of kernel sandboxes (as for programs). */
  cpuShares: number;
  statsIntervalMs: number;
  times: ServiceTimes;
  /** The container image kernel builds and boots run in (container drivers); undefined: the driver's default. */
  environment?: string;
  /** Why the kernel profiles could not be loaded, if they could not. */
  problem?: string;
}

class Invalid extends Error {}

/** Workspace (tmpfs: /work, /tmp with cargo's home) of each phase; the build tree itself is on disk. */
const BUILD_WORKSPACE_MiB = 64;
const BOOT_WORKSPACE_MiB = 16;

export class KernelJob extends RunLifecycle {
  readonly done: Promise<void>;

  constructor(
    private readonly ctx: KernelJobContext,
    private readonly request: KernelRunRequest,
    sink: EventSink,
    /** Unique per run: names its sandboxes' cgroups and temp dirs, and its run tree. */
    private readonly name: string,
    private readonly options: JobOptions = {},
  ) {
    super(sink, ctx.scheduler);
    this.done = this.settled(this.lifecycle());
  }

  /** What prewarming learns: whether the build was done now, found, or failed. */
  prewarmOutcome: "compiled" | "cached" | "failed" = "failed";

  /** The kernel's serial console takes no input from the slide. */
  writeStdin(): void {}
  closeStdin(): void {}

  private async lifecycle(): Promise<void> {
    const treeDir = path.join(this.ctx.treeRoot, `${this.name}-k`);
    try {
      await this.ctx.ready;
      const profile = this.check();
      const key = cacheKey(profile, this.request);
      const slot = await this.admit({
        client: this.options.client,
        session: this.options.session,
        identity: createHash("sha256").update(JSON.stringify([key, this.request.limits ?? null])).digest("hex"),
        compileKey: key,
        compileMs: this.ctx.times.estimate("compile:kernel"),
        runMs: this.options.compileOnly ? 0 : this.ctx.times.estimate("boot:kernel"),
        bytes: requestBytes(this.request),
        background: this.options.background,
      });
      this.emit({ type: "compiling", toolchain: this.ctx.toolchain });
      const cached = await this.ctx.cache.acquire(key);
      if (cached) {
        this.prewarmOutcome = "cached";
        this.reportBuild(cached, { ok: true, exitCode: 0, timeMs: 0, cpuMs: 0, cached: true, limit: null });
      } else {
        try {
          const tree = await this.makeTree(profile, slot, treeDir);
          if (!(await this.build(profile, slot, tree, key))) return;
        } finally {
          // The boot needs only the image, now in the cache (a failure here is retried at the end).
          await removeRunTree(treeDir).catch(() => undefined);
        }
      }
      try {
        if (this.options.compileOnly) return;
        await this.boot(profile, slot, this.ctx.cache.binaryPath(key), treeDir);
      } finally {
        this.ctx.cache.release(key);
      }
    } catch (error) {
      if (error instanceof Invalid) this.emit({ type: "error", code: "invalid", message: error.message });
      else this.endWithError(error, "stopped before the kernel booted");
    } finally {
      // Everything the run wrote lives in its tree; the sandboxes have already removed the rest.
      await removeRunTree(treeDir).catch(() => undefined);
      this.release();
    }
  }

  /** The profile, if the request names one and replaces only its lesson files. */
  private check(): KernelProfile {
    const { kernel, files } = this.request;
    const state = this.ctx.kernels.find((k) => k.profile.name === kernel);
    if (!state) {
      const known = this.ctx.kernels.map((k) => k.profile.name).join(", ") || "none";
      if (this.ctx.problem) throw new Error(`no kernel profiles: ${this.ctx.problem}`);
      throw new Invalid(`unknown kernel ${JSON.stringify(kernel)} (available: ${known})`);
    }
    for (const file of files) {
      try {
        checkReplaceable(state.profile, file.name);
      } catch (error) {
        throw new Invalid((error as Error).message);
      }
    }
    const problem = warmTreeProblem(state.profile);
    if (problem) throw new Error(problem);
    return state.profile;
  }

  private async makeTree(profile: KernelProfile, slot: number, treeDir: string): Promise<RunTree> {
    // Root-owned and only traversable: the sandbox user owns the tree inside, never its parent,
    // so it cannot swap the folder the engine later binds and removes.
    await fsp.mkdir(treeDir, { mode: 0o711 });
    await fsp.chmod(treeDir, 0o711);
    const tree = await prepareRunTree({
      profile,
      runDir: path.join(treeDir, profile.name),
      files: Object.fromEntries(this.request.files.map((f) => [f.name, f.content])),
      owner: this.ctx.driver.sandboxUser?.(slot),
      // Used only if the trees are on another file system than the warm tree (no hard links).
      warmTargetSeenAt: warmTargetInSandbox(profile),
      // Folders without lesson files (vendored crates, .cargo, most modules) are mounted, not copied.
      unchangedDirs: "mount",
    });
    if (this.killed) throw new Stopped();
    return tree;
  }

  private reportBuild(
    output: CachedCompile,
    outcome: { ok: boolean; exitCode: number | null; timeMs: number; cpuMs: number; cached: boolean; limit: SandboxResult["limit"] },
  ): void {
    if (output.items.length > 0 || output.rendered) this.emit({ type: "diagnostics", items: output.items, rendered: output.rendered });
    this.emit({ type: "compiled", ...outcome, stdout: output.stdout, stderr: output.stderr });
  }

  /** Builds in the sandbox; true when the image is in the cache under `key` (acquired) to boot. */
  private async build(profile: KernelProfile, slot: number, tree: RunTree, key: string): Promise<boolean> {
    const limits = this.phaseLimits(profile.limits.build, BUILD_WORKSPACE_MiB);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const [program, ...args] = profile.buildCommand;
    this.sandbox = this.startSandbox(this.ctx.driver, {
      name: `${this.name}-b`,
      slot,
      program: program!,
      argv0: path.basename(program!),
      args,
      files: [],
      readWriteBinds: [{ host: tree.sourceDir, sandbox: profile.mountPath }],
      readOnlyBinds: [
        // What the profile names outside its checkout (vendored crates, a linker), at the same paths.
        ...profile.extraReadOnlyPaths.map((p) => ({ host: p, sandbox: p })),
        // The run tree's unchanged folders, from the warm tree (the driver mounts them over the tree).
        ...mountedDirBinds(profile, tree),
        // Another file system than the warm tree's: the tree's big artifacts are symbolic links into
        // the warm target, which the run tree hides at its own path; show it read-only elsewhere.
        ...(sameFileSystem(tree.sourceDir, profile) ? [] : [{ host: path.join(profile.sourceDir, profile.targetDir), sandbox: warmTargetInSandbox(profile) }]),
      ],
      workdir: profile.mountPath,
      environment: this.ctx.environment,
      env: { TMPDIR: "/tmp", LANG: "C.UTF-8", ...profile.env },
      limits,
      closeStdinAfterInput: true,
      onStdout: (b) => stdout.push(b),
      onStderr: (b) => stderr.push(b),
    });
    let result: SandboxResult;
    try {
      result = await this.sandbox.result;
    } finally {
      this.sandbox = null;
    }
    if (result.failure) throw new Error(result.failure);
    if (result.killed) throw new Stopped();
    this.ctx.times.record("compile:kernel", result.wallMs);
    const out = Buffer.concat(stdout).toString("utf8");
    const err = Buffer.concat(stderr).toString("utf8");
    const parsed =
      profile.diagnostics === "cargo-json"
        ? parseKernelBuildOutput(out, err, profile.mountPath)
        : { items: [], rendered: "", stdout: out, stderr: err };
    const timeMs = Math.round(result.wallMs);
    let imageProblem = "";
    const incoming = this.ctx.cache.incomingPath(key, this.name);
    if (result.exitCode === 0 && !result.limit) {
      // bootloader-0.9: the build made the kernel ELF; the image around it is written here (microseconds).
      const imageStep = profile.imageKind === "bootloader-0.9" ? (elf: Buffer) => imageFromKernel(profile, elf, limits.fileSizeMiB * 1024 * 1024) : undefined;
      try {
        if (!(await retrieveImage(tree, incoming, limits.fileSizeMiB * 1024 * 1024, imageStep))) {
          imageProblem = `the build produced no kernel image at ${profile.imagePath}`;
        }
      } catch (error) {
        imageProblem = (error as Error).message;
      }
    }
    const ok = result.exitCode === 0 && !result.limit && !imageProblem;
    this.reportBuild({ ...parsed, timeMs }, { ok, exitCode: result.exitCode, timeMs, cpuMs: Math.round(result.cpuMs), cached: false, limit: result.limit });
    if (ok) {
      if (!(await this.ctx.cache.put(key, incoming, { ...parsed, timeMs })) || !(await this.ctx.cache.acquire(key))) {
        throw new Error("the kernel image could not be stored");
      }
      this.prewarmOutcome = "compiled";
      return true;
    }
    await this.ctx.cache.discard(incoming);
    const errors = parsed.items.filter((d) => d.severity === "error").length;
    let message: string;
    if (result.limit) message = `compilation failed: ${limitMessage(result.limit, limits).replace(/^(killed|stopped): /, "compiler $1: ")}`;
    else if (imageProblem) message = `compilation failed: ${imageProblem}`;
    else if (errors > 0) message = `compilation failed: ${errors} error${errors === 1 ? "" : "s"}`;
    else if (result.signal) message = `compilation failed: the build was killed by ${result.signal}`;
    else message = `compilation failed (build exited with code ${result.exitCode})`;
    // A run recompiles only the lesson files' crate. If cargo had to build the standard library,
    // the warm tree was made for another build (the profile's flags or toolchain changed since).
    if (/could not compile `(core|alloc|compiler_builtins)`|Compiling (core|alloc|compiler_builtins) v/.test(err)) {
      message += ` — the run had to rebuild the standard library: kernel ${profile.name}'s warm tree does not match its profile (run scripts/build-kernels.ts)`;
    }
    this.emitExit("compile", result, message);
    return false;
  }

  /** Boots the image (on the host at `image`) in QEMU in a fresh sandbox and streams the serial console. */
  private async boot(profile: KernelProfile, slot: number, image: string, runDir: string): Promise<void> {
    if (this.killed) throw new Stopped();
    const limits = this.phaseLimits(profile.limits.boot, BOOT_WORKSPACE_MiB, this.request.limits);
    // Where the build made it: QEMU's messages name the same path a student would see in a build.
    const imageInSandbox = path.join(profile.mountPath, profile.imagePath);
    const disk = isDiskImage(profile) ? await this.ownDisk(image, slot, runDir) : undefined;
    const [program, ...args] = qemuArgv(profile, imageInSandbox);
    const stdout = new Coalescer((data) => this.emit({ type: "stdout", data }));
    const stderr = new Coalescer((data) => this.emit({ type: "stderr", data }));
    const sandbox = this.startSandbox(this.ctx.driver, {
      name: `${this.name}-q`,
      slot,
      program: program!,
      argv0: path.basename(program!),
      args,
      files: [],
      // Only the image, read-only (the cache's copy: no run shares anything writable), and what
      // the profile asks QEMU to see besides (firmware, a second disk), at the same paths.
      readOnlyBinds: [...(disk ? [] : [{ host: image, sandbox: imageInSandbox }]), ...profile.qemu.extraReadOnlyPaths.map((p) => ({ host: p, sandbox: p }))],
      readWriteBinds: disk ? [{ host: disk, sandbox: imageInSandbox }] : [],
      environment: this.ctx.environment,
      env: { PATH: "/usr/bin:/bin", HOME: "/tmp", TMPDIR: "/tmp", LANG: "C.UTF-8" },
      limits,
      // QEMU's serial port reads stdin; the slide sends nothing, and an open pipe is all it needs.
      closeStdinAfterInput: false,
      onStdout: (chunk) => stdout.push(chunk),
      onStderr: (chunk) => stderr.push(chunk),
    });
    this.emit({ type: "running" });
    const result = await this.watch(sandbox, this.ctx.statsIntervalMs);
    this.ctx.times.record("boot:kernel", result.wallMs);
    stdout.end();
    stderr.end();
    if (result.failure) throw new Error(result.failure);
    this.emit({ type: "stats", cpuMs: Math.round(result.cpuMs), memoryBytes: result.peakMemoryBytes });
    this.emitExit("run", result, bootMessage(profile, result, limits));
  }

  /**
   * The run's own copy of a disk image, writable by the sandbox user: QEMU opens a disk for
   * writing (and refuses a read-only IDE disk), and its snapshot=on overlay would need TMPDIR,
   * which glibc ignores in the sandbox (QEMU then tries /var/tmp). A copy of a ~1 MB image takes
   * about a millisecond; the guest's writes stay in the run and go with its folder.
   */
  private async ownDisk(image: string, slot: number, runDir: string): Promise<string> {
    await fsp.mkdir(runDir, { mode: 0o711, recursive: true });
    const disk = path.join(runDir, "disk.img");
    await fsp.copyFile(image, disk);
    await fsp.chmod(disk, 0o600);
    const owner = this.ctx.driver.sandboxUser?.(slot);
    if (owner) await fsp.chown(disk, owner.uid, owner.gid);
    return disk;
  }

  /** A profile's phase limits as the driver takes them, with the request's overrides (clamped). */
  private phaseLimits(base: KernelPhaseLimits, workspaceMiB: number, overrides?: LimitOverrides): PhaseLimits {
    const limits: PhaseLimits = { ...base, workspaceMiB, cpuShares: this.ctx.cpuShares };
    for (const key of ["memoryMiB", "cpuSeconds", "wallSeconds", "processes", "outputBytes"] as const) {
      const asked = overrides?.[key];
      if (asked !== undefined) limits[key] = Math.min(asked, this.ctx.maxima[key]);
    }
    limits.workspaceMiB = Math.min(limits.workspaceMiB, limits.memoryMiB);
    return limits;
  }
}

/** How the boot ended, in words a student reads under the serial console. */
export function bootMessage(profile: KernelProfile, result: SandboxResult, limits: PhaseLimits): string {
  if (result.killed) return "stopped: killed on request";
  if (result.limit === "wall") {
    return `stopped: wall-clock limit of ${formatSeconds(limits.wallSeconds)} exceeded — the kernel hung or looped`;
  }
  if (result.limit) return limitMessage(result.limit, limits);
  const outcome = interpretQemuExit(profile, { exitCode: result.exitCode, signal: result.signal, timedOut: false });
  switch (outcome.kind) {
    case "success":
      return KERNEL_SUCCESS_MESSAGE;
    case "triple-fault":
      return "triple fault: the CPU reset (QEMU -no-reboot)";
    case "failure": {
      const meaning = profile.exitMeanings[outcome.exitCode];
      if (meaning && /panic/i.test(meaning)) return `kernel panicked (status ${outcome.exitCode})`;
      return `kernel reported failure (status ${outcome.exitCode})${meaning ? `: ${meaning}` : ""}`;
    }
    case "timeout":
      return `stopped: wall-clock limit of ${formatSeconds(limits.wallSeconds)} exceeded — the kernel hung or looped`;
    case "qemu-error":
      return outcome.message;
  }
}

/** Images QEMU boots as a disk (it opens them for writing). */
function isDiskImage(profile: KernelProfile): boolean {
  return profile.imageKind === "raw-disk" || profile.imageKind === "bootloader-0.9";
}

/** Where a build sees the warm target when its run tree links to it symbolically. */
function warmTargetInSandbox(profile: KernelProfile): string {
  return `/warm/${profile.name}/target`;
}

function sameFileSystem(dir: string, profile: KernelProfile): boolean {
  return fs.statSync(dir).dev === fs.statSync(path.join(profile.sourceDir, profile.targetDir)).dev;
}

/**
 * The cache key of a kernel build: the profile's build (name, command, environment, image, extra
 * paths), the warm tree it starts from (every source file's identity: size, mtime and inode, as
 * cargo itself judges freshness, and the warm image's, so a rebuilt warm tree or an edited kernel
 * never hits an old entry) and the replaced files. Identities, not contents: a checkout with
 * 44 MB of vendored crates must not be read at every run.
 */
export function cacheKey(profile: KernelProfile, request: KernelRunRequest): string {
  const hash = createHash("sha256");
  hash.update(
    JSON.stringify({ kind: "kernel", name: profile.name, build: profile.buildCommand, env: profile.env, image: profile.imagePath, extra: profile.extraReadOnlyPaths }),
  );
  const skip = new Set([path.normalize(profile.targetDir), ".git"]);
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(profile.sourceDir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const relPath = path.join(rel, entry.name);
      if (skip.has(relPath)) continue;
      if (entry.isDirectory()) walk(relPath);
      else if (entry.isFile()) {
        const stat = fs.statSync(path.join(profile.sourceDir, relPath), { bigint: true });
        hash.update(`\0${relPath}\0${stat.size}:${stat.mtimeNs}:${stat.ino}`);
      }
    }
  };
  walk("");
  const warm = fs.statSync(path.join(profile.sourceDir, profile.imagePath));
  hash.update(`\0warm\0${warm.ino}:${warm.size}:${warm.mtimeMs}`);
  if (profile.imageKind === "bootloader-0.9") {
    // The bootloader the image is written with (remade when the kernel's manifest changes).
    const stage = fs.statSync(stagePath(profile));
    hash.update(`\0stage\0${stage.ino}:${stage.size}:${stage.mtimeMs}`);
  }
  const files = [...request.files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  hash.update(JSON.stringify(files.map((f) => [path.normalize(f.name), f.content])));
  return hash.digest("hex");
}

class ImageStepError extends Error {}

/**
 * Copies the image the build left in the run tree to `destination`. The sandbox user owned the
 * tree's folders, so accept only a regular file whose real path is inside the tree (its processes
 * are all gone by now: nothing can swap a folder after the check).
 */
async function retrieveImage(tree: RunTree, destination: string, maxBytes: number, imageStep?: (built: Buffer) => Buffer): Promise<boolean> {
  let handle: fsp.FileHandle | undefined;
  try {
    const root = await fsp.realpath(tree.sourceDir);
    const real = await fsp.realpath(tree.imagePath);
    if (!real.startsWith(root + path.sep)) return false;
    handle = await fsp.open(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    const stat = await handle.stat();
    if (!stat.isFile() || stat.size > maxBytes) return false;
    const built = await handle.readFile();
    // The image step's words (e.g. "not an x86_64 ELF …") are the student's to read.
    let image: Buffer;
    try {
      image = imageStep ? imageStep(built) : built;
    } catch (error) {
      throw new ImageStepError((error as Error).message);
    }
    await fsp.writeFile(destination, image, { mode: 0o555 });
    return true;
  } catch (error) {
    if (error instanceof ImageStepError) throw error;
    return false;
  } finally {
    await handle?.close();
  }
}

/** How long serial output may wait to be sent with what follows it. */
const COALESCE_MS = 10;

/**
 * QEMU writes the serial port byte by byte: one event per byte would flood the socket. This sends
 * what arrived within COALESCE_MS (or 16 KiB) as one chunk, still as it comes. UTF-8 is decoded
 * across chunks; bytes of a character cut off at the end become U+FFFD.
 */
class Coalescer {
  private readonly decoder = new TextDecoder("utf-8");
  private pending = "";
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly send: (data: string) => void) {}

  push(chunk: Buffer): void {
    this.pending += this.decoder.decode(chunk, { stream: true });
    if (this.pending.length >= 16 * 1024) this.flush();
    else if (this.pending && !this.timer) this.timer = setTimeout(() => this.flush(), COALESCE_MS);
  }

  end(): void {
    this.pending += this.decoder.decode();
    this.flush();
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const data = this.pending;
    this.pending = "";
    if (data) this.send(data);
  }
}
