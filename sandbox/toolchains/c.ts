/**
 * Native programs: C with gcc, C++ with g++, x86-64 assembly with nasm (and GNU as), in any mix.
 *
 *   .c (C runs) / .cpp .cc .cxx (C++ runs)   compiled and linked by gcc / g++
 *   .s .S                                    GNU as, through the same gcc / g++ (.S preprocessed)
 *   .asm .nasm                               nasm -f elf64 first, each to an object in /tmp/nasm/
 *   .h .hpp .inc …                           beside them in /work, for #include and %include
 *
 * A run with NASM files is one small shell script in the sandbox (assemble each file, then link);
 * without, gcc runs alone as before. Programs with assembly link with -no-pie (assembly written for
 * courses calls `printf` without `wrt ..plt`) and without an executable stack; one whose assembly
 * defines `_start` links without the C runtime's start files (`-nostartfiles`), so a bare
 * `_start` program and one with `main` both just work.
 *
 * Diagnostics: gcc's JSON (-fdiagnostics-format=json, one array per compiled file), and the text
 * lines of nasm (`f.asm:3: error: …`), GNU as (`f.s:3: Error: …`) and ld (`main.c:4: undefined
 * reference to `f'`) read into the same items, so every error lands on its file and line.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Diagnostic, Language, ProgramRunRequest as RunRequest } from "../../lib/protocol";
import { BINARY_NAME, COMPILE_OUTPUT_DIR, hideSandboxPaths, type CompileCommand, type ParsedDiagnostics, type Toolchain } from "./toolchain";

const run = promisify(execFile);

/** Flags that must follow the sources (libraries are searched left to right). */
const LINK_FLAGS = new Set(["-lm"]);
const NASM = "/usr/bin/nasm";
/** Where nasm leaves its objects inside the compile sandbox; mapped back to the source's name in messages. */
const NASM_OBJECTS = "/tmp/nasm";

