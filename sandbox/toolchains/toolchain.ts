/**
 * A toolchain turns a request's files into a binary inside the sandbox and reads the compiler's
 * machine-readable diagnostics. It decides what to run; the driver decides how to contain it.
 */
import type { Diagnostic, Language, ProgramRunRequest as RunRequest } from "../../lib/protocol";

/** Where the compile sandbox leaves the binary (its /out), and where the run sandbox finds it. */
export const COMPILE_OUTPUT_DIR = "/out";
export const BINARY_NAME = "main";
/** The binary is bound read-only here; its name makes the process show as "main" in ps. */
export const PROGRAM_PATH = "/program/main";
export const PROGRAM_ARGV0 = "./main";

/** The environment of every sandbox, compiler and program alike: nothing of the server's. */
export const SANDBOX_ENV: Record<string, string> = {
  PATH: "/usr/bin:/bin",
  HOME: "/work",
  TMPDIR: "/tmp",
  LANG: "C.UTF-8",
};

/**
 * The program's environment: as above, with C stdio buffered as on a terminal (coreutils' stdbuf
 * library). stdout and stdin are pipes, where glibc buffers fully: a prompt like
 * `printf("name? ")` would only appear after the input it asks for. With stdout line-buffered
 * and stdin unbuffered, glibc flushes stdout whenever the program reads stdin, as it does on a
 * terminal. Rust's stdout is line-buffered anyway; the library only touches C stdio.
 */
export const STDBUF_LIBRARY = "/usr/libexec/coreutils/libstdbuf.so";
export const PROGRAM_ENV: Record<string, string> = {
  ...SANDBOX_ENV,
  LD_PRELOAD: STDBUF_LIBRARY,
  _STDBUF_O: "L",
  _STDBUF_I: "0",
};

export interface CompileCommand {
  program: string;
  args: string[];
  /** Host folders the compiler reads, visible read-only in the compile sandbox (the prebuilt Rust crates). */
  readOnlyBinds?: Array<{ host: string; sandbox: string; shared?: boolean }>;
}

export interface ParsedDiagnostics {
  items: Diagnostic[];
  /** The human-readable text, with the user's file names only. */
  rendered: string;
  /** Compiler output that was not a diagnostic (linker messages and the like), cleaned of sandbox paths. */
  stdout: string;
  stderr: string;
}

export interface Toolchain {
  readonly language: Language;
  /** "gcc", "rustc". */
  readonly name: string;
  /** The compiler's version, found on the host at start; throws when the compiler is missing. */
  detectVersion(): Promise<string>;
  /** The command that prints the version (run in the image by container drivers), and how to read it. */
  readonly versionCommand: string[];
  parseVersion(stdout: string): string;
  /** Called with the version found in a container image instead of detectVersion() on the host. */
  adoptVersion?(version: string): void;
  /** The compile command inside the sandbox (working directory /work, output /out/main). */
  compileCommand(request: RunRequest): CompileCommand;
  /** The files as the compiler gets them, when it needs them adjusted; default: the request's own. */
  compileFiles?(files: RunRequest["files"]): RunRequest["files"];
  parseDiagnostics(stdout: string, stderr: string): ParsedDiagnostics;
}

/**
 * Removes the sandbox's own paths from compiler and linker text: the workspace prefix, the binary's
 * output folder, and the temporary objects the compiler drivers make in /tmp.
 */
export function hideSandboxPaths(text: string): string {
  return text
    .replace(/\/work\//g, "")
    .replace(/\/tmp\/[A-Za-z0-9._/-]+\.o\b/g, "(object file)")
    .replace(/\/tmp\/[A-Za-z0-9._-]+/g, "(temporary file)")
    .replace(/\/out\//g, "");
}
