/**
 * The bubblewrap driver: each sandbox is one bwrap started as an unprivileged user, in its own
 * cgroups, with rlimits, a seccomp filter and a fresh tmpfs workspace.
 *
 * How a sandbox starts (one process that execs itself three times, so nothing runs outside the
 * cgroups even for a moment):
 *   /bin/sh -c 'echo $$ > <each cgroup.procs>; exec "$@"'   as root, with an EMPTY environment:
 *     joins the sandbox's cgroups before anything else runs, so every later process is counted
 *   /usr/bin/setpriv --reuid=U --regid=U --clear-groups ...  drops root: bwrap started by root with
 *     --unshare-user would map the sandbox user to host root
 *   /usr/bin/bwrap ...                                       namespaces, mounts, seccomp
 *   /sandbox-init                                            PID 1: says "ready", reads its command
 *     (rlimits, directory, program, argv, environment), sets the rlimits in a child, runs the
 *     program there and reports how it ended
 *
 * Lifecycle of one sandbox, like Piston's job, in two steps so the first can happen ahead of use
 * (prepareSandbox; the pool in ../pool.ts keeps one waiting per slot and shape):
 *   prepare  workspace tmpfs, cgroups, bwrap started, sandbox-init waiting      (off the run's path)
 *   start    the files written into the workspace, the program linked in, the cgroup limits set
 *            and its counters zeroed, the command sent → execute (stream, enforce the wall and CPU
 *            limits, wait for the program, kill whatever it left) → `result`
 *   remove   remove the cgroups, unmount and delete the workspace → `removed`   (after the answer)
 * Removal runs whatever happened before it; a prepared sandbox never started is removed the same way.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { LimitName } from "../../lib/protocol";
import { CgroupSet, listCgroups } from "../cgroup";
import { buildInitHelper, COMMAND_FD, encodeCommand, parseStatus, STATUS_FD, type ProgramStatus } from "../init-helper";
import { buildMountHelper, fileSystemCgroups, HelperMounter, processMounter, type CgroupFiles, type Mounter } from "../mount-helper";
import { seccompFilterBytes } from "../seccomp";
import { Workspace } from "../workspace";
import {
  shapeKey,
  shapeOf,
  type PreparedSandbox,
  type SandboxDriver,
  type SandboxProcess,
  type SandboxResult,
  type SandboxShape,
  type SandboxSpec,
  type SandboxUsage,
} from "./driver";
import { resultWithoutRun } from "./outcome";

const MiB = 1024 * 1024;
const SECCOMP_FD = 3;
/** How often the CPU-time limit of the whole tree is checked. */
const CPU_POLL_MS = 200;
/** After the program ended, how long its output pipes may take to drain. */
const DRAIN_MS = 2000;
/** A workspace with less free space than this after a failed program was probably filled up. */
const FULL_WORKSPACE_BYTES = 64 * 1024;
/** A sandbox without processes this old was left by a server that died (runs last ≤ ~70 s). */
const STALE_MS = 10 * 60 * 1000;

export interface BwrapDriverOptions {
  /** Parent of each sandbox's cgroups under /sys/fs/cgroup/<controller>/. */
  cgroupParent: string;
  /** Host folder for per-sandbox workspaces (a tmpfs is mounted inside each). */
  tempRoot: string;
  /** Where the sandbox-init helper is built (world-traversable). */
  helperDir: string;
  /**
   * Sandbox slot N runs as uid/gid uidBase+N: an unprivileged id with no account, no files on the
   * host, and different for every concurrent sandbox.
   */
  uidBase: number;
}

export const defaultBwrapOptions = (): BwrapDriverOptions => ({
  cgroupParent: "osbyexample",
  tempRoot: path.join(os.tmpdir(), "osbyexample-sandbox"),
  helperDir: path.join(os.tmpdir(), "osbyexample-helpers"),
  uidBase: 200_000,
});

