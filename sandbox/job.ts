/**
 * One run, top to bottom, like Piston's job.js:
 *   admit   wait for a sandbox slot (queued events), or answer "busy"
 *   compile inside a sandbox, unless the compile cache has the binary (diagnostics, compiled)
 *   execute the binary in a fresh sandbox (running, stdout/stderr, stats, exit)
 *   cleanup always: the slot, the cache entry, timers; the driver removes the sandbox itself
 * Every run ends with exactly one `exit` or `error` event, after which `done` settles.
 */
import { createHash } from "node:crypto";
import type { LimitName, ProgramRunRequest as RunRequest, Toolchain as ToolchainInfo } from "../lib/protocol";
import type { EventSink, RunOptions } from "./api";
import { CompileCache, type CachedCompile } from "./cache";
import type { SandboxDriver, SandboxResult } from "./drivers/driver";
import { formatBytes, formatSeconds, runLimitsFor, type PhaseLimits, type SandboxLimits } from "./limits";
import { RunLifecycle, Stopped } from "./run-lifecycle";
import type { Scheduler } from "./scheduler";
import type { ServiceTimes } from "./service-times";
import { BINARY_NAME, PROGRAM_ARGV0, PROGRAM_ENV, PROGRAM_PATH, SANDBOX_ENV, type CompileCommand, type Toolchain } from "./toolchains/toolchain";

export interface JobContext {
  driver: SandboxDriver;
  scheduler: Scheduler;
  cache: CompileCache;
  limits: SandboxLimits;
  /** Resolves once the engine is prepared; rejects with the reason it cannot run anything. */
  ready: Promise<void>;
  /** The language's toolchain, and for container drivers the image it runs in and that image's id. */
  toolchain(language: RunRequest["language"]): { toolchain: Toolchain; info: ToolchainInfo; image?: string; imageId?: string } | { problem: string };
  statsIntervalMs: number;
  /** Measured compile and run times: the scheduler's estimates. */
  times: ServiceTimes;
  /** Compiles under way, by cache key: identical compiles share one (single-flight). */
  compiles: Map<string, Promise<CompileOutcome>>;
  /**
   * Recent compiles that failed with the compiler's own errors (no limit hit), by cache key: a
   * hall running a slide that shows a compile error compiles it once, not once per slot turn.
   */
  failures: Map<string, FailedCompile>;
}

type FailedCompile = Extract<CompileOutcome, { kind: "failed" }>;
/** Failed compiles remembered (oldest dropped first). */
const MAX_REMEMBERED_FAILURES = 512;

/** How to run a job besides its request: who asks, and background prewarming (compile only). */
export interface JobOptions extends RunOptions {
  background?: boolean;
  compileOnly?: boolean;
}

/** A finished compile, shared by every run that waited for the same one. */
export type CompileOutcome =
  | { kind: "ok"; output: CachedCompile; timeMs: number; cpuMs: number }
  | { kind: "failed"; output: CachedCompile; result: SandboxResult; timeMs: number }
  | { kind: "stopped" };

/** Bytes a request holds while it waits: its files, input and arguments. */
export function requestBytes(request: { files: Array<{ name: string; content: string }>; stdin?: string; args?: string[] }): number {
  let bytes = 0;
  for (const f of request.files) bytes += f.name.length + f.content.length * 3; // UTF-16 in memory, at most 3 bytes per char as UTF-8
  bytes += (request.stdin?.length ?? 0) + (request.args ?? []).reduce((n, a) => n + a.length, 0);
  return bytes;
}

export class Job extends RunLifecycle {
  readonly done: Promise<void>;
  private programRunning = false;
  private pendingStdin: Array<string | null> = [];
  /** The container image compile and run use (container drivers); undefined: the driver's default. */
  private image: string | undefined;
  /** What prewarming learns: whether the compile was done now, found, or failed. */
  prewarmOutcome: "compiled" | "cached" | "failed" = "failed";

