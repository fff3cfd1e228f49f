/**
 * Building and booting a kernel directly on the host, without the sandbox: for preparing the
 * warm trees (scripts/build-kernels.ts), for the kernel tests and for the bare figures a bench
 * prints beside the engine's. Student code never runs through here: the engine runs the same
 * argv (profile.buildCommand, qemuArgv) inside the sandbox.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { imageFromKernel } from "./bootloader09";
import type { BootOutcome, KernelProfile } from "./profile";
import { interpretQemuExit, qemuArgv } from "./profile";

export interface CommandResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs argv in its own process group with exactly `env`, and kills the whole group at the wall
 * limit (SIGKILL). Resolves when the process has exited.
 */
export function runCommand(
  argv: string[],
  options: { cwd: string; env: Record<string, string>; timeoutMs: number; onStdout?: (chunk: string) => void },
): Promise<CommandResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd: options.cwd,
      env: options.env as NodeJS.ProcessEnv, // exactly these variables, nothing inherited
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // a process group of its own: the timeout kills cargo's rustc and ld too
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      options.onStdout?.(chunk);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (exitCode, signal) => {
      clearTimeout(timer);
      killGroup(); // anything the command left behind in its group
      resolve({ exitCode, signal, timedOut, stdout, stderr, ms: performance.now() - started });
    });
  });
}

export interface Diagnostic {
  level: string;
  message: string;
  /** Relative to the kernel's source folder, as rustc reports it when cargo runs in that folder. */
  file?: string;
  line?: number;
  column?: number;
  rendered?: string;
}

/** Compiler messages from cargo's `--message-format=json*` output (one JSON object per line). */
export function parseCargoDiagnostics(stdout: string): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    // biome-ignore lint/suspicious/noExplicitAny: cargo's JSON messages, read field by field below
    let record: any;
    try {
      record = JSON.parse(line);
    } catch {
      continue;
    }
    if (record.reason !== "compiler-message" || !record.message) continue;
    const message = record.message;
    const span = (message.spans ?? []).find((s: { is_primary?: boolean }) => s.is_primary) ?? message.spans?.[0];
    diagnostics.push({
      level: message.level,
      message: message.message,
      file: span?.file_name,
      line: span?.line_start,
      column: span?.column_start,
      rendered: message.rendered ?? undefined,
    });
  }
  return diagnostics;
}

export interface BuildResult extends CommandResult {
  ok: boolean;
  diagnostics: Diagnostic[];
}

/** Runs the profile's build command in `sourceDir` (the warm tree or a run's copy). */
export async function buildKernel(profile: KernelProfile, sourceDir: string, timeoutMs = profile.limits.build.wallSeconds * 1000): Promise<BuildResult> {
  const result = await runCommand(profile.buildCommand, { cwd: sourceDir, env: profile.env, timeoutMs });
  return {
    ...result,
    ok: result.exitCode === 0 && !result.timedOut,
    diagnostics: profile.diagnostics === "cargo-json" ? parseCargoDiagnostics(result.stdout) : [],
  };
}

export interface BootResult extends CommandResult {
  outcome: BootOutcome;
  /** Milliseconds from QEMU's start to the first complete line on the serial console. */
  firstLineMs: number | null;
}

/**
 * Boots `imagePath` in QEMU, serial console on stdout, stopped at the wall limit. For a
 * bootloader-0.9 profile `imagePath` is the kernel ELF: the raw image is written first (timed
 * with the boot), into a temporary file.
 */
export async function bootKernel(profile: KernelProfile, imagePath: string, timeoutMs = profile.limits.boot.wallSeconds * 1000): Promise<BootResult> {
  const started = performance.now();
  let firstLineMs: number | null = null;
  let scratch: string | undefined;
  let image = imagePath;
  if (profile.imageKind === "bootloader-0.9") {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), `boot-${profile.name}-`));
    image = path.join(scratch, "disk.img");
    fs.writeFileSync(image, imageFromKernel(profile, fs.readFileSync(imagePath)));
  }
  const result = await runCommand(qemuArgv(profile, image), {
    cwd: "/",
    env: { PATH: "/usr/bin:/bin" },
    timeoutMs,
    onStdout: (chunk) => {
      if (firstLineMs === null && chunk.includes("\n")) firstLineMs = performance.now() - started;
    },
  });
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  return { ...result, firstLineMs, outcome: interpretQemuExit(profile, result) };
}
