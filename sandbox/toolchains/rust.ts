/**
 * Rust with Debian's rustc-web in /usr (rustup's toolchain under /root is out of the sandbox user's
 * reach). main.rs is the crate root; `mod x;` finds x.rs or x/mod.rs beside it in /work.
 * The curated crates (libc, nix, rand, …; ./rust-crates.ts) are prebuilt and offered with --extern,
 * read-only at /crates. Diagnostics come from --error-format=json, one JSON object per line on
 * stderr, each carrying rustc's own `rendered` text; a crate that is not offered gets a help
 * naming the ones that are.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Diagnostic, ProgramRunRequest as RunRequest } from "../../lib/protocol";
import { CRATES_SANDBOX_DIR, describeCrates, externArgs, loadCrates, type CratesManifest } from "./rust-crates";
import { BINARY_NAME, COMPILE_OUTPUT_DIR, hideSandboxPaths, type CompileCommand, type ParsedDiagnostics, type Toolchain } from "./toolchain";

const run = promisify(execFile);

export const DEFAULT_EDITION = "2021";

export interface RustSpan {
  file_name: string;
  line_start: number;
  line_end: number;
  column_start: number;
  column_end: number;
  is_primary: boolean;
}
export interface RustDiagnostic {
  $message_type?: string;
  message: string;
  code: { code: string } | null;
  level: string;
  spans: RustSpan[];
  rendered: string | null;
}

/** Names a path may start with that are never a missing crate. */
const NOT_CRATES = new Set(["std", "core", "alloc", "crate", "self", "super", "proc_macro", "test"]);

export class RustToolchain implements Toolchain {
  readonly language = "rust" as const;
  readonly name = "rustc";
  /** The prebuilt crates, once detectVersion() found them current; null: plain std only. */
  crates: CratesManifest | null = null;
  /** Why there are no crates, for health. */
  cratesProblem: string | undefined;

  constructor(
    readonly binary = "/usr/bin/rustc",
    /** Where scripts/build-crates.ts built the crates; undefined: its default. */
    private readonly cratesTargetDir?: string,
  ) {}

  get versionCommand(): string[] {
    return [this.binary, "--version"];
  }

  /** "rustc 1.96.0 (ac68faa20 2026-05-25) (built from a source tarball)" → "1.96.0 (ac68faa20 2026-05-25)" */
  parseVersion(stdout: string): string {
    return stdout.trim().replace(/^rustc /, "").replace(/ \(built from a source tarball\)$/, "");
  }

  async detectVersion(): Promise<string> {
    const { stdout } = await run(this.binary, ["--version"], { env: { PATH: "/usr/bin:/bin" } as unknown as NodeJS.ProcessEnv });
    const version = this.parseVersion(stdout);
    this.adoptVersion(version);
    return version;
  }

  /** The prebuilt crates fit this rustc version, or say why not (also for a container's rustc of that version). */
  adoptVersion(version: string): void {
    const crates = loadCrates(version, this.cratesTargetDir);
    if ("manifest" in crates) {
      this.crates = crates.manifest;
      this.cratesProblem = undefined;
    } else {
      this.crates = null;
      this.cratesProblem = crates.problem;
    }
  }

  compileCommand(request: RunRequest): CompileCommand {
    let edition = DEFAULT_EDITION;
    let release = false;
    for (const flag of request.flags) {
      const m = /^--edition=(\d{4})$/.exec(flag);
      if (m) edition = m[1]!;
      if (flag === "--release") release = true;
      if (flag === "--debug") release = false;
    }
    return {
      program: this.binary,
      args: [
        `--edition=${edition}`,
        "--error-format=json",
        "--color=never",
        "--crate-type=bin",
        "--crate-name=main",
        // /usr/bin/cc is a symlink through /etc/alternatives, and the sandbox has no /etc.
        "-C", "linker=gcc",
        // Faster links, measured (bench/languages.ts): std's debug information is most of a 10 MB
        // binary and of the link's work, and the program has none of its own (no -g). Without it
        // the binary is 0.5 MB and a hello with rand compiles in about 70 % of the time. (gold
        // would save more, but rustc warns about it on every run.)
        "-C", "strip=debuginfo",
        ...(release ? ["-C", "opt-level=3", "-C", "debug-assertions=off"] : ["-C", "opt-level=0"]),
        ...(this.crates ? externArgs(this.crates) : []),
        "-o", `${COMPILE_OUTPUT_DIR}/${BINARY_NAME}`,
        "main.rs",
      ],
      ...(this.crates ? { readOnlyBinds: [{ host: this.crates.depsDir, sandbox: CRATES_SANDBOX_DIR, shared: true }] } : {}),
    };
  }

