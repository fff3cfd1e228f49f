/**
 * What every run shares, programs and kernels alike: admission through the scheduler, a kill()
 * that works in any phase, exactly one final event, and the words for a run that ended early.
 * Each kind of run adds its own phases (job.ts: compile → execute; kernel-job.ts: build → boot).
 */
import type { RunEvent } from "../lib/protocol";
import type { EventSink, RunHandle } from "./api";
import type { SandboxDriver, SandboxProcess, SandboxResult, SandboxSpec } from "./drivers/driver";
import { BusyError, CancelledError, ReplacedError, type AdmitRequest, type Scheduler, type Ticket } from "./scheduler";

/** Thrown inside a run's phases once kill() was called. */
export class Stopped extends Error {}

export abstract class RunLifecycle implements RunHandle {
  abstract readonly done: Promise<void>;
  protected finished = false;
  protected killed = false;
  protected ticket: Ticket | null = null;
  /** The sandbox of the current phase, which kill() stops. */
  protected sandbox: SandboxProcess | null = null;
  private markKilled!: () => void;
  /** Resolves when kill() is called. */
  protected readonly whenKilled = new Promise<void>((resolve) => (this.markKilled = resolve));
  /** Every sandbox's removal: `done` waits for them, the final event does not. */
  private readonly removals: Array<Promise<void>> = [];

  protected constructor(
    private readonly sink: EventSink,
    private readonly scheduler: Scheduler,
  ) {}

  abstract writeStdin(data: string): void;
  abstract closeStdin(): void;

  kill(): void {
    if (this.killed || this.finished) return;
    this.killed = true;
    this.markKilled();
    this.ticket?.release(); // leaves the queue if still waiting
    this.sandbox?.kill();
  }

  /** Sends an event; after the final one (`exit` or `error`) nothing more goes out. */
  protected emit(event: RunEvent): void {
    if (this.finished) return;
    if (event.type === "exit" || event.type === "error") this.finished = true;
    try {
      this.sink(event);
    } catch {
      // a failing sink must not stop the cleanup
    }
  }

  /** Starts a phase's sandbox; its removal is awaited by `done` (see settled). */
  protected startSandbox(driver: SandboxDriver, spec: SandboxSpec): SandboxProcess {
    const sandbox = driver.start(spec);
    this.removals.push(sandbox.removed);
    return sandbox;
  }

  /** `done`: the run's work, then the removal of each of its sandboxes. */
  protected async settled(work: Promise<void>): Promise<void> {
    await work;
    await Promise.all(this.removals);
  }

  /** Waits for a sandbox slot, reporting the queue position and estimated wait; returns the slot. */
  protected async admit(request: Omit<AdmitRequest, "onQueued">): Promise<number> {
    if (this.killed) throw new Stopped();
    this.ticket = this.scheduler.admit({
      ...request,
      onQueued: (position, estimatedWaitMs) => this.emit({ type: "queued", position, estimatedWaitMs }),
    });
    const slot = await this.ticket.slot;
    if (this.killed) throw new Stopped();
    return slot;
  }

  /** Waits for a phase's sandbox to end: kill() reaches it meanwhile, and stats go out while it runs. */
  protected async watch(sandbox: SandboxProcess, statsIntervalMs: number): Promise<SandboxResult> {
    this.sandbox = sandbox;
    if (this.killed) sandbox.kill();
    const stats = setInterval(() => {
      const u = sandbox.usage();
      this.emit({ type: "stats", cpuMs: Math.round(u.cpuMs), memoryBytes: u.memoryBytes });
    }, statsIntervalMs);
    try {
      return await sandbox.result;
    } finally {
      clearInterval(stats);
      this.sandbox = null;
    }
  }

  /** The final event for a phase whose sandbox ended: how, in numbers and in words. */
  protected emitExit(phase: "compile" | "run", result: SandboxResult, message: string): void {
    this.emit({
      type: "exit",
      phase,
      exitCode: result.exitCode,
      signal: result.signal,
      wallMs: Math.round(result.wallMs),
      cpuMs: Math.round(result.cpuMs),
      peakMemoryBytes: result.peakMemoryBytes,
      limit: result.limit,
      truncated: result.truncated,
      message,
    });
  }

  /** The final event for a run that ended by an exception: busy, stopped, or a sandbox failure. */
  protected endWithError(error: unknown, stoppedMessage: string): void {
    if (error instanceof BusyError) {
      this.emit({ type: "error", code: "busy", message: error.message, retryAfterSeconds: error.retryAfterSeconds });
    } else if (error instanceof ReplacedError) this.emit({ type: "error", code: "replaced", message: error.message });
    else if (error instanceof Stopped || error instanceof CancelledError || this.killed) {
      this.emit({ type: "error", code: "killed", message: stoppedMessage });
    } else this.emit({ type: "error", code: "internal", message: `sandbox failure: ${(error as Error).message}` });
  }

  /** Always last: the slot goes back and the run counts as finished. */
  protected release(): void {
    this.ticket?.release();
    this.finished = true;
  }
}
