/**
 * The engine's contract: a run request in, events out through a sink.
 * The server, the HTTP API, `npm run check` and the benches all use the engine through this alone.
 */
import type { RunEvent, RunRequest, Toolchain, Language } from "../lib/protocol";

export type EventSink = (event: RunEvent) => void;

export interface RunHandle {
  /** Feeds the running program's stdin; ignored before the program runs or after it ends. */
  writeStdin(data: string): void;
  /** Sends end-of-file to the program's stdin. */
  closeStdin(): void;
  /** Stops the run wherever it is (queued, compiling, running); it still ends with one `exit` or `error` event. */
  kill(): void;
  /** Settles after the final event was emitted and every process, cgroup and temp dir of the run is gone. */
  readonly done: Promise<void>;
}

export interface EngineHealth {
  ready: boolean;
  driver: string;
  /** The container image runs use by default (container drivers only): its name and id. */
  image?: { image: string; id: string };
  /** Each toolchain's version as found where it runs (the host, or its image), and that image. */
  toolchains: Array<Toolchain & { language: Language; available: boolean; problem?: string; image?: string }>;
  running: number;
  /** User runs waiting for a sandbox. */
  queued: number;
  /** Background compiles (prewarming) waiting. */
  backgroundQueued: number;
  maxConcurrent: number;
  /** The estimated wait beyond which runs are refused, and what a new run would wait now. */
  maxWaitMs: number;
  estimatedWaitMs: number;
  /** Memory the waiting runs' requests may hold. */
  maxQueueBytes: number;
  /** Sandboxes prepared ahead of use, waiting for a run. */
  preparedSandboxes: number;
  /** Program sandboxes started so far: from a prepared one, or fresh because none was ready. */
  sandboxStarts: { prepared: number; fresh: number };
  /** The kernel lab's kernel profiles: what a `language: "kernel"` request may name. */
  kernels: KernelHealth[];
  /** Set when the kernel profiles' configuration (OSBE_KERNELS, OSBE_KERNELS_FILE) could not be read. */
  kernelsProblem?: string;
  /** The crates Rust programs can use (`use nix::unistd::fork;`), prebuilt by scripts/build-crates.ts. */
  rustCrates: Array<{ name: string; version: string }>;
  /** Set when they are not built or not current: Rust runs then have the standard library only. */
  rustCratesProblem?: string;
}

export interface KernelHealth {
  name: string;
  description: string;
  /** False when its warm build tree is missing (run scripts/build-kernels.ts). */
  available: boolean;
  problem?: string;
  /** The files a request may replace, with the lesson each holds. */
  replaceableFiles: Array<{ path: string; lesson: string }>;
}

/** Who asks for a run: the scheduler's round-robin and replacing go by these. */
export interface RunOptions {
  /** The client (its address): waiting runs are served round-robin over clients. */
  client?: string;
  /** The client's tab or connection: a newer identical run replaces its waiting one; only its newest few wait. */
  session?: string;
}

/** What prewarming one example did: compiled it now, found it cached, or could not compile it. */
export type PrewarmOutcome = "compiled" | "cached" | "failed";

export interface Engine {
  /** Starts (or queues) a run. The request must already be validated by RunRequestSchema. */
  run(request: RunRequest, sink: EventSink, options?: RunOptions): RunHandle;
  /**
   * Compiles the request into the compile cache without running it, as background work: only
   * on slots no user waits for. Settles when done; never throws.
   */
  prewarm(request: RunRequest): Promise<PrewarmOutcome>;
  health(): Promise<EngineHealth>;
  /** Kills every run, waits for their cleanup, refuses new ones. */
  shutdown(): Promise<void>;
}
