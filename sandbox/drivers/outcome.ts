/**
 * How a sandbox ended, in the driver interface's terms: the program's status and the sandbox's
 * final figures in, exit code or signal and the limit it ran into out. The docker driver uses it;
 * the rules are the bubblewrap driver's (drivers/bwrap.ts, `describe`), so both drivers name the
 * same limit for the same program and the job describes the end in the same words.
 */
import os from "node:os";
import type { LimitName } from "../../lib/protocol";
import type { PhaseLimits } from "../limits";
import type { SandboxResult } from "./driver";

/** A workspace with less free space than this after a failed program was probably filled up. */
export const FULL_WORKSPACE_BYTES = 64 * 1024;

export type ProgramEnd = { kind: "exit"; code: number } | { kind: "signal"; signal: number } | { kind: "error"; message: string } | null;

export interface FinalFigures {
  cpuNs: number;
  peakMemoryBytes: number;
  oomKills: number;
  pidsMaxHits: number;
  workspaceFreeBytes: number;
}

export function describeEnd(options: {
  end: ProgramEnd;
  figures: FinalFigures;
  limits: PhaseLimits;
  stopReason: LimitName | "killed" | null;
  wallMs: number;
  truncated: { stdout: boolean; stderr: boolean };
  /** Why the sandbox itself failed when there is no status and nobody stopped it. */
  failureWithoutStatus: string;
}): SandboxResult {
  const { end, figures, limits, stopReason } = options;
  const result: SandboxResult = {
    exitCode: null,
    signal: null,
    wallMs: options.wallMs,
    cpuMs: figures.cpuNs / 1e6,
    peakMemoryBytes: figures.peakMemoryBytes,
    limit: null,
    killed: stopReason === "killed",
    truncated: { ...options.truncated },
    retrieved: false,
  };
  if (end?.kind === "exit") result.exitCode = end.code;
  else if (end?.kind === "signal") result.signal = signalName(end.signal);
  else if (end?.kind === "error") result.failure = end.message;
  else if (stopReason || figures.oomKills > 0) result.signal = "SIGKILL";
  else result.failure = options.failureWithoutStatus;

  const abnormal = result.signal !== null || (result.exitCode !== null && result.exitCode !== 0);
  let limit: LimitName | null = stopReason && stopReason !== "killed" ? stopReason : null;
  if (!limit && !result.killed && abnormal) {
    if (result.signal === "SIGXCPU") limit = "cpu";
    else if (result.signal === "SIGXFSZ") limit = "file-size";
    else if (figures.oomKills > 0) limit = "memory";
    else if (result.signal === "SIGKILL" && figures.cpuNs >= limits.cpuSeconds * 1e9 * 0.95) limit = "cpu";
    // A child stopped by its own CPU rlimit (SIGXCPU) and its parent failing for it: g++ exits 4 when
    // cc1plus gets SIGXCPU. The tree then used about its CPU time (the rlimit's count runs a little
    // below the cgroup's: 0.91 s at a 1 s limit was measured).
    else if (result.exitCode !== null && figures.cpuNs >= limits.cpuSeconds * 1e9 * 0.8) limit = "cpu";
    else if (figures.workspaceFreeBytes >= 0 && figures.workspaceFreeBytes < FULL_WORKSPACE_BYTES) limit = "disk";
  }
  // A fork bomb ends by another limit, but the process limit is what it ran into.
  if (figures.pidsMaxHits > 0 && abnormal && !result.killed && (limit === null || limit === "cpu" || limit === "wall")) {
    limit = "processes";
  }
  result.limit = result.failure ? null : limit;
  return result;
}

export function signalName(n: number): string {
  for (const [name, value] of Object.entries(os.constants.signals)) if (value === n) return name;
  return `signal ${n}`;
}

/** The result of a sandbox whose program never ran (killed before it started, or not set up). */
export function resultWithoutRun(): SandboxResult {
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