const BINARIES = { sh: "/bin/sh", setpriv: "/usr/bin/setpriv", bwrap: "/usr/bin/bwrap" };
/** Where `SandboxSpec.programFile` appears inside the sandbox: the folder of `spec.program`. */
const PROGRAM_DIR = "/program";
/** cgroup limits while a prepared sandbox waits (bwrap and sandbox-init need little); the spec's replace them at start. */
const WAITING_LIMITS = { memoryBytes: 32 * MiB, processes: 8, cpuShares: 512 };

export class BwrapDriver implements SandboxDriver {
  readonly name = "bwrap";
  private initHelper = "";
  private seccompFile = "";
  /** Mounts the workspaces' tmpfs and makes their cgroups: the driver's helper process once prepared (see mount-helper.ts). */
  private mounter: Mounter & CgroupFiles = { ...processMounter, ...fileSystemCgroups };
  private readonly waitingSandboxes = new Set<BwrapSandbox>();

  constructor(readonly options: BwrapDriverOptions) {}

  async prepare(): Promise<void> {
    if (process.getuid?.() !== 0) throw new Error("the bwrap driver needs root (to manage cgroups and drop to the sandbox user)");
    for (const binary of Object.values(BINARIES)) {
      if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: run scripts/setup-system.sh`);
    }
    await fsp.mkdir(this.options.tempRoot, { recursive: true, mode: 0o711 });
    await fsp.chmod(this.options.tempRoot, 0o711);
    await this.removeStale();
    this.initHelper = await buildInitHelper(this.options.helperDir);
    if (!(this.mounter instanceof HelperMounter)) {
      try {
        this.mounter = new HelperMounter(await buildMountHelper(this.options.helperDir), this.options.tempRoot, this.options.cgroupParent);
      } catch (error) {
        console.error(`sandbox: the mount helper could not be built (${(error as Error).message.split("\n")[0]}); using mount and umount`);
      }
    }
    // Named by its content and written atomically: engines of other checkouts share the helper
    // folder, and a sandbox starting while another engine rewrote one shared file read half a
    // filter (bwrap: "prctl(PR_SET_SECCOMP) reported EINVAL").
    const filter = seccompFilterBytes();
    this.seccompFile = path.join(this.options.helperDir, `seccomp-${createHash("sha256").update(filter).digest("hex").slice(0, 16)}.bpf`);
    if (!fs.existsSync(this.seccompFile)) {
      const temp = `${this.seccompFile}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      await fsp.writeFile(temp, filter, { mode: 0o444 });
      await fsp.rename(temp, this.seccompFile);
    }
  }

  start(spec: SandboxSpec): SandboxProcess {
    return this.prepareSandbox(spec.name, shapeOf(spec)).start(spec);
  }

  prepareSandbox(name: string, shape: SandboxShape): BwrapSandbox {
    if (!/^[a-z0-9-]{1,80}$/.test(name)) throw new Error(`invalid sandbox name: ${name}`);
    if (!this.initHelper) throw new Error("BwrapDriver.prepare() has not run");
    const sandbox = new BwrapSandbox(this.options, this.initHelper, this.seccompFile, this.mounter, name, shape);
    this.waitingSandboxes.add(sandbox);
    void sandbox.startedOrGone.then(() => this.waitingSandboxes.delete(sandbox));
    return sandbox;
  }

  /** Ends the mount helper; call after every sandbox was removed (the engine's shutdown does). */
  close(): Promise<void> {
    if (this.mounter instanceof HelperMounter) this.mounter.close();
    this.mounter = { ...processMounter, ...fileSystemCgroups };
    return Promise.resolve();
  }

  /** Names of the prepared sandboxes still waiting for work (for tests: what is not a leftover). */
  waiting(): string[] {
    return [...this.waitingSandboxes].map((s) => s.name);
  }