const NASM_SOURCE = /\.(asm|nasm)$/i;
const GAS_SOURCE = /\.[sS]$/;
const COMPILED_SOURCE: Record<"c" | "cpp" | "asm", RegExp> = {
  c: /\.c$/,
  cpp: /\.(cpp|cc|cxx|c\+\+)$/,
  // An assembly run may bring C along (a C helper called from assembly).
  asm: /\.c$/,
};
/** `global _start` (NASM) or `.globl _start` (GNU as): the program brings its own entry point. */
const OWN_ENTRY = /^\s*(?:global|\.globl|\.global)\s+(?:[^;#\n]*[\s,])?_start\b/im;

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

export class NativeToolchain implements Toolchain {
  constructor(
    readonly language: "c" | "cpp" | "asm",
    /** The compiler driver that links: gcc or g++. */
    readonly binary: string,
    /** Shown to users as the toolchain: "gcc", "g++", "nasm". */
    readonly name: string,
  ) {}

  get versionCommand(): string[] {
    return this.language === "asm"
      ? ["/bin/sh", "-c", `${this.binary} -dumpfullversion && ${NASM} -v`]
      : [this.binary, "-dumpfullversion"];
  }

  /** gcc's version; for asm "NASM version 2.16.01 compiled on …" too → "2.16.01 (gcc 12.2.0)". */
  parseVersion(stdout: string): string {
    const [gcc = "", nasm = ""] = stdout.trim().split("\n");
    if (this.language !== "asm") return gcc.trim();
    const nasmVersion = /version (\S+)/.exec(nasm)?.[1] ?? nasm.trim();
    return `${nasmVersion} (gcc ${gcc.trim()})`;
  }

  async detectVersion(): Promise<string> {
    const [binary, ...args] = this.versionCommand;
    const { stdout } = await run(binary!, args);
    return this.parseVersion(stdout);
  }

  compileCommand(request: RunRequest): CompileCommand {
    // "./" keeps a file named like an option ("-o.c") a file name.
    const arg = (n: string) => (n.startsWith("-") ? `./${n}` : n);
    const names = request.files.map((f) => f.name);
    const nasmFiles = names.filter((n) => NASM_SOURCE.test(n));
    const gccSources = names.filter((n) => COMPILED_SOURCE[this.language].test(n) || GAS_SOURCE.test(n));
    const hasAssembly = nasmFiles.length > 0 || names.some((n) => GAS_SOURCE.test(n));
    const ownEntry = hasAssembly && request.files.some((f) => (NASM_SOURCE.test(f.name) || GAS_SOURCE.test(f.name)) && OWN_ENTRY.test(f.content));
    const flags = request.flags.filter((f) => f !== "-felf64"); // implied for nasm; gcc does not know it
    const compileFlags = flags.filter((f) => !LINK_FLAGS.has(f));
    const linkFlags = flags.filter((f) => LINK_FLAGS.has(f));
    const objects = nasmFiles.map((n) => `${NASM_OBJECTS}/${n}.o`);
    const gccArgs = [
      "-fdiagnostics-format=json",
      "-fno-diagnostics-color",
      ...compileFlags,
      ...(hasAssembly ? ["-no-pie", "-Wl,-z,noexecstack"] : []),
      ...(ownEntry ? ["-nostartfiles"] : []),
      "-o",
      `${COMPILE_OUTPUT_DIR}/${BINARY_NAME}`,
      ...gccSources.map(arg),
      ...objects,
      ...linkFlags,
    ];
    if (nasmFiles.length === 0) return { program: this.binary, args: gccArgs };

    // Assemble every NASM file (all of them, so all their errors show), then link if all succeeded.
    const debug = flags.includes("-g") ? ["-g", "-F", "dwarf"] : [];
    const dirs = [...new Set(objects.map((o) => o.slice(0, o.lastIndexOf("/"))))];
    const script = [
      "s=0",
      `mkdir -p ${dirs.map(shellQuote).join(" ")} || exit 1`,
      ...nasmFiles.map((n, i) => `${[NASM, "-f", "elf64", ...debug, "-o", objects[i]!, arg(n)].map(shellQuote).join(" ")} || s=1`),
      '[ "$s" = 0 ] || exit 1',
      `exec ${[this.binary, ...gccArgs].map(shellQuote).join(" ")}`,
    ].join("\n");
    return { program: "/bin/sh", args: ["-c", script] };
  }

  /**
   * GNU as warns about a last line without a newline, which is how an editor or a slide hands
   * code over: give assembly files their final newline (nothing else changes, lines stay put).
   */
  compileFiles(files: RunRequest["files"]): RunRequest["files"] {
    return files.map((f) => ((GAS_SOURCE.test(f.name) || NASM_SOURCE.test(f.name)) && f.content && !f.content.endsWith("\n") ? { ...f, content: `${f.content}\n` } : f));
  }

  parseDiagnostics(stdout: string, stderr: string): ParsedDiagnostics {
    const items: Diagnostic[] = [];
    const renderedLines: string[] = [];
    const textLines: string[] = [];
    const otherLines: string[] = [];
    for (const raw of stderr.split("\n")) {
      const parsed = raw.startsWith("[") ? tryParseArray(raw) : null;
      if (parsed) {
        for (const d of parsed) this.collect(d, items, renderedLines, 0);
        continue;
      }
      const line = cleanPaths(raw);
      if (!line.trim()) continue;
      // The assemblers' and the linker's text: in the rendered text in order, and read into items
      // where a line is a diagnostic; what is not one stays in stderr (e.g. "in function `main':").
      textLines.push(line);
      const item = textDiagnostic(line);
      if (item) items.push(item);
      else otherLines.push(line);
    }
    const text = textLines.join("\n");
    const other = otherLines.join("\n");
    const rendered = [...renderedLines, ...(text ? [text] : [])].join("\n");
    return { items, rendered: rendered ? `${rendered}\n` : "", stdout: cleanPaths(stdout), stderr: other ? `${other}\n` : "" };
  }

  private collect(d: GccDiagnostic, items: Diagnostic[], rendered: string[], depth: number): void {
    const severity = gccSeverity(d.kind);
    const loc = d.locations?.[0];
    const file = loc?.caret?.file ? hideSandboxPaths(loc.caret.file).replace(/^\.\/(?=-)/, "") : "";
    const line = loc?.caret?.line ?? 0;
    const column = loc?.caret?.column ?? 0;
    const message = d.message ?? "";
    const option = d.option ? ` [${d.option}]` : "";
    const where = file ? `${file}:${line}:${column}: ` : `${this.language === "cpp" ? "g++" : "gcc"}: `;
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

/** C with gcc (the engine's "c"). */
export class CToolchain extends NativeToolchain {
  constructor(binary = "/usr/bin/gcc") {
    super("c", binary, "gcc");
  }
}

/** C++ with g++. */
export class CppToolchain extends NativeToolchain {
  constructor(binary = "/usr/bin/g++") {
    super("cpp", binary, "g++");
  }
}

/** x86-64 assembly: nasm, linked by gcc (with the C library unless the program defines _start). */
export class AsmToolchain extends NativeToolchain {
  constructor(binary = "/usr/bin/gcc") {
    super("asm", binary, "nasm");
  }
}

/** The languages a NativeToolchain serves. */
export function isNativeLanguage(language: Language): language is "c" | "cpp" | "asm" {
  return language === "c" || language === "cpp" || language === "asm";
}

/** Sandbox paths out of a line; nasm's objects named after their source ("/tmp/nasm/max.asm.o" → "max.asm"). */
function cleanPaths(text: string): string {
  return hideSandboxPaths(text.replace(/\/tmp\/nasm\/([^\s:'`]+?)\.o\b/g, "$1"));
}

/**
 * One text line of nasm, GNU as or ld as an item, or null:
 *   max.asm:7: error: parser: instruction expected           nasm
 *   f.s:3: Error: no such instruction: `movx %rax,%rbx'        GNU as
 *   main.c:4: undefined reference to `g'                        ld, with -g
 *   main.c:(.text+0x2b): undefined reference to `g'             ld, without debug information
 *   /usr/bin/ld: cannot find -lfoo: No such file or directory   ld, no file
 */
export function textDiagnostic(text: string): Diagnostic | null {
  // "/usr/bin/ld: (object file):other.c:1: multiple definition of `x'…": the object file says nothing more
  const line = text.replace(/^(\/usr\/bin\/ld: )\(object file\):(?=[^\s:(][^:]*:\d+: )/, "$1");
  const located = /^(?:\/usr\/bin\/ld: )?([^\s:][^:]*?):(\d+):(?:(\d+):)? (error|warning|note|fatal error|Error|Warning|Fatal error): (.*)$/.exec(line);
  if (located) {
    const kind = located[4]!.toLowerCase();
    return {
      file: located[1]!,
      line: Number(located[2]),
      column: located[3] ? Number(located[3]) : 0,
      severity: kind === "warning" ? "warning" : kind === "note" ? "note" : "error",
      message: located[5]!,
    };
  }
  const linker = /^(?:\/usr\/bin\/ld: )?([^\s:][^:]*?):(?:(\d+)|\([^)]*\)): ((?:undefined reference to|multiple definition of) .*)$/.exec(line);
  if (linker) {
    // An object file (no source known, e.g. a global's multiple definition without -g) is no file to point at.
    const file = /^\(object file\)$|\.o$/.test(linker[1]!) ? "" : linker[1]!;
    return { file, line: linker[2] ? Number(linker[2]) : 0, column: 0, severity: "error", message: linkerMessage(linker[3]!), code: "ld" };
  }
  const ld = /^\/usr\/bin\/ld: (cannot find .*|.*: (?:undefined reference to|multiple definition of) .*)$/.exec(line);
  if (ld) return { file: "", line: 0, column: 0, severity: "error", message: ld[1]!, code: "ld" };
  return null;
}

/** "multiple definition of `f'; (object file):main.c:2: first defined here" → "multiple definition of `f' (first defined at main.c:2)". */
function linkerMessage(message: string): string {
  return message.replace(/; (?:\(object file\):)?(?:([^\s:()]+?):)?(?:(\d+):)?(?:\([^)]*\):)? first defined here$/, (_all, file?: string, line?: string) =>
    file ? ` (first defined ${line ? `at ${file}:${line}` : `in ${file}`})` : "",
  );
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./=,+-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
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
