/**
 * One run, top to bottom, like Piston's job.js:
 *   admit   wait for a sandbox slot (queued events), or answer "busy"
 *   compile inside a sandbox, unless the compile cache has the binary (diagnostics, compiled)
 *   execute the binary in a fresh sandbox (running, stdout/stderr, stats, exit)
 *   cleanup always: the slot, the cache entry, timers; the driver removes the sandbox itself
 * Every run ends with exactly one `exit` or `error` event, after which `done` settles.
 */
import type { LimitName, ProgramRunRequest as RunRequest, Toolchain as ToolchainInfo } from "../lib/protocol";
import type { EventSink } from "./api";
import { CompileCache, type CachedCompile } from "./cache";
import type { SandboxDriver, SandboxResult } from "./drivers/driver";
import { formatBytes, formatSeconds, runLimitsFor, type PhaseLimits, type SandboxLimits } from "./limits";
import { RunLifecycle, Stopped } from "./run-lifecycle";
import type { Scheduler } from "./scheduler";
import { BINARY_NAME, PROGRAM_ARGV0, PROGRAM_ENV, PROGRAM_PATH, SANDBOX_ENV, type Toolchain } from "./toolchains/toolchain";

export interface JobContext {
  driver: SandboxDriver;
  scheduler: Scheduler;
  cache: CompileCache;
  limits: SandboxLimits;
  /** Resolves once the engine is prepared; rejects with the reason it cannot run anything. */
  ready: Promise<void>;
  toolchain(language: RunRequest["language"]): { toolchain: Toolchain; info: ToolchainInfo } | { problem: string };
  statsIntervalMs: number;
}

export class Job extends RunLifecycle {
  readonly done: Promise<void>;
  private programRunning = false;
  private pendingStdin: Array<string | null> = [];

  constructor(
    private readonly ctx: JobContext,
    private readonly request: RunRequest,
    sink: EventSink,
    /** Unique per run: names its sandboxes' cgroups and temp dirs. */
    private readonly name: string,
  ) {
    super(sink, ctx.scheduler);
    this.done = this.settled(this.lifecycle());
  }

  writeStdin(data: string): void {
    if (this.finished) return;
    if (this.programRunning) this.sandbox?.writeStdin(data);
    else if (this.pendingStdin.length < 256) this.pendingStdin.push(data); // typed ahead during the compile
  }

  closeStdin(): void {
    if (this.finished) return;
    if (this.programRunning) this.sandbox?.closeStdin();
    else this.pendingStdin.push(null);
  }

  private async lifecycle(): Promise<void> {
    try {
      await this.ctx.ready;
      const chosen = this.ctx.toolchain(this.request.language);
      if ("problem" in chosen) {
        this.emit({ type: "error", code: "internal", message: chosen.problem });
        return;
      }
      const slot = await this.admit();
      const binaryKey = await this.compile(chosen.toolchain, chosen.info, slot);
      if (binaryKey === null) return;
      try {
        await this.execute(slot, binaryKey);
      } finally {
        this.ctx.cache.release(binaryKey);
      }
    } catch (error) {
      this.endWithError(error, "stopped before the program started");
    } finally {
      this.release();
    }
  }

  /** Returns the cache key of a usable binary (held until released), or null when the run ended. */
  private async compile(toolchain: Toolchain, info: ToolchainInfo, slot: number): Promise<string | null> {
    this.emit({ type: "compiling", toolchain: info });
    const command = toolchain.compileCommand(this.request);
    const key = CompileCache.key(this.request, info, command.args);
    const cached = await this.ctx.cache.acquire(key);
    if (cached) {
      this.reportCompile(cached, { ok: true, exitCode: 0, timeMs: 0, cpuMs: 0, cached: true, limit: null });
      return key;
    }
    if (this.killed) throw new Stopped();

    const limits = this.ctx.limits.compile;
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const incoming = this.ctx.cache.incomingPath(key, this.name);
    this.sandbox = this.startSandbox(this.ctx.driver, {
      name: `${this.name}-c`,
      slot,
      program: command.program,
      argv0: toolchain.name,
      args: command.args,
      files: this.request.files,
      ...(command.readOnlyBinds ? { readOnlyBinds: command.readOnlyBinds } : {}),
      env: SANDBOX_ENV,
      limits,
      closeStdinAfterInput: true,
      retrieve: { name: BINARY_NAME, destination: incoming, maxBytes: limits.fileSizeMiB * 1024 * 1024 },
      onStdout: (b) => stdout.push(b),
      onStderr: (b) => stderr.push(b),
    });
    let result: SandboxResult;
    try {
      result = await this.sandbox.result;
    } finally {
      this.sandbox = null;
    }
    if (result.failure) {
      await this.ctx.cache.discard(incoming);
      throw new Error(result.failure);
    }
    const parsed = toolchain.parseDiagnostics(Buffer.concat(stdout).toString("utf8"), Buffer.concat(stderr).toString("utf8"));
    const ok = result.exitCode === 0 && result.retrieved && !result.killed;
    const outcome = { ok, exitCode: result.exitCode, timeMs: Math.round(result.wallMs), cpuMs: Math.round(result.cpuMs), cached: false, limit: result.limit };
    const compileOutput: CachedCompile = { ...parsed, timeMs: outcome.timeMs };
    if (result.killed) {
      await this.ctx.cache.discard(incoming);
      throw new Stopped();
    }
    this.reportCompile(compileOutput, outcome);
    if (!ok) {
      await this.ctx.cache.discard(incoming);
      this.emitExit("compile", result, compileFailureMessage(result, parsed.items.filter((d) => d.severity === "error").length, limits));
      return null;
    }
    if (!(await this.ctx.cache.put(key, incoming, compileOutput)) || !(await this.ctx.cache.acquire(key))) {
      throw new Error("the compiled program could not be stored");
    }
    return key;
  }