  /**
   * Removes what a crashed server left behind: sandboxes (temp dir and cgroups) with no process
   * and older than STALE_MS. Age and emptiness together keep another engine's live sandbox safe,
   * even one still being primed.
   */
  private async removeStale(): Promise<void> {
    const names = new Set<string>();
    for (const dir of listCgroups(this.options.cgroupParent)) names.add(path.basename(dir));
    for (const name of fs.readdirSync(this.options.tempRoot)) names.add(name);
    for (const name of names) {
      if (!/^[a-z0-9-]{1,80}$/.test(name)) continue;
      const cgroup = new CgroupSet(this.options.cgroupParent, name);
      const dir = path.join(this.options.tempRoot, name);
      const ages = [dir, ...Object.values(cgroup.dirs)].map((d) => {
        try {
          return Date.now() - fs.statSync(d).mtimeMs;
        } catch {
          return Number.POSITIVE_INFINITY;
        }
      });
      if (Math.min(...ages) < STALE_MS || cgroup.pids().length > 0) continue;
      await cgroup.remove().catch(() => undefined);
      await new Workspace(dir).assumeMounted().dispose().catch(() => undefined);
    }
  }

  sandboxUser(slot: number): { uid: number; gid: number } {
    return { uid: this.options.uidBase + slot, gid: this.options.uidBase + slot };
  }

  leftovers(prefix: string): string[] {
    const found = listCgroups(this.options.cgroupParent, prefix);
    try {
      for (const name of fs.readdirSync(this.options.tempRoot)) {
        if (name.startsWith(prefix)) found.push(path.join(this.options.tempRoot, name));
      }
    } catch {
      // no temp root yet
    }
    return found;
  }
}

class BwrapSandbox implements SandboxProcess, PreparedSandbox {
  readonly ready: Promise<void>;
  readonly result: Promise<SandboxResult>;
  readonly removed: Promise<void>;
  /** Settles when the sandbox was started or will never be. */
  readonly startedOrGone: Promise<void>;
  private readonly cgroup: CgroupSet;
  private readonly workspace: Workspace;
  private readonly uid: number;
  private spec: SandboxSpec | null = null;
  private settleStarted!: (spec: SandboxSpec | null) => void;
  private readonly started: Promise<SandboxSpec | null>;
  private child: ChildProcess | null = null;
  private exitedAs: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
  private statusText = "";
  private statusDone: Promise<void> = Promise.resolve();
  private stdoutDone: Promise<void> = Promise.resolve();
  private stderrDone: Promise<void> = Promise.resolve();
  private stopReason: LimitName | "killed" | null = null;
  private stopping: Promise<void> | null = null;
  private startedAt = 0;
  private lastUsage: SandboxUsage = { cpuMs: 0, memoryBytes: 0 };
  private readonly truncated = { stdout: false, stderr: false };
  private readonly seen = { stdout: 0, stderr: 0 };
  private stdinClosed = false;
  private pendingStdin: string[] = [];
  private exited = false;
  private running = false;
  /** The start of stderr: bwrap's own complaint when the sandbox cannot start. */
  private stderrHead = "";

  constructor(readonly options: BwrapDriverOptions,
    private readonly initHelper: string,
    private readonly seccompFile: string,
    mounter: Mounter & CgroupFiles,
    readonly name: string,
    readonly shape: SandboxShape,
  ) {
    this.cgroup = new CgroupSet(options.cgroupParent, name, mounter);
    this.workspace = new Workspace(path.join(options.tempRoot, name), mounter);
    this.uid = options.uidBase + shape.slot;
    this.started = new Promise((resolve) => (this.settleStarted = resolve));
    this.startedOrGone = this.started.then(() => undefined);
    this.ready = this.prepareAhead();
    this.ready.catch(() => this.settleStarted(null));
    this.result = this.lifecycle();
    this.removed = this.result.then(
      () => this.remove(),
      () => this.remove(),
    );
  }

  get spent(): boolean {
    return this.spec !== null || this.stopReason !== null || this.exited;
  }

  start(spec: SandboxSpec): SandboxProcess {
    if (this.spec) throw new Error(`sandbox ${this.name} was already started`);
    if (shapeKey(shapeOf(spec)) !== shapeKey(this.shape)) throw new Error(`the spec does not fit sandbox ${this.name}'s shape`);
    this.spec = spec;
    this.settleStarted(spec);
    return this;
  }

