/**
 * What a sandbox driver does: start one program in a fresh sandbox with limits, stream its output,
 * and report how it ended, leaving nothing behind. The bubblewrap driver is the default; a
 * container-engine driver (Docker API via dockerode) implements the same interface.
 *
 * A driver knows nothing of languages or compile caches: the job and the toolchains decide what
 * to run (compiler or program), the driver only how to contain it.
 *
 * Prepared sandboxes: starting a sandbox (cgroups, a tmpfs, namespaces, a container) costs more
 * than a hello world. A driver that can do that part ahead of use implements `prepareSandbox`:
 * the sandbox pool (sandbox/pool.ts) keeps one prepared sandbox per slot and shape waiting and
 * hands it the spec when a run needs it. A prepared sandbox is used once, like a fresh one:
 * nothing of one run is visible to the next. Removal happens after the result is known
 * (`result` first, `removed` later), so the answer never waits for cleanup.
 */
import type { LimitName } from "../../lib/protocol";
import type { PhaseLimits } from "../limits";
import type { WorkspaceFile } from "../workspace";

export interface SandboxSpec {
  /** Unique among live sandboxes; lower-case letters, digits and '-'. Names cgroups and temp dirs. */
  name: string;
  /** Which of the engine's concurrent slots runs it (0 ≤ slot < concurrency); a driver may map it to a uid. */
  slot: number;
  /** Absolute path of the program inside the sandbox, then its arguments (argv[1..]). */
  program: string;
  argv0: string;
  args: string[];
  /** Written into the workspace, the sandbox's /work and working directory. */
  files: WorkspaceFile[];
  /**
   * A host file (the compiled program) made visible read-only at `program`. Unlike readOnlyBinds
   * it is not part of the shape: a prepared sandbox receives it when it starts.
   */
  programFile?: string;
  /**
   * Host files or folders made visible read-only at the given absolute sandbox paths. `shared`: the
   * same folder for every run of its kind (the prebuilt Rust crates), so a sandbox with it may be
   * prepared ahead; without it the bind is one run's own (a kernel run tree) and never pooled.
   */
  readOnlyBinds?: Array<{ host: string; sandbox: string; shared?: boolean }>;
  /**
   * Host folders made visible read-write (mounted after the workspace, so they may lie below
   * /work): a kernel run's own build tree. The caller makes sure the sandbox user owns only what
   * it may write there.
   */
  readWriteBinds?: Array<{ host: string; sandbox: string }>;
  /**
   * The environment to run in, for drivers that have several: a container image (a course's own,
   * see docs/authoring.md). Undefined: the driver's default. The bubblewrap driver has only the host.
   */
  environment?: string;
  /** Working directory inside the sandbox; default /work. */
  workdir?: string;
  /** The sandbox's whole environment (the server's is never passed on). */
  env: Record<string, string>;
  limits: PhaseLimits;
  /** Written to stdin before anything else. */
  stdin?: string;
  /** Close stdin after `stdin`; otherwise it stays open for writeStdin/closeStdin. */
  closeStdinAfterInput: boolean;
  /** A file the program leaves in /out, copied to the host after it ends (the compiler's binary). */
  retrieve?: { name: string; destination: string; maxBytes: number };
  onStdout(chunk: Buffer): void;
  onStderr(chunk: Buffer): void;
}

export interface SandboxResult {
  /** Set when the program exited; null when a signal ended it. */
  exitCode: number | null;
  /** Signal name such as "SIGKILL" when a signal ended it. */
  signal: string | null;
  wallMs: number;
  cpuMs: number;
  peakMemoryBytes: number;
  /** The limit that ended or broke the program, if any. */
  limit: LimitName | null;
  /** Ended by kill() (the user pressed Stop, disconnected, or the server is stopping). */
  killed: boolean;
  truncated: { stdout: boolean; stderr: boolean };
  /** Whether `retrieve` found a regular file and copied it. */
  retrieved: boolean;
  /** Set when the sandbox itself failed (not the program): an internal error. */
  failure?: string;
}

