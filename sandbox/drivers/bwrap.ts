/**
 * The bubblewrap driver: each sandbox is one bwrap started as an unprivileged user, in its own
 * cgroups, with rlimits, a seccomp filter and a fresh tmpfs workspace.
 *
 * How a sandbox starts (one process that execs itself four times, so nothing runs outside the
 * cgroups even for a moment):
 *   /bin/sh -c 'echo $$ > <each cgroup.procs>; exec "$@"'   as root, with an EMPTY environment:
 *     joins the run's cgroups before anything else runs, so every later process is counted
 *   /usr/bin/prlimit --cpu --fsize --nofile --core ...       rlimits, inherited by all below
 *   /usr/bin/setpriv --reuid=U --regid=U --clear-groups ...  drops root: bwrap started by root with
 *     --unshare-user would map the sandbox user to host root
 *   /usr/bin/bwrap ...                                       namespaces, mounts, seccomp
 *   /sandbox-init PROGRAM ARGV0 ARGS...                      PID 1: runs the program, reports its status
 *
 * Lifecycle of one sandbox, like Piston's job: prime (workspace, cgroups) → execute (spawn, stream,
 * enforce the wall and CPU limits, wait for the program) → cleanup (kill every pid in the cgroups,
 * remove the cgroups, unmount and delete the workspace). Cleanup runs whatever happened before it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { LimitName } from "../../lib/protocol";
import { CgroupSet, listCgroups } from "../cgroup";
import { buildInitHelper, parseStatus, STATUS_FD, type ProgramStatus } from "../init-helper";
import { seccompFilterBytes } from "../seccomp";
import { Workspace } from "../workspace";
import type { SandboxDriver, SandboxProcess, SandboxResult, SandboxSpec, SandboxUsage } from "./driver";

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

const BINARIES = { sh: "/bin/sh", prlimit: "/usr/bin/prlimit", setpriv: "/usr/bin/setpriv", bwrap: "/usr/bin/bwrap" };

export class BwrapDriver implements SandboxDriver {
  readonly name = "bwrap";
  private initHelper = "";
  private seccompFile = "";

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
    this.seccompFile = path.join(this.options.helperDir, "seccomp.bpf");
    await fsp.writeFile(this.seccompFile, seccompFilterBytes(), { mode: 0o444 });
  }

  start(spec: SandboxSpec): SandboxProcess {
    if (!/^[a-z0-9-]{1,80}$/.test(spec.name)) throw new Error(`invalid sandbox name: ${spec.name}`);
    if (!this.initHelper) throw new Error("BwrapDriver.prepare() has not run");
    return new BwrapSandbox(this.options, this.initHelper, this.seccompFile, spec);
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

class BwrapSandbox implements SandboxProcess {
  readonly result: Promise<SandboxResult>;
  private readonly cgroup: CgroupSet;
  private readonly workspace: Workspace;
  private readonly uid: number;
  private child: ChildProcess | null = null;
  private stopReason: LimitName | "killed" | null = null;
  private stopping: Promise<void> | null = null;
  private startedAt = 0;
  private lastUsage: SandboxUsage = { cpuMs: 0, memoryBytes: 0 };
  private readonly truncated = { stdout: false, stderr: false };
  private stdinClosed = false;
  private pendingStdin: string[] = [];
  private exited = false;
  /** The start of stderr: bwrap's own complaint when the sandbox cannot start. */
  private stderrHead = "";

  constructor(readonly options: BwrapDriverOptions,
    private readonly initHelper: string,
    private readonly seccompFile: string,
    private readonly spec: SandboxSpec,
  ) {
    this.cgroup = new CgroupSet(options.cgroupParent, spec.name);
    this.workspace = new Workspace(path.join(options.tempRoot, spec.name));
    this.uid = options.uidBase + spec.slot;
    this.result = this.lifecycle();
  }

  writeStdin(data: string): void {
    if (this.stdinClosed) return;
    if (!this.child) {
      // Still priming: keep it (bounded) until the program exists.
      if (this.pendingStdin.length < 256) this.pendingStdin.push(data);
      return;
    }
    const stdin = this.child.stdin;
    if (!stdin || stdin.destroyed) return;
    // A program that does not read its input must not make the server buffer without end.
    if (stdin.writableLength > MiB) return;
    stdin.write(data);
  }

  closeStdin(): void {
    this.stdinClosed = true;
    this.child?.stdin?.end();
  }

  kill(): void {
    this.stop("killed");
  }

  usage(): SandboxUsage {
    if (this.child) {
      const u = this.cgroup.usage();
      this.lastUsage = { cpuMs: u.cpuNs / 1e6, memoryBytes: u.memoryBytes };
    }
    return this.lastUsage;
  }

  private async lifecycle(): Promise<SandboxResult> {
    try {
      await this.prime();
      return await this.execute();
    } finally {
      await this.cleanup();
    }
  }

  /** Workspace with the files, cgroups with the limits. */
  private async prime(): Promise<void> {
    const { limits, files } = this.spec;
    await this.workspace.create(limits.workspaceMiB * MiB, this.uid, this.uid, files);
    await this.cgroup.create({ memoryBytes: limits.memoryMiB * MiB, processes: limits.processes, cpuShares: limits.cpuShares });
  }

  private async execute(): Promise<SandboxResult> {
    const { spec } = this;
    const limits = spec.limits;
    if (this.stopReason === "killed") return this.resultWithoutRun();

    const seccompFd = fs.openSync(this.seccompFile, "r");
    let child: ChildProcess;
    try {
      const [command, ...args] = this.commandLine();
      // An empty environment: bwrap's PID 1 would otherwise keep the server's environment.
      child = spawn(command!, args, { env: {} as NodeJS.ProcessEnv, stdio: ["pipe", "pipe", "pipe", seccompFd, "pipe"] });
    } finally {
      fs.closeSync(seccompFd);
    }
    this.child = child;
    this.startedAt = performance.now();

    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
      child.once("error", () => resolve({ code: null, signal: null }));
    });
    let statusText = "";
    const statusPipe = child.stdio[STATUS_FD] as NodeJS.ReadableStream | null;
    statusPipe?.on("data", (d: Buffer) => {
      if (statusText.length < 1024) statusText += d.toString();
    });
    // 'exit' can come before the pipes are read to the end: wait for this one too (below).
    const statusDone = new Promise<void>((resolve) => {
      if (!statusPipe) return resolve();
      statusPipe.on("error", () => resolve());
      statusPipe.on("end", () => resolve());
      statusPipe.on("close", () => resolve());
    });
    const stdoutDone = this.pump(child.stdout!, "stdout", spec.onStdout);
    const stderrDone = this.pump(child.stderr!, "stderr", (chunk) => {
      if (this.stderrHead.length < 512) this.stderrHead += chunk.toString("utf8", 0, 512);
      spec.onStderr(chunk);
    });

    child.stdin!.on("error", () => undefined); // EPIPE when the program ends without reading
    if (spec.stdin !== undefined) child.stdin!.write(spec.stdin);
    for (const data of this.pendingStdin) child.stdin!.write(data);
    this.pendingStdin = [];
    if (spec.closeStdinAfterInput || this.stdinClosed) this.closeStdin();

    const wallTimer = setTimeout(() => this.stop("wall"), limits.wallSeconds * 1000);
    const cpuTimer = setInterval(() => {
      if (this.usage().cpuMs > limits.cpuSeconds * 1000) this.stop("cpu");
    }, CPU_POLL_MS);
    if (this.stopReason) this.stop(this.stopReason); // kill() arrived while spawning

    const how = await exited;
    this.exited = true;
    const wallMs = performance.now() - this.startedAt;
    clearTimeout(wallTimer);
    clearInterval(cpuTimer);
    // The program (PID 1's child) has ended: the run is over, whatever it left running.
    await this.cgroup.killAll();
    await Promise.race([Promise.all([stdoutDone, stderrDone, statusDone]), sleep(DRAIN_MS)]);
    child.stdout?.destroy();
    child.stderr?.destroy();
    (statusPipe as unknown as { destroy?: () => void } | null)?.destroy?.();
    if (this.stopping) await this.stopping;

    const report = this.cgroup.report();
    const status = parseStatus(statusText);
    const result = this.describe(status, how, report, wallMs);
    if (spec.retrieve && result.exitCode === 0 && !result.failure) {
      result.retrieved = await this.workspace.retrieve(path.join("out", spec.retrieve.name), spec.retrieve.destination, spec.retrieve.maxBytes);
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
    const limits = this.spec.limits;
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

  private resultWithoutRun(): SandboxResult {
    return {
      exitCode: null,
      signal: "SIGKILL",
      wallMs: 0,
      cpuMs: 0,
      peakMemoryBytes: 0,
      limit: null,
      killed: true,
      truncated: { stdout: false, stderr: false },
      retrieved: false,
    };
  }

  /** Forwards a stream up to the output limit; beyond it, stops the program. */
  private pump(stream: NodeJS.ReadableStream, which: "stdout" | "stderr", deliver: (chunk: Buffer) => void): Promise<void> {
    const cap = this.spec.limits.outputBytes;
    let seen = 0;
    return new Promise((resolve) => {
      stream.on("data", (chunk: Buffer) => {
        const room = cap - seen;
        seen += chunk.length;
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
    const child = this.child;
    if (!child || this.stopping) return;
    this.stopping = (async () => {
      // Everything inside dies; bwrap's monitor then reaps PID 1 and exits on its own.
      await this.cgroup.killAll(child.pid);
      for (let waited = 0; !this.exited && waited < 2000; waited += 50) await sleep(50);
      if (!this.exited) child.kill("SIGKILL");
    })().catch(() => undefined);
  }

  private async cleanup(): Promise<void> {
    const problems: string[] = [];
    await this.cgroup.remove().catch((e: Error) => problems.push(e.message));
    await this.workspace.dispose().catch((e: Error) => problems.push(e.message));
    if (problems.length) throw new Error(`sandbox cleanup failed: ${problems.join("; ")}`);
  }

  private commandLine(): string[] {
    const { spec, uid } = this;
    const limits = spec.limits;
    const joinCgroups = this.cgroup.procsFiles.map((f) => `echo $$ > ${f}`).join(" && ");
    const cpu = Math.ceil(limits.cpuSeconds);
    const wrapper = [BINARIES.sh, "-c", `${joinCgroups} && exec "$@"`, "sandbox-start"];
    const rlimits = [
      BINARIES.prlimit,
      `--cpu=${cpu}:${cpu + 1}`, // SIGXCPU at the limit, SIGKILL a second later
      `--fsize=${limits.fileSizeMiB * MiB}`,
      `--nofile=${limits.openFiles}`,
      // Only where a phase sets one (kernel builds and QEMU): rustc and QEMU map large regions.
      ...(limits.addressSpaceMiB ? [`--as=${limits.addressSpaceMiB * MiB}`] : []),
      "--core=0",
      "--msgqueue=0",
      "--rtprio=0",
      "--",
    ];
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
      "--ro-bind", this.initHelper, "/sandbox-init",
      ...(spec.readOnlyBinds ?? []).flatMap((b) => ["--ro-bind", b.host, b.sandbox]),
      ...(spec.readWriteBinds ?? []).flatMap((b) => ["--bind", b.host, b.sandbox]),
      "--remount-ro", "/",
      "--chdir", spec.workdir ?? "/work",
      ...Object.entries(spec.env).flatMap(([k, v]) => ["--setenv", k, v]),
      "--seccomp", String(SECCOMP_FD),
      "--",
      "/sandbox-init", spec.program, spec.argv0, ...spec.args,
    ];
    return [...wrapper, ...rlimits, ...dropRoot, ...bwrap];
  }
}

function signalName(n: number): string {
  for (const [name, value] of Object.entries(os.constants.signals)) if (value === n) return name;
  return `signal ${n}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