  constructor(
    private readonly ctx: JobContext,
    private readonly request: RunRequest,
    sink: EventSink,
    /** Unique per run: names its sandboxes' cgroups and temp dirs. */
    private readonly name: string,
    private readonly options: JobOptions = {},
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
      const { toolchain, info } = chosen;
      this.image = chosen.image;
      const command = toolchain.compileCommand(this.request);
      // The key names what the compiler sees (files as compileFiles gives them), and a binary built
      // in one image is never run from the cache in another.
      const compiled = toolchain.compileFiles ? { ...this.request, files: toolchain.compileFiles(this.request.files) } : this.request;
      const key = CompileCache.key(compiled, chosen.imageId ? { ...info, image: chosen.imageId } : info, command.args);
      const { stdin, args, limits } = this.request;
      const slot = await this.admit({
        client: this.options.client,
        session: this.options.session,
        identity: createHash("sha256").update(JSON.stringify([key, stdin ?? null, args, limits ?? null])).digest("hex"),
        compileKey: key,
        compileMs: this.ctx.times.estimate(`compile:${this.request.language}`),
        runMs: this.options.compileOnly ? 0 : this.ctx.times.estimate("run"),
        bytes: requestBytes(this.request),
        background: this.options.background,
      });
      const binaryKey = await this.compile(toolchain, info, command, key, slot);
      if (binaryKey === null) return;
      try {
        if (this.options.compileOnly) return;
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

  /**
   * Returns the cache key of a usable binary (held until released), or null when the run ended.
   * Identical compiles in flight share one: the first run compiles, the others wait for it and
   * report the same diagnostics and run the same binary. If the compiling run is stopped, a
   * waiting one compiles instead.
   */
  private async compile(toolchain: Toolchain, info: ToolchainInfo, command: CompileCommand, key: string, slot: number): Promise<string | null> {
    this.emit({ type: "compiling", toolchain: info });
    for (;;) {
      const cached = await this.ctx.cache.acquire(key);
      if (cached) {
        this.prewarmOutcome = "cached";
        this.reportCompile(cached, { ok: true, exitCode: 0, timeMs: 0, cpuMs: 0, cached: true, limit: null });
        return key;
      }
      if (this.killed) throw new Stopped();
      const known = this.ctx.failures.get(key);
      let flight = known ? Promise.resolve<CompileOutcome>(known) : this.ctx.compiles.get(key);
      const mine = !flight;
      if (!flight) {
        flight = this.compileInSandbox(toolchain, command, key, slot);
        this.ctx.compiles.set(key, flight);
        void flight.finally(() => this.ctx.compiles.delete(key)).catch(() => undefined);
      }
      // Stop reaches a run waiting for another's compile at once.
      const outcome = await Promise.race([flight, this.whenKilled.then((): CompileOutcome => ({ kind: "stopped" }))]);
      if (this.killed) throw new Stopped();
      if (outcome.kind === "stopped") {
        if (mine) throw new Stopped();
        continue; // the run that compiled was stopped: compile again, perhaps here
      }
      if (outcome.kind === "failed") {
        const { output, result } = outcome;
        this.prewarmOutcome = "failed";
        const ok = false;
        const cached = !mine || known !== undefined;
        this.reportCompile(output, { ok, exitCode: result.exitCode, timeMs: outcome.timeMs, cpuMs: Math.round(result.cpuMs), cached, limit: result.limit });
        this.emitExit("compile", result, compileFailureMessage(result, output.items.filter((d) => d.severity === "error").length, this.ctx.limits.compile));
        return null;
      }
      // Stored in the cache by the compiling run: take a hold of it like any hit.
      const stored = await this.ctx.cache.acquire(key);
      if (!stored) {
        if (mine) throw new Error("the compiled program could not be stored");
        continue;
      }
      this.prewarmOutcome = mine ? "compiled" : "cached";
      this.reportCompile(outcome.output, { ok: true, exitCode: 0, timeMs: outcome.timeMs, cpuMs: outcome.cpuMs, cached: !mine, limit: null });
      return key;
    }
  }

  /** The compiler in a sandbox; a good binary goes into the cache. Throws when the sandbox itself fails. */
  private async compileInSandbox(toolchain: Toolchain, command: CompileCommand, key: string, slot: number): Promise<CompileOutcome> {
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
      files: toolchain.compileFiles?.(this.request.files) ?? this.request.files,
      ...(command.readOnlyBinds ? { readOnlyBinds: command.readOnlyBinds } : {}),
      environment: this.image,
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
    if (result.killed) {
      await this.ctx.cache.discard(incoming);
      return { kind: "stopped" };
    }
    this.ctx.times.record(`compile:${this.request.language}`, result.wallMs);
    const parsed = toolchain.parseDiagnostics(Buffer.concat(stdout).toString("utf8"), Buffer.concat(stderr).toString("utf8"));
    const timeMs = Math.round(result.wallMs);
    const output: CachedCompile = { ...parsed, timeMs };
    const ok = result.exitCode === 0 && result.retrieved;
    if (!ok) {
      await this.ctx.cache.discard(incoming);
      const failed: FailedCompile = { kind: "failed", output, result, timeMs };
      // The compiler's verdict on this source is final; a limit hit may depend on the machine's load.
      if (!result.limit && !result.signal && result.exitCode !== null) {
        const { failures } = this.ctx;
        failures.delete(key);
        failures.set(key, failed);
        if (failures.size > MAX_REMEMBERED_FAILURES) failures.delete(failures.keys().next().value!);
      }
      return failed;
    }
    if (!(await this.ctx.cache.put(key, incoming, output))) throw new Error("the compiled program could not be stored");
    return { kind: "ok", output, timeMs, cpuMs: Math.round(result.cpuMs) };
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
    const phaseStarted = performance.now();
    const sandbox = this.startSandbox(this.ctx.driver, {
      name: `${this.name}-r`,
      slot,
      program: PROGRAM_PATH,
      argv0: PROGRAM_ARGV0,
      args: this.request.args,
      files: this.request.files,
      programFile: this.ctx.cache.binaryPath(binaryKey),
      environment: this.image,
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
    this.ctx.times.record("run", performance.now() - phaseStarted);
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