export interface SandboxUsage {
  cpuMs: number;
  memoryBytes: number;
}

export interface SandboxProcess {
  writeStdin(data: string): void;
  closeStdin(): void;
  /** Stops the sandbox; `result` then settles with killed: true. */
  kill(): void;
  usage(): SandboxUsage;
  /**
   * Settles once the program ended, every process of the sandbox is dead and the output and any
   * `retrieve` file are collected. The sandbox's cgroups and files may still exist: see `removed`.
   */
  readonly result: Promise<SandboxResult>;
  /** Settles after `result`, when nothing of the sandbox (cgroups, files, container) is left; never rejects. */
  readonly removed: Promise<void>;
}

/**
 * What must be fixed when a sandbox is prepared ahead of use. A spec fits a prepared sandbox when
 * `shapeOf(spec)` has the same `shapeKey`; everything else (program, files, env, limits other than
 * the workspace size, stdin) is given when it starts.
 */
export interface SandboxShape {
  slot: number;
  workspaceMiB: number;
  readOnlyBinds: Array<{ host: string; sandbox: string; shared?: boolean }>;
  readWriteBinds: Array<{ host: string; sandbox: string }>;
  /** The container image (container drivers); undefined: the driver's default. */
  environment?: string;
}

export function shapeOf(spec: SandboxSpec): SandboxShape {
  return {
    slot: spec.slot,
    workspaceMiB: spec.limits.workspaceMiB,
    readOnlyBinds: spec.readOnlyBinds ?? [],
    readWriteBinds: spec.readWriteBinds ?? [],
    ...(spec.environment ? { environment: spec.environment } : {}),
  };
}

export function shapeKey(shape: SandboxShape): string {
  return JSON.stringify([shape.slot, shape.workspaceMiB, shape.readOnlyBinds, shape.readWriteBinds, shape.environment ?? null]);
}

export interface PreparedSandbox {
  readonly name: string;
  readonly shape: SandboxShape;
  /** Resolves when the sandbox waits for work; rejects with the reason it could not be prepared. */
  readonly ready: Promise<void>;
  /** True once it can no longer be started (discarded, started, or its preparation failed). */
  readonly spent: boolean;
  /**
   * Gives the waiting sandbox its program; once only, with a spec whose shape is this one's
   * (spec.name is ignored: the sandbox keeps the name it was prepared under). Starting before
   * `ready` is allowed: the program starts as soon as the sandbox is.
   */
  start(spec: SandboxSpec): SandboxProcess;
  /** Throws the unused sandbox away; settles when nothing of it is left. */
  discard(): Promise<void>;
}

export interface SandboxDriver {
  readonly name: string;
  /** One-time checks and setup (e.g. building helpers); throws with a readable reason if unusable. */
  prepare(): Promise<void>;
  /** Starts a sandbox now (what a prepared one does in two steps). */
  start(spec: SandboxSpec): SandboxProcess;
  /**
   * Optional: prepares a sandbox of this shape ahead of use (cgroups made, sandbox started and
   * waiting). `name` follows SandboxSpec.name's rules. Drivers without it are always started fresh.
   */
  prepareSandbox?(name: string, shape: SandboxShape): PreparedSandbox;
  /**
   * The host uid/gid a slot's sandboxes run as, if the driver uses host ids (bwrap does): the
   * owner of files prepared for the sandbox to write, such as a kernel run's build tree.
   */
  sandboxUser?(slot: number): { uid: number; gid: number };
  /** Removes what the driver keeps between runs (prepared containers); the engine's shutdown calls it. */
  close?(): Promise<void>;
  /** The driver's leftovers (cgroups, temp dirs) whose names start with `prefix`: for tests and health. */
  leftovers(prefix: string): string[];
}
