/**
 * A kernel build's output as the engine reports it: cargo's `--message-format=json` lines on
 * stdout carry rustc's diagnostics; cargo's own status lines go to stderr. Paths become relative
 * to the kernel's source folder (`src/scheduler.rs`), as a slide names the file it replaces.
 */
import type { Diagnostic } from "../../lib/protocol";
import { rustcDiagnosticItem, type RustDiagnostic } from "./rust";
import type { ParsedDiagnostics } from "./toolchain";

interface CargoMessage {
  reason?: string;
  message?: RustDiagnostic;
}

/** Cargo's progress lines: noise for a student (the build's time is in `compiled`). */
const CARGO_STATUS = /^\s*(Compiling|Finished|Fresh|Building|Blocking|Locking|Updating|Checking|Dirty|Running)\b/;

/** Turns `/abs/kernels/osbe/src/x.rs` (where the sandbox mounted the run tree) into `src/x.rs`. */
export function kernelRelative(text: string, mountPath: string): string {
  const prefix = mountPath.endsWith("/") ? mountPath : `${mountPath}/`;
  return text.split(prefix).join("").split(` (${mountPath})`).join("");
}

export function parseKernelBuildOutput(stdout: string, stderr: string, mountPath: string): ParsedDiagnostics {
  const items: Diagnostic[] = [];
  const rendered: string[] = [];
  const otherStdout: string[] = [];
  for (const line of stdout.split("\n")) {
    if (!line.trim()) continue;
    let record: CargoMessage | null = null;
    if (line.startsWith("{")) {
      try {
        record = JSON.parse(line) as CargoMessage;
      } catch {
        record = null;
      }
    }
    if (!record) {
      otherStdout.push(line);
      continue;
    }
    if (record.reason !== "compiler-message" || !record.message) continue; // artifacts, build-finished
    const d = record.message;
    if (d.rendered) rendered.push(kernelRelative(d.rendered, mountPath));
    const item = rustcDiagnosticItem({ ...d, spans: d.spans ?? [] }, (file) => kernelRelative(file, mountPath));
    if (item) items.push(item);
  }
  const otherStderr = stderr
    .split("\n")
    .filter((line) => line.trim() && !CARGO_STATUS.test(line))
    .map((line) => kernelRelative(line, mountPath))
    .join("\n");
  return {
    items,
    rendered: rendered.join(""),
    stdout: otherStdout.length ? `${kernelRelative(otherStdout.join("\n"), mountPath)}\n` : "",
    stderr: otherStderr ? `${otherStderr}\n` : "",
  };
}