  async discard(): Promise<void> {
    if (!this.spec) {
      this.stopReason ??= "killed";
      this.settleStarted(null);
    }
    await this.removed;
  }

  writeStdin(data: string): void {
    if (this.stdinClosed) return;
    if (!this.running) {
      // Still starting: keep it (bounded) until the program exists.
      if (this.pendingStdin.length < 256) this.pendingStdin.push(data);
      return;
    }
    const stdin = this.child?.stdin;
    if (!stdin || stdin.destroyed) return;
    // A program that does not read its input must not make the server buffer without end.
    if (stdin.writableLength > MiB) return;
    stdin.write(data);
  }

  closeStdin(): void {
    this.stdinClosed = true;
    if (this.running) this.child?.stdin?.end();
  }

  kill(): void {
    this.stop("killed");
  }

  usage(): SandboxUsage {
    if (this.running) {
      const u = this.cgroup.usage();
      this.lastUsage = { cpuMs: u.cpuNs / 1e6, memoryBytes: u.memoryBytes };
    }
    return this.lastUsage;
  }

  /** Workspace, cgroups, and bwrap with sandbox-init waiting for its command. */
  private async prepareAhead(): Promise<void> {
    await this.workspace.create(this.shape.workspaceMiB * MiB, this.uid, this.uid, []);
    await fsp.mkdir(this.programDir, { mode: 0o755 });
    await this.cgroup.create(WAITING_LIMITS);
    if (this.stopReason) throw new Error("discarded before it was ready");

    const seccompFd = fs.openSync(this.seccompFile, "r");
    let child: ChildProcess;
    try {
      const [command, ...args] = this.commandLine();
      // An empty environment: bwrap's PID 1 would otherwise keep the server's environment.
      child = spawn(command!, args, { env: {} as NodeJS.ProcessEnv, stdio: ["pipe", "pipe", "pipe", seccompFd, "pipe", "pipe"] });
    } finally {
      fs.closeSync(seccompFd);
    }
    this.child = child;
    this.exitedAs = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exited = true;
        resolve({ code, signal });
      });
      child.once("error", () => {
        this.exited = true;
        resolve({ code: null, signal: null });
      });
    });
    child.stdin!.on("error", () => undefined); // EPIPE when the program ends without reading
    this.commandPipe().on("error", () => undefined);
    const statusPipe = child.stdio[STATUS_FD] as NodeJS.ReadableStream | null;
    let sayReady!: () => void;
    const saidReady = new Promise<void>((resolve) => (sayReady = resolve));
    statusPipe?.on("data", (d: Buffer) => {
      if (this.statusText.length < 1024) this.statusText += d.toString();
      if (this.statusText.startsWith("ready\n")) sayReady();
    });
    // 'exit' can come before the pipes are read to the end: wait for this one too.
    this.statusDone = new Promise<void>((resolve) => {
      if (!statusPipe) return resolve();
      statusPipe.on("error", () => resolve());
      statusPipe.on("end", () => resolve());
      statusPipe.on("close", () => resolve());
    });
    this.stdoutDone = this.pump(child.stdout!, "stdout");
    this.stderrDone = this.pump(child.stderr!, "stderr");
    const exitedEarly = this.exitedAs.then((how) => {
      const said = this.stderrHead.trim().split("\n")[0];
      throw new Error(`the sandbox did not start (bwrap ended with ${how.signal ?? `exit code ${how.code}`}${said ? `: ${said}` : ""})`);
    });
    await Promise.race([saidReady, exitedEarly]);
  }

  /** sandbox-init's fd 5: its command, then end-of-file. */
  private commandPipe(): NodeJS.WritableStream {
    return (this.child!.stdio as unknown as NodeJS.WritableStream[])[COMMAND_FD]!;
  }

  private get programDir(): string {
    return path.join(this.workspace.dir, "program");
  }

  private async lifecycle(): Promise<SandboxResult> {
    const spec = await this.started;
    if (!spec) {
      await this.ready.catch(() => undefined);
      await this.endUnstarted();
      return resultWithoutRun();
    }
    try {
      await this.ready;
    } catch (error) {
      await this.endUnstarted();
      return { ...resultWithoutRun(), signal: null, killed: false, failure: (error as Error).message };
    }
    if (this.stopReason === "killed") {
      await this.endUnstarted();
      return resultWithoutRun();
    }
    return await this.execute(spec);
  }

  /** Closes the command pipe (sandbox-init then exits), and makes sure it did. */
  private async endUnstarted(): Promise<void> {
    const child = this.child;
    if (!child || this.exited) return;
    this.commandPipe().end();
    const gone = await Promise.race([this.exitedAs!.then(() => true), sleep(1000).then(() => false)]);
    if (!gone) {
      await this.cgroup.killAll(child.pid);
      await Promise.race([this.exitedAs, sleep(2000)]);
      if (!this.exited) child.kill("SIGKILL");
    }
  }

  private async execute(spec: SandboxSpec): Promise<SandboxResult> {
    const limits = spec.limits;
    const child = this.child!;
    try {
      this.workspace.writeFiles(spec.files, this.uid, this.uid);
      if (spec.programFile) {
        if (path.posix.dirname(spec.program) !== PROGRAM_DIR) throw new Error(`a program file must be placed in ${PROGRAM_DIR}`);
        await linkOrCopy(spec.programFile, path.join(this.programDir, path.posix.basename(spec.program)));
      }
      this.cgroup.setLimits({ memoryBytes: limits.memoryMiB * MiB, processes: limits.processes, cpuShares: limits.cpuShares });
      this.cgroup.resetCounters();
    } catch (error) {
      await this.endUnstarted();
      return { ...resultWithoutRun(), signal: null, killed: false, failure: `the sandbox could not be set up: ${(error as Error).message}` };
    }
    const cpu = Math.ceil(limits.cpuSeconds);
    const command = encodeCommand({
      rlimits: {
        cpuSoft: cpu, // SIGXCPU at the limit, SIGKILL a second later
        cpuHard: cpu + 1,
        fileSizeBytes: limits.fileSizeMiB * MiB,
        openFiles: limits.openFiles,
        // Only where a phase sets one (kernel builds and QEMU): rustc and QEMU map large regions.
        ...(limits.addressSpaceMiB ? { addressSpaceBytes: limits.addressSpaceMiB * MiB } : {}),
      },
      workdir: spec.workdir ?? "/work",
      program: spec.program,
      argv: [spec.argv0, ...spec.args],
      // As a shell (and bwrap's --chdir) would: PWD names the working directory.
      env: { ...spec.env, PWD: spec.workdir ?? "/work" },
    });
    this.startedAt = performance.now();
    this.running = true;
    this.commandPipe().end(command);

    if (spec.stdin !== undefined) child.stdin!.write(spec.stdin);
    for (const data of this.pendingStdin) child.stdin!.write(data);
    this.pendingStdin = [];
    if (spec.closeStdinAfterInput || this.stdinClosed) this.closeStdin();

    const wallTimer = setTimeout(() => this.stop("wall"), limits.wallSeconds * 1000);
    const cpuTimer = setInterval(() => {
      if (this.usage().cpuMs > limits.cpuSeconds * 1000) this.stop("cpu");
    }, CPU_POLL_MS);
    if (this.stopReason) this.stop(this.stopReason); // kill() arrived while starting

    const how = await this.exitedAs!;
    const wallMs = performance.now() - this.startedAt;
    clearTimeout(wallTimer);
    clearInterval(cpuTimer);
    // The program (PID 1's child) has ended: the run is over, whatever it left running.
    await this.cgroup.killAll();
    await Promise.race([Promise.all([this.stdoutDone, this.stderrDone, this.statusDone]), sleep(DRAIN_MS)]);
    child.stdout?.destroy();
    child.stderr?.destroy();
    (child.stdio[STATUS_FD] as unknown as { destroy?: () => void } | null)?.destroy?.();
    if (this.stopping) await this.stopping;

    const report = this.cgroup.report();
    const status = parseStatus(this.statusText);
    const result = this.describe(status, how, report, wallMs);
    this.running = false;
    if (spec.retrieve && result.exitCode === 0 && !result.failure) {
      result.retrieved = this.workspace.retrieveSync(path.join("out", spec.retrieve.name), spec.retrieve.destination, spec.retrieve.maxBytes);
    }
    return result;
  }

  /** Turns what we know after the end into exit code or signal, and which limit was hit. */
  private describe(
    status: ProgramStatus | null,
    how: { code: number | null; signal: NodeJS.Signals | null },
    report: ReturnType<CgroupSet["report"]>,
    wallMs: number,
  ): SandboxResult {
    const limits = this.spec!.limits;
    const result: SandboxResult = {
      exitCode: null,
      signal: null,
      wallMs,
      cpuMs: report.cpuNs / 1e6,
      peakMemoryBytes: report.peakMemoryBytes,
      limit: null,
      killed: this.stopReason === "killed",
      truncated: { ...this.truncated },
      retrieved: false,
    };
    if (status?.kind === "exit") result.exitCode = status.code;
    else if (status?.kind === "signal") result.signal = signalName(status.signal);
    else if (status?.kind === "error") result.failure = status.message;
    else if (this.stopReason || report.oomKills > 0) result.signal = "SIGKILL"; // killed with sandbox-init
    else {
      const said = this.stderrHead.trim().split("\n")[0];
      result.failure = `the sandbox did not start (bwrap ended with ${how.signal ?? `exit code ${how.code}`}${said ? `: ${said}` : ""})`;
    }

    const abnormal = result.signal !== null || (result.exitCode !== null && result.exitCode !== 0);
    let limit: LimitName | null = this.stopReason && this.stopReason !== "killed" ? this.stopReason : null;
    if (!limit && !result.killed && abnormal) {
      if (result.signal === "SIGXCPU") limit = "cpu";
      else if (result.signal === "SIGXFSZ") limit = "file-size";
      else if (report.oomKills > 0) limit = "memory";
      else if (result.signal === "SIGKILL" && report.cpuNs >= limits.cpuSeconds * 1e9 * 0.95) limit = "cpu";
      // A child stopped by its own CPU rlimit (SIGXCPU) and its parent failing for it: g++ exits 4 when
      // cc1plus gets SIGXCPU. The tree then used about its CPU time (the rlimit's count runs a little
      // below the cgroup's: 0.91 s at a 1 s limit was measured).
      else if (result.exitCode !== null && report.cpuNs >= limits.cpuSeconds * 1e9 * 0.8) limit = "cpu";
      else if (this.workspace.freeBytes() < FULL_WORKSPACE_BYTES) limit = "disk";
    }
    // A fork bomb ends by another limit, but the process limit is what it ran into.
    if (report.pidsMaxHits > 0 && abnormal && !result.killed && (limit === null || limit === "cpu" || limit === "wall")) {
      limit = "processes";
    }
    result.limit = limit;
    if (result.failure) result.limit = null;
    return result;
  }


  /** Forwards a stream up to the output limit (the spec's, once started); beyond it, stops the program. */
  private pump(stream: NodeJS.ReadableStream, which: "stdout" | "stderr"): Promise<void> {
    return new Promise((resolve) => {
      stream.on("data", (chunk: Buffer) => {
        if (which === "stderr" && this.stderrHead.length < 512) this.stderrHead += chunk.toString("utf8", 0, 512);
        const spec = this.spec;
        if (!spec || !this.running) return; // bwrap's own complaint before the program: kept in stderrHead
        const deliver = which === "stdout" ? spec.onStdout : spec.onStderr;
        const cap = spec.limits.outputBytes;
        const room = cap - this.seen[which];
        this.seen[which] += chunk.length;
        if (chunk.length <= room) {
          deliver(chunk);
          return;
        }
        if (room > 0) deliver(chunk.subarray(0, room));
        if (!this.truncated[which]) {
          this.truncated[which] = true;
          this.stop("output");
        }
      });
      stream.on("error", () => resolve());
      stream.on("end", () => resolve());
      stream.on("close", () => resolve());
    });
  }

  /** Ends the sandbox now, remembering why (the first reason wins). */
  private stop(reason: LimitName | "killed"): void {
    if (!this.stopReason) this.stopReason = reason;
    if (!this.spec) this.settleStarted(null); // killed while waiting: never starts
    const child = this.child;
    if (!child || !this.running || this.stopping) return;
    this.stopping = (async () => {
      // Everything inside dies; bwrap's monitor then reaps PID 1 and exits on its own.
      await this.cgroup.killAll(child.pid);
      for (let waited = 0; !this.exited && waited < 2000; waited += 50) await sleep(50);
      if (!this.exited) child.kill("SIGKILL");
    })().catch(() => undefined);
  }

  /** Removes the cgroups and the workspace; reports (never throws) what could not be removed. */
  private async remove(): Promise<void> {
    const problems: string[] = [];
    await this.cgroup.remove().catch((e: Error) => problems.push(e.message));
    await this.workspace.dispose().catch((e: Error) => problems.push(e.message));
    if (problems.length) console.error(`sandbox ${this.name}: cleanup failed: ${problems.join("; ")}`);
  }

  private commandLine(): string[] {
    const { shape, uid } = this;
    const joinCgroups = this.cgroup.procsFiles.map((f) => `echo $$ > ${f}`).join(" && ");
    const wrapper = [BINARIES.sh, "-c", `${joinCgroups} && exec "$@"`, "sandbox-start"];
    const dropRoot = [
      BINARIES.setpriv,
      `--reuid=${uid}`,
      `--regid=${uid}`,
      "--clear-groups",
      "--inh-caps=-all",
      "--bounding-set=-all",
      "--no-new-privs",
      "--",
    ];
    const ws = this.workspace;
    const bwrap = [
      BINARIES.bwrap,
      "--unshare-user", "--disable-userns",
      "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
      "--die-with-parent", "--new-session", "--as-pid-1",
      "--hostname", "sandbox",
      // The toolchains and libc, read-only. Not /etc, /root, /home, /work or the project.
      "--ro-bind", "/usr", "/usr",
      "--symlink", "usr/bin", "/bin",
      "--symlink", "usr/sbin", "/sbin",
      "--symlink", "usr/lib", "/lib",
      "--symlink", "usr/lib64", "/lib64",
      "--proc", "/proc",
      "--dev", "/dev",
      "--bind", ws.work, "/work",
      "--bind", ws.tmp, "/tmp",
      "--bind", ws.out, "/out",
      "--ro-bind", this.programDir, PROGRAM_DIR,
      "--ro-bind", this.initHelper, "/sandbox-init",
      ...bindArgs(shape),
      "--remount-ro", "/",
      "--seccomp", String(SECCOMP_FD),
      "--",
      "/sandbox-init",
    ];
    return [...wrapper, ...dropRoot, ...bwrap];
  }
}

/**
 * The shape's binds, a folder before anything mounted inside it (a kernel run tree, read-write,
 * then its unchanged folders, read-only, over it): bwrap mounts in argument order.
 */
function bindArgs(shape: SandboxShape): string[] {
  const binds = [
    ...shape.readOnlyBinds.map((b) => ({ ...b, option: "--ro-bind" })),
    ...shape.readWriteBinds.map((b) => ({ ...b, option: "--bind" })),
  ];
  const depth = (p: string) => p.split("/").filter(Boolean).length;
  return binds.sort((a, b) => depth(a.sandbox) - depth(b.sandbox)).flatMap((b) => [b.option, b.host, b.sandbox]);
}

/**
 * The compiled program into the sandbox's program folder: a hard link on the same file system
 * (one quick system call, made at once rather than through the thread pool), else a copy.
 */
async function linkOrCopy(source: string, target: string): Promise<void> {
  try {
    fs.linkSync(source, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
    await fsp.copyFile(source, target);
    await fsp.chmod(target, 0o555);
  }
}

function signalName(n: number): string {
  for (const [name, value] of Object.entries(os.constants.signals)) if (value === n) return name;
  return `signal ${n}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
