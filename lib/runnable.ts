/**
 * A runnable example on a slide, as the deck loader describes it and the browser and
 * `npm run check` consume it. Browser-safe: zod only.
 */
import { z } from "zod";
import { FileNameSchema, KernelNameSchema, LanguageSchema, type Language } from "./protocol";

export const RunnableFileSchema = z.object({
  name: FileNameSchema,
  /** The source as the author wrote it, hidden-line markers included. */
  source: z.string(),
  /** Shown in the editor (false: compiled along, e.g. a header the slide does not show). */
  visible: z.boolean(),
});
export type RunnableFile = z.infer<typeof RunnableFileSchema>;

export const ExpectationSchema = z.discriminatedUnion("kind", [
  /** stdout must equal this (trailing whitespace of each line and of the whole ignored). */
  z.object({ kind: z.literal("exact"), text: z.string() }),
  /** stdout must match this pattern, line by line; see matchesPattern. */
  z.object({ kind: z.literal("pattern"), text: z.string() }),
  /**
   * Compilation must fail; optionally an error's code or message must contain `text`, and each of
   * `errors` (read from a `[.compile-error]` block: `error[E0382]: …` gives "E0382") must be some
   * error's code or be contained in its message.
   */
  z.object({ kind: z.literal("compile-error"), text: z.string().optional(), errors: z.array(z.string()).optional() }),
]);
export type Expectation = z.infer<typeof ExpectationSchema>;

export const RunnableBlockSchema = z.object({
  /** Stable within the deck: the block's id attribute, or its position ("run-3"). */
  id: z.string(),
  language: LanguageSchema,
  /** The file the editor shows first and the one edits go to. */
  mainFile: z.string(),
  files: z.array(RunnableFileSchema).min(1),
  flags: z.array(z.string()).default([]),
  args: z.array(z.string()).default([]),
  stdin: z.string().optional(),
  expected: ExpectationSchema.optional(),
  /** Editor height in lines; the runner fits the slide when absent. */
  lines: z.number().int().positive().optional(),
  readOnly: z.boolean().default(false),
  /**
   * How the program must end for `npm run check`: an exit code, or the name of the signal that ends it
   * (e.g. "SIGSEGV" for a crash demo). Absent: 0. Set with the block attribute `exit=`.
   */
  exit: z.union([z.number().int(), z.string().regex(/^SIG[A-Z0-9]+$/)]).optional(),
  /**
   * The kernel lab: the example's files replace lesson files of this kernel profile (e.g. "osbe"),
   * and a run builds the kernel and boots it in QEMU; the serial console is the output.
   */
  kernel: KernelNameSchema.optional(),
  /** Where the block stands, for messages: deck file and line. */
  source: z.object({ file: z.string(), line: z.number().int() }),
});
export type RunnableBlock = z.infer<typeof RunnableBlockSchema>;

/**
 * Hidden lines: compiled but not shown until the reader asks.
 * Rust follows rustdoc: a line `# code` (or a lone `#`) is hidden; `##` stands for a literal `#`.
 * C, C++ and assembly use `~ code` (or a lone `~`): no line of theirs starts with a tilde and a
 * space in practice.
 */
export const HIDDEN_MARKER: Record<Language, string> = { rust: "#", c: "~", cpp: "~", asm: "~" };

/**
 * The ACE mode for one file of an example, by its extension (a C run may hold max.asm and f.s):
 * NASM → assembly_x86, GNU as → gas (components/runner/ace-mode-gas.ts), C and C++ → c_cpp.
 */
export function aceModeFor(fileName: string, language: Language): string {
  if (/\.(asm|nasm|inc)$/i.test(fileName)) return "ace/mode/assembly_x86";
  if (/\.[sS]$/.test(fileName)) return "ace/mode/gas";
  if (/\.(c|h|cpp|cc|cxx|hpp|hh|hxx)$/.test(fileName)) return "ace/mode/c_cpp";
  if (/\.rs$/.test(fileName)) return "ace/mode/rust";
  return language === "rust" ? "ace/mode/rust" : language === "asm" ? "ace/mode/assembly_x86" : "ace/mode/c_cpp";
}

export interface SplitSource {
  /** The code as compiled: markers removed. */
  code: string;
  /** 0-based line numbers of the hidden lines. */
  hiddenLines: number[];
}