  parseDiagnostics(stdout: string, stderr: string): ParsedDiagnostics {
    const items: Diagnostic[] = [];
    const rendered: string[] = [];
    const other: string[] = [];
    for (const line of stderr.split("\n")) {
      const d = line.startsWith("{") ? tryParse(line) : null;
      if (!d) {
        if (line.trim()) other.push(line);
        continue;
      }
      if (d.$message_type && d.$message_type !== "diagnostic") continue;
      if (d.rendered) rendered.push(hideSandboxPaths(d.rendered));
      const item = rustcDiagnosticItem(d, hideSandboxPaths);
      if (item) items.push(item);
      else if (d.level === "error" && d.message.startsWith("linking with")) items.push(...linkerItems(hideSandboxPaths(d.rendered ?? d.message)));
      const help = item ? this.missingCrateHelp(d, item) : null;
      if (help) {
        items.push(help);
        rendered.push(`help: ${help.message}\n\n`);
      }
    }
    const otherText = hideSandboxPaths(other.join("\n"));
    return {
      items,
      rendered: rendered.join("") + (otherText ? `${otherText}\n` : ""),
      stdout: hideSandboxPaths(stdout),
      stderr: otherText ? `${otherText}\n` : "",
    };
  }

  /**
   * For "cannot find module or crate `tokio`", "unresolved import `tokio`", "can't find crate for
   * `tokio`": a help naming the crates a run can use, at the error's place. Null for anything else
   * and for names that are one of them (or std's).
   */
  private missingCrateHelp(d: RustDiagnostic, at: Diagnostic): Diagnostic | null {
    if (d.level !== "error" || !["E0432", "E0433", "E0463"].includes(d.code?.code ?? "")) return null;
    const name = /(?:module or crate|unlinked crate|crate for|unresolved import) `([A-Za-z_][A-Za-z0-9_]*)/.exec(d.message)?.[1];
    if (!name || NOT_CRATES.has(name)) return null;
    const crates = this.crates?.crates ?? [];
    if (crates.some((c) => c.name === name)) return null;
    const offered = crates.length
      ? `the crates available here are ${describeCrates(crates)}`
      : "no crates beyond the standard library are available on this server";
    return {
      file: at.file,
      line: at.line,
      column: at.column,
      severity: "help",
      message: `if \`${name}\` is meant to be a crate: it is not one runs can use (they have no network); ${offered}`,
    };
  }
}

/**
 * One rustc JSON diagnostic as a protocol item, at its primary span; `fileName` maps the path
 * rustc saw to the one the user knows. Null for a diagnostic without a span ("aborting due to …",
 * which stays in the rendered text). Also used for kernel builds through cargo.
 */
export function rustcDiagnosticItem(
  d: Pick<RustDiagnostic, "message" | "code" | "level" | "spans">,
  fileName: (path: string) => string,
): Diagnostic | null {
  const span = d.spans.find((s) => s.is_primary) ?? d.spans[0];
  if (!span) return null;
  const item: Diagnostic = {
    file: fileName(span.file_name),
    line: span.line_start,
    column: span.column_start,
    endLine: span.line_end,
    endColumn: span.column_end,
    severity: rustSeverity(d.level),
    message: d.message,
  };
  if (d.code?.code) item.code = d.code.code;
  return item;
}

/**
 * A failed link ("linking with `gcc` failed") as one item per missing or doubly defined symbol, from the
 * linker's lines rustc quotes. rustc names no source line for them (it links without debug information),
 * so the items carry none; the symbol is in the message.
 */
export function linkerItems(rendered: string): Diagnostic[] {
  const items: Diagnostic[] = [];
  for (const m of rendered.matchAll(/(undefined reference to|multiple definition of) `([^'`]+)'/g)) {
    const message = `${m[1]} \`${m[2]}'`;
    if (!items.some((i) => i.message === message)) items.push({ file: "", line: 0, column: 0, severity: "error", message, code: "ld" });
  }
  if (items.length === 0) {
    const first = /^error: (linking with .*)$/m.exec(rendered)?.[1] ?? "linking failed";
    items.push({ file: "", line: 0, column: 0, severity: "error", message: first, code: "ld" });
  }
  return items;
}

/** A rustc diagnostic level as the protocol's severity (also used for kernel builds through cargo). */
export function rustSeverity(level: string): Diagnostic["severity"] {
  if (level === "warning") return "warning";
  if (level === "note" || level === "failure-note") return "note";
  if (level === "help") return "help";
  return "error";
}

function tryParse(line: string): RustDiagnostic | null {
  try {
    const value = JSON.parse(line) as RustDiagnostic;
    return value && typeof value === "object" && Array.isArray(value.spans) ? value : null;
  } catch {
    return null;
  }
}
