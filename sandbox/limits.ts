/**
 * Sandbox limits as configuration: what one compile and one run may use.
 *
 * Read it like Compiler Explorer's etc/nsjail/*.cfg. Each number is enforced by the mechanism named
 * beside it (cgroup v1 controller, rlimit via prlimit, tmpfs size, or the engine's own timer).
 *
 * Operators change them without touching code:
 *   SANDBOX_LIMITS       JSON merged over the defaults, e.g.
 *                        '{"run":{"memoryMiB":512},"maxima":{"wallSeconds":30}}'
 *   SANDBOX_CONCURRENCY       sandboxes at once (default: number of cores)
 *   SANDBOX_MAX_WAIT_SECONDS  a run waits for a sandbox while its estimated wait stays within this
 *                             (default 30); beyond it the run is refused "busy" with the estimate
 *   SANDBOX_QUEUE_MEMORY_MIB  memory the waiting runs' requests may hold (default 64)
 *   SANDBOX_CLIENT_WAITING    waiting runs per client session before its oldest is replaced (default 4)
 * or pass the same through createEngine({ limits, concurrency, maxWaitSeconds, queueMemoryMiB, clientWaiting }).
 *
 * A request may override a few run limits per code block (protocol's LimitOverrides); each is
 * clamped to `maxima` here, so a block can ask for less than the server allows, never for more.
 */
import os from "node:os";
import type { LimitOverrides } from "../lib/protocol";

const MiB = 1024 * 1024;

/** What one sandbox (a compile or a run) may use. */
export interface PhaseLimits {
  /** cgroup memory.limit_in_bytes and memory.memsw.limit_in_bytes (swap included); tmpfs writes count too. */
  memoryMiB: number;
  /** CPU seconds: RLIMIT_CPU per process (SIGXCPU) and the cgroup's cpuacct.usage for the whole tree. */
  cpuSeconds: number;
  /** Wall-clock seconds from start to kill, enforced by the engine's timer (kills the whole cgroup). */
  wallSeconds: number;
  /** cgroup pids.max: processes and threads together. rustc needs at least 16. */
  processes: number;
  /** Bytes kept per stream (stdout, stderr); more stops the program. */
  outputBytes: number;
  /** RLIMIT_FSIZE: the largest file a process may write (SIGXFSZ beyond it). */
  fileSizeMiB: number;
  /** Size of the fresh tmpfs mounted as /work and /tmp (a full disk is ENOSPC). */
  workspaceMiB: number;
  /** RLIMIT_NOFILE: open file descriptors per process. */
  openFiles: number;
  /** cgroup cpu.shares relative to the host's 1024: sandboxes yield to the server under load. */
  cpuShares: number;
  /**
   * RLIMIT_AS, when set (kernel builds and QEMU only; C and Rust programs have none): rustc maps
   * libcore's metadata, QEMU its JIT buffer, so both fail early below their measured needs.
   */
  addressSpaceMiB?: number;
}

export interface SandboxLimits {
  /** The compiler inside the sandbox. Not adjustable per request. */
  compile: PhaseLimits;
  /** The student's program. A request's `limits` may adjust these within `maxima`. */
  run: PhaseLimits;
  /** The most a request may ask for, per field of LimitOverrides. */
  maxima: Required<LimitOverrides>;
}

export const defaultLimits: SandboxLimits = {
  compile: {
    memoryMiB: 512, // rustc needs about 512 MiB of address space for a hello world
    cpuSeconds: 10,
    // The CPU limit bounds a compiler's work; wall time beyond it is waiting for a busy machine's
    // CPU. Measured at load 24 on two cores: rustc with serde, regex and rayon used 0.8 s of CPU in
    // 11.7 s; g++ with <iostream> is similar. Compilers read only regular files and never wait for
    // input, so a generous wall limit costs nothing.
    wallSeconds: 60,
    processes: 64,
    outputBytes: 1 * MiB, // diagnostics: plenty for thousands of errors
    fileSizeMiB: 64, // object files and the linked binary
    workspaceMiB: 128,
    openFiles: 256,
    cpuShares: 512,
  },
  run: {
    memoryMiB: 256,
    cpuSeconds: 5,
    wallSeconds: 10,
    processes: 64,
    outputBytes: 1 * MiB,
    fileSizeMiB: 16,
    workspaceMiB: 64,
    openFiles: 64,
    cpuShares: 512,
  },
  maxima: {
    memoryMiB: 1024,
    cpuSeconds: 30,
    wallSeconds: 60,
    processes: 256,
    outputBytes: 8 * MiB,
  },
};

