/**
 * What a sandbox driver does: start one program in a fresh sandbox with limits, stream its output,
 * and report how it ended, leaving nothing behind. The bubblewrap driver is the default; a
 * container-engine driver (Docker API via dockerode) can implement the same interface later.
 *
 * A driver knows nothing of languages or compile caches: the job and the toolchains decide what
 * to run (compiler or program), the driver only how to contain it.
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
  /** Host files or folders made visible read-only at the given absolute sandbox paths. */
  readOnlyBinds?: Array<{ host: string; sandbox: string }>;
  /**
   * Host folders made visible read-write (mounted after the workspace, so they may lie below
   * /work): a kernel run's own build tree. The caller makes sure the sandbox user owns only what
   * it may write there.
   */
  readWriteBinds?: Array<{ host: string; sandbox: string }>;
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
  /** Settles after the program ended and all of the sandbox (processes, cgroups, files) is gone. */
  readonly result: Promise<SandboxResult>;
}

export interface SandboxDriver {
  readonly name: string;
  /** One-time checks and setup (e.g. building helpers); throws with a readable reason if unusable. */
  prepare(): Promise<void>;
  start(spec: SandboxSpec): SandboxProcess;
  /**
   * The host uid/gid a slot's sandboxes run as, if the driver uses host ids (bwrap does): the
   * owner of files prepared for the sandbox to write, such as a kernel run's build tree.
   */
  sandboxUser?(slot: number): { uid: number; gid: number };
  /** The driver's leftovers (cgroups, temp dirs) whose names start with `prefix`: for tests and health. */
  leftovers(prefix: string): string[];
}