  private reportCompile(
    output: CachedCompile,
    outcome: { ok: boolean; exitCode: number | null; timeMs: number; cpuMs: number; cached: boolean; limit: LimitName | null },
  ): void {
    if (output.items.length > 0 || output.rendered) {
      this.emit({ type: "diagnostics", items: output.items, rendered: output.rendered });
    }
    this.emit({ type: "compiled", ...outcome, stdout: output.stdout, stderr: output.stderr });
  }

  private async execute(slot: number, binaryKey: string): Promise<void> {
    if (this.killed) throw new Stopped();
    const limits = runLimitsFor(this.ctx.limits, this.request.limits);
    const stdout = new TextDecoder("utf-8"); // non-fatal: invalid bytes become U+FFFD
    const stderr = new TextDecoder("utf-8");
    const forward = (decoder: TextDecoder, type: "stdout" | "stderr") => (chunk: Buffer) => {
      const data = decoder.decode(chunk, { stream: true });
      if (data) this.emit({ type, data });
    };
    const initialStdin = this.request.stdin;
    const sandbox = this.startSandbox(this.ctx.driver, {
      name: `${this.name}-r`,
      slot,
      program: PROGRAM_PATH,
      argv0: PROGRAM_ARGV0,
      args: this.request.args,
      files: this.request.files,
      programFile: this.ctx.cache.binaryPath(binaryKey),
      env: PROGRAM_ENV,
      limits,
      stdin: initialStdin,
      // Input given with the request is all there is; without it stdin stays open for the user.
      closeStdinAfterInput: initialStdin !== undefined,
      onStdout: forward(stdout, "stdout"),
      onStderr: forward(stderr, "stderr"),
    });
    this.sandbox = sandbox; // before "running": a sink may answer it with stdin at once
    this.programRunning = true;
    this.emit({ type: "running" });
    for (const data of this.pendingStdin) {
      if (data === null) sandbox.closeStdin();
      else sandbox.writeStdin(data);
    }
    this.pendingStdin = [];
    let result: SandboxResult;
    try {
      result = await this.watch(sandbox, this.ctx.statsIntervalMs);
    } finally {
      this.programRunning = false;
    }
    // Bytes of a character cut off at the end become U+FFFD.
    for (const [decoder, type] of [[stdout, "stdout"], [stderr, "stderr"]] as const) {
      const rest = decoder.decode();
      if (rest) this.emit({ type, data: rest });
    }
    if (result.failure) throw new Error(result.failure);
    this.emitExit("run", result, runMessage(result, limits));
  }
}

const SIGNAL_MEANINGS: Record<string, string> = {
  SIGSEGV: "segmentation fault",
  SIGABRT: "aborted",
  SIGFPE: "arithmetic error",
  SIGBUS: "bus error",
  SIGILL: "illegal instruction",
  SIGTERM: "terminated",
  SIGPIPE: "broken pipe",
  SIGSYS: "forbidden system call",
  SIGTRAP: "trap",
};

/** What stopped a run, in words. */
export function limitMessage(limit: LimitName, limits: PhaseLimits): string {
  switch (limit) {
    case "memory":
      return `killed: memory limit of ${formatBytes(limits.memoryMiB * 1024 * 1024)} exceeded`;
    case "cpu":
      return `killed: CPU time limit of ${formatSeconds(limits.cpuSeconds)} exceeded`;
    case "wall":
      return `killed: wall-clock limit of ${formatSeconds(limits.wallSeconds)} exceeded`;
    case "processes":
      return `stopped: process limit of ${limits.processes} reached`;
    case "output":
      return `stopped: output limit of ${formatBytes(limits.outputBytes)} exceeded`;
    case "file-size":
      return `killed: file size limit of ${formatBytes(limits.fileSizeMiB * 1024 * 1024)} exceeded`;
    case "disk":
      return `stopped: workspace full (disk limit of ${formatBytes(limits.workspaceMiB * 1024 * 1024)})`;
  }
}

function endedHow(result: SandboxResult): string {
  if (result.signal) {
    const meaning = SIGNAL_MEANINGS[result.signal];
    return `killed by signal ${result.signal}${meaning ? ` (${meaning})` : ""}`;
  }
  return `exited with code ${result.exitCode}`;
}

export function runMessage(result: SandboxResult, limits: PhaseLimits): string {
  if (result.killed) return "stopped: killed on request";
  if (result.limit) {
    const text = limitMessage(result.limit, limits);
    // Say how it ended too when that is not obvious from the limit (e.g. exit code after ENOSPC).
    return result.limit === "processes" || result.limit === "disk" ? `${text}; ${endedHow(result)}` : text;
  }
  return endedHow(result);
}

function compileFailureMessage(result: SandboxResult, errors: number, limits: PhaseLimits): string {
  if (result.limit) return `compilation failed: ${limitMessage(result.limit, limits).replace(/^(killed|stopped): /, "compiler $1: ")}`;
  if (result.signal) return `compilation failed: compiler ${endedHow(result)}`;
  if (errors > 0) return `compilation failed: ${errors} error${errors === 1 ? "" : "s"}`;
  if (result.exitCode === 0 && !result.retrieved) return "compilation failed: the compiler produced no program";
  return `compilation failed (compiler exited with code ${result.exitCode})`;
}