/** How many sandboxes run at once, and what may wait for one (see scheduler.ts). */
export interface AdmissionLimits {
  concurrency: number;
  /** Estimated wait beyond which a run is refused. */
  maxWaitSeconds: number;
  /** Memory the waiting runs' requests may hold. */
  queueMemoryMiB: number;
  /** Waiting runs per client session before its oldest is replaced. */
  clientWaiting: number;
}

export const defaultAdmission = (): AdmissionLimits => ({
  concurrency: Math.max(1, os.availableParallelism?.() ?? os.cpus().length),
  maxWaitSeconds: 30,
  queueMemoryMiB: 64,
  clientWaiting: 4,
});

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };
export type SandboxLimitsInput = DeepPartial<SandboxLimits>;

/** Defaults, then SANDBOX_LIMITS from the environment, then the caller's options. */
export function resolveLimits(override?: SandboxLimitsInput, env: Record<string, string | undefined> = process.env): SandboxLimits {
  let fromEnv: SandboxLimitsInput = {};
  if (env.SANDBOX_LIMITS) {
    try {
      fromEnv = JSON.parse(env.SANDBOX_LIMITS) as SandboxLimitsInput;
    } catch (error) {
      throw new Error(`SANDBOX_LIMITS is not valid JSON: ${(error as Error).message}`);
    }
  }
  const merged = mergeLimits(mergeLimits(defaultLimits, fromEnv), override ?? {});
  for (const phase of [merged.compile, merged.run]) {
    for (const [key, value] of Object.entries(phase)) {
      if (typeof value !== "number" || !(value > 0)) throw new Error(`sandbox limit ${key} must be a positive number, got ${value}`);
    }
  }
  return merged;
}

function mergeLimits(base: SandboxLimits, over: SandboxLimitsInput): SandboxLimits {
  return {
    compile: { ...base.compile, ...(over.compile ?? {}) } as PhaseLimits,
    run: { ...base.run, ...(over.run ?? {}) } as PhaseLimits,
    maxima: { ...base.maxima, ...(over.maxima ?? {}) } as Required<LimitOverrides>,
  };
}

export function resolveAdmission(override: Partial<AdmissionLimits> = {}, env: Record<string, string | undefined> = process.env): AdmissionLimits {
  const defaults = defaultAdmission();
  const fromEnv = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === "") return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${raw}`);
    return n;
  };
  const result: AdmissionLimits = {
    concurrency: override.concurrency ?? fromEnv("SANDBOX_CONCURRENCY") ?? defaults.concurrency,
    maxWaitSeconds: override.maxWaitSeconds ?? fromEnv("SANDBOX_MAX_WAIT_SECONDS") ?? defaults.maxWaitSeconds,
    queueMemoryMiB: override.queueMemoryMiB ?? fromEnv("SANDBOX_QUEUE_MEMORY_MIB") ?? defaults.queueMemoryMiB,
    clientWaiting: override.clientWaiting ?? fromEnv("SANDBOX_CLIENT_WAITING") ?? defaults.clientWaiting,
  };
  if (!Number.isInteger(result.concurrency) || result.concurrency < 1) throw new Error("sandbox concurrency must be a whole number, at least 1");
  if (!Number.isInteger(result.clientWaiting) || result.clientWaiting < 1) throw new Error("SANDBOX_CLIENT_WAITING must be a whole number, at least 1");
  return result;
}

/**
 * The run limits for one request: the defaults, with each override the request gives clamped to
 * the maxima. (A request can also lower a limit, which a lecture uses to show a limit being hit.)
 */
export function runLimitsFor(limits: SandboxLimits, overrides: LimitOverrides | undefined): PhaseLimits {
  const result = { ...limits.run };
  if (!overrides) return result;
  for (const key of ["memoryMiB", "cpuSeconds", "wallSeconds", "processes", "outputBytes"] as const) {
    const asked = overrides[key];
    if (asked !== undefined) result[key] = Math.min(asked, limits.maxima[key]);
  }
  // A workspace (tmpfs) larger than the memory it is charged to would fail with OOM instead of ENOSPC.
  result.workspaceMiB = Math.min(result.workspaceMiB, result.memoryMiB);
  return result;
}

/** "256 MiB", "1 MiB", "512 KiB", "100 bytes": sizes as a person reads them. */
export function formatBytes(bytes: number): string {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  return `${bytes} bytes`;
}

export function formatSeconds(seconds: number): string {
  return Number.isInteger(seconds) ? `${seconds} s` : `${seconds.toFixed(1)} s`;
}
