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
  toolchains: Array<Toolchain & { language: Language; available: boolean; problem?: string }>;
  running: number;
  queued: number;
  maxConcurrent: number;
  maxQueue: number;
  /** Sandboxes prepared ahead of use, waiting for a run. */
  preparedSandboxes: number;
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

export interface Engine {
  /** Starts (or queues) a run. The request must already be validated by RunRequestSchema. */
  run(request: RunRequest, sink: EventSink): RunHandle;
  health(): Promise<EngineHealth>;
  /** Kills every run, waits for their cleanup, refuses new ones. */
  shutdown(): Promise<void>;
}
