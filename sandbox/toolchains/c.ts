/**
 * C with gcc. All .c files are compiled and linked together; headers sit beside them in /work.
 * Diagnostics come from -fdiagnostics-format=json (one JSON array per compiled file on stderr);
 * the human-readable text is rebuilt from them as `file:line:col: severity: message`, because in
 * JSON mode gcc prints nothing else.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Diagnostic, ProgramRunRequest as RunRequest } from "../../lib/protocol";
import { BINARY_NAME, COMPILE_OUTPUT_DIR, hideSandboxPaths, type CompileCommand, type ParsedDiagnostics, type Toolchain } from "./toolchain";

const run = promisify(execFile);

/** Flags that must follow the sources (libraries are searched left to right). */
const LINK_FLAGS = new Set(["-lm"]);

interface GccLocation {
  caret?: { file?: string; line?: number; column?: number };
  finish?: { line?: number; column?: number };
}
interface GccDiagnostic {
  kind?: string;
  message?: string;
  option?: string;
  locations?: GccLocation[];
  children?: GccDiagnostic[];
}

export class CToolchain implements Toolchain {
  readonly language = "c" as const;
  readonly name = "gcc";

  constructor(readonly binary = "/usr/bin/gcc") {}

  async detectVersion(): Promise<string> {
    const { stdout } = await run(this.binary, ["-dumpfullversion"]);
    return stdout.trim();
  }

  compileCommand(request: RunRequest): CompileCommand {
    // "./" keeps a file named like an option ("-o.c") a file name.
    const sources = request.files.map((f) => f.name).filter((n) => n.endsWith(".c")).map((n) => (n.startsWith("-") ? `./${n}` : n));
    const compileFlags = request.flags.filter((f) => !LINK_FLAGS.has(f));
    const linkFlags = request.flags.filter((f) => LINK_FLAGS.has(f));
    return {
      program: this.binary,
      args: [
        "-fdiagnostics-format=json",
        "-fno-diagnostics-color",
        ...compileFlags,
        "-o",
        `${COMPILE_OUTPUT_DIR}/${BINARY_NAME}`,
        ...sources,
        ...linkFlags,
      ],
    };
  }

  parseDiagnostics(stdout: string, stderr: string): ParsedDiagnostics {
    const items: Diagnostic[] = [];
    const renderedLines: string[] = [];
    const otherLines: string[] = [];
    for (const line of stderr.split("\n")) {
      const parsed = line.startsWith("[") ? tryParseArray(line) : null;
      if (!parsed) {
        if (line.trim()) otherLines.push(line);
        continue;
      }
      for (const d of parsed) this.collect(d, items, renderedLines, 0);
    }
    const other = hideSandboxPaths(otherLines.join("\n"));
    const rendered = [...renderedLines, ...(other ? [other] : [])].join("\n");
    return { items, rendered: rendered ? `${rendered}\n` : "", stdout: hideSandboxPaths(stdout), stderr: other ? `${other}\n` : "" };
  }

  private collect(d: GccDiagnostic, items: Diagnostic[], rendered: string[], depth: number): void {
    const severity = gccSeverity(d.kind);
    const loc = d.locations?.[0];
    const file = loc?.caret?.file ? hideSandboxPaths(loc.caret.file).replace(/^\.\/(?=-)/, "") : "";
    const line = loc?.caret?.line ?? 0;
    const column = loc?.caret?.column ?? 0;
    const message = d.message ?? "";
    const option = d.option ? ` [${d.option}]` : "";
    const where = file ? `${file}:${line}:${column}: ` : "gcc: ";
    rendered.push(`${where}${d.kind ?? severity}: ${message}${option}`);
    // Notes attached to an error are part of it in the text; as items only the top level counts.
    if (depth === 0 || file) {
      const item: Diagnostic = { file, line, column, severity, message };
      if (loc?.finish?.line !== undefined) item.endLine = loc.finish.line;
      if (loc?.finish?.column !== undefined) item.endColumn = loc.finish.column + 1;
      if (d.option) item.code = d.option;
      items.push(item);
    }
    for (const child of d.children ?? []) this.collect(child, items, rendered, depth + 1);
  }
}

function gccSeverity(kind: string | undefined): Diagnostic["severity"] {
  if (kind === "warning") return "warning";
  if (kind === "note") return "note";
  return "error"; // "error", "fatal error", "sorry, unimplemented", "internal compiler error"
}

function tryParseArray(line: string): GccDiagnostic[] | null {
  try {
    const value: unknown = JSON.parse(line);
    return Array.isArray(value) ? (value as GccDiagnostic[]) : null;
  } catch {
    return null;
  }
}