export function splitHiddenLines(source: string, language: Language): SplitSource {
  const marker = HIDDEN_MARKER[language];
  const hiddenLines: number[] = [];
  const lines = source.split("\n").map((line, row) => {
    const trimmed = line.trimStart();
    const indent = line.slice(0, line.length - trimmed.length);
    if (language === "rust" && trimmed.startsWith("##")) return indent + trimmed.slice(1);
    if (trimmed === marker) {
      hiddenLines.push(row);
      return "";
    }
    if (trimmed.startsWith(`${marker} `)) {
      hiddenLines.push(row);
      return indent + trimmed.slice(2);
    }
    return line;
  });
  return { code: lines.join("\n"), hiddenLines };
}

/** Groups sorted row numbers into [first, last] runs, for folding them away in an editor. */
export function lineRuns(rows: number[]): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (const row of [...rows].sort((a, b) => a - b)) {
    const last = runs.at(-1);
    if (last && row === last[1] + 1) last[1] = row;
    else runs.push([row, row]);
  }
  return runs;
}

/** Compares program output with an expectation; returns null when it holds, else why not. */
export function checkOutput(expected: Expectation, stdout: string): string | null {
  const normalise = (text: string) =>
    text
      .split("\n")
      .map((l) => l.trimEnd())
      .join("\n")
      .trimEnd();
  const actual = normalise(stdout);
  if (expected.kind === "exact") {
    return actual === normalise(expected.text) ? null : "output differs from the expected output";
  }
  if (expected.kind === "pattern") {
    return matchesPattern(normalise(expected.text), actual) ? null : "output does not match the expected pattern";
  }
  return "expected a compile error, but the program compiled";
}

/**
 * The pattern form for nondeterministic output, line by line:
 *   `...`         on a line of its own: any number of lines (also none)
 *   `{{ANY}}`     within a line: any text
 *   `{{NUM}}`     within a line: an integer
 *   `{{HEX}}`     within a line: a hexadecimal number, with or without 0x (a pointer printed with %p)
 *   `{{SORTED}}`  as the first line: compare the remaining lines as a multiset (any order)
 * Every other character matches itself.
 */
export function matchesPattern(pattern: string, actual: string): boolean {
  let patternLines = pattern.split("\n");
  let actualLines = actual.split("\n");
  if (patternLines[0]?.trim() === "{{SORTED}}") {
    patternLines = patternLines.slice(1).sort();
    actualLines = [...actualLines].sort();
    // In any-order mode every line must find its partner; `...` makes no sense here.
    if (patternLines.length !== actualLines.length) return false;
    const used = new Set<number>();
    return patternLines.every((p) => {
      const re = lineRegExp(p);
      const index = actualLines.findIndex((a, i) => !used.has(i) && re.test(a));
      if (index < 0) return false;
      used.add(index);
      return true;
    });
  }
  const body = patternLines
    .map((p) => (p.trim() === "..." ? "(?:[^\\n]*\\n)*?" : `${lineRegExp(p).source.slice(1, -1)}\\n`))
    .join("");
  return new RegExp(`^${body}$`).test(`${actualLines.join("\n")}\n`);
}

function lineRegExp(patternLine: string): RegExp {
  const escaped = patternLine
    .split(/(\{\{ANY\}\}|\{\{NUM\}\}|\{\{HEX\}\})/)
    .map((part) =>
      part === "{{ANY}}"
        ? "[^\\n]*"
        : part === "{{NUM}}"
          ? "-?\\d+"
          : part === "{{HEX}}"
            ? "(?:0[xX])?[0-9a-fA-F]+"
            : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"),
    )
    .join("");
  return new RegExp(`^${escaped}$`);
}

/** Hidden lines kept out of the editor: they go back in before visible row `before` when the code runs. */
export interface HiddenGroup {
  before: number;
  lines: string[];
}

/** Splits compiled code into what the editor shows and the hidden groups around it. */
export function separateHidden(code: string, hiddenRows: number[]): { visible: string; groups: HiddenGroup[] } {
  const hidden = new Set(hiddenRows);
  const visible: string[] = [];
  const groups: HiddenGroup[] = [];
  code.split("\n").forEach((line, row) => {
    if (!hidden.has(row)) {
      visible.push(line);
      return;
    }
    const last = groups.at(-1);
    if (last && last.before === visible.length) last.lines.push(line);
    else groups.push({ before: visible.length, lines: [line] });
  });
  return { visible: visible.join("\n"), groups };
}

/**
 * Puts the hidden groups back into the (possibly edited) visible code. `rowOf[fullRow]` is the
 * visible row a line of the compiled file came from, or null for a hidden line: diagnostics,
 * which name compiled lines, are mapped back with it.
 */
export function mergeHidden(visible: string, groups: HiddenGroup[]): { code: string; rowOf: Array<number | null> } {
  const visibleLines = visible.split("\n");
  const lines: string[] = [];
  const rowOf: Array<number | null> = [];
  const sorted = [...groups].sort((a, b) => a.before - b.before);
  let g = 0;
  const flushUpTo = (row: number) => {
    while (g < sorted.length && sorted[g].before <= row) {
      for (const line of sorted[g].lines) {
        lines.push(line);
        rowOf.push(null);
      }
      g++;
    }
  };
  visibleLines.forEach((line, row) => {
    flushUpTo(row);
    lines.push(line);
    rowOf.push(row);
  });
  flushUpTo(Number.POSITIVE_INFINITY);
  return { code: lines.join("\n"), rowOf };
}

/**
 * A compact line diff of two outputs (trailing whitespace ignored, as checkOutput does):
 * ` ` common line, `-` only expected, `+` only actual, under `--- expected` / `+++ actual`.
 * Long runs of common lines are elided to `…`. Quadratic in the line counts: meant for slide-sized output.
 */
export function outputDiff(expected: string, actual: string, context = 2): string {
  const norm = (t: string) => (t.replace(/\s+$/, "") === "" ? [] : t.replace(/\s+$/, "").split("\n").map((l) => l.trimEnd()));
  const a = norm(expected);
  const b = norm(actual);
  if (a.length * b.length > 4_000_000) {
    return ["--- expected", ...a.map((l) => `-${l}`), "+++ actual", ...b.map((l) => `+${l}`)].join("\n");
  }
  // Longest common subsequence table, from the end.
  const lcs = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const ops: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      ops.push(` ${a[i++]}`);
      j++;
    } else if (i < a.length && (j === b.length || lcs[i + 1][j] >= lcs[i][j + 1])) ops.push(`-${a[i++]}`);
    else ops.push(`+${b[j++]}`);
  }
  // Keep `context` common lines around each change (all of them when nothing changed).
  const changed = ops.some((op) => op[0] !== " ");
  const keep = ops.map(() => !changed);
  ops.forEach((op, k) => {
    if (op[0] === " ") return;
    for (let d = Math.max(0, k - context); d <= Math.min(ops.length - 1, k + context); d++) keep[d] = true;
  });
  const out = ["--- expected", "+++ actual"];
  let elided = false;
  ops.forEach((op, k) => {
    if (keep[k]) {
      out.push(op);
      elided = false;
    } else if (!elided) {
      out.push(" …");
      elided = true;
    }
  });
  return out.join("\n");
}

/**
 * The errors a `[.compile-error]` block lists, as checkable needles: `error[E0382]: …` → "E0382",
 * `error: expected ';'` or `main.c:3:5: error: expected ';'` → "expected ';'". Other lines are ignored.
 */
export function compileErrorNeedles(text: string): string[] {
  const needles: string[] = [];
  for (const line of text.split("\n")) {
    const coded = /^\s*error\[([A-Z]\d{4})\]/.exec(line);
    if (coded) {
      needles.push(coded[1]);
      continue;
    }
    const plain = /(?:^|:\s*)error:\s*(.+?)\s*$/.exec(line);
    // rustc's closing "aborting due to N previous errors" is a summary, not one of the errors.
    if (plain && !/^aborting due to/.test(plain[1])) needles.push(plain[1]);
  }
  return needles;
}

/** The run request a block makes with the given files (hidden-line markers already removed). */
export function blockRequest(block: RunnableBlock, files: Array<{ name: string; content: string }>, stdin: string | undefined) {
  if (block.kernel) return { language: "kernel" as const, kernel: block.kernel, files };
  return { language: block.language, files, flags: block.flags, args: block.args, ...(stdin !== undefined ? { stdin } : {}) };
}
