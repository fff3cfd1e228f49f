/**
 * NODE ONLY. `npm run check`'s "runnable" check: compile and run every runnable block of a deck through the
 * real sandbox engine and hold it to its expectation (docs/authoring.md, "What npm run check demands"):
 *
 *   expected output, exact     stdout equals it (trailing whitespace ignored); the program exits 0
 *   expected output, pattern   stdout matches it (lib/runnable.ts matchesPattern); the program exits 0
 *   %compile-error             compilation fails (and, with expect-error=TEXT, an error mentions TEXT)
 *   nothing                    it compiles and exits 0
 *
 * `exit=N` / `exit=SIGSEGV` on the block changes "exits 0". Hitting any limit is a failure. stderr is not
 * compared. A failure is a deck problem at the block's file and line; its message carries the evidence
 * (a diff, the pattern and the output, or the compiler's diagnostics).
 */
import path from "node:path";
import { KERNEL_SUCCESS_MESSAGE, RunRequestSchema, type RunEvent } from "../../protocol";
import { blockRequest, checkOutput, outputDiff, splitHiddenLines, type RunnableBlock } from "../../runnable";
import type { Engine } from "../../../sandbox";
import type { Deck, DeckProblem } from "../types";
import type { CheckTarget, DeckCheck } from "./check";
import { problemAt } from "./convert";
import { CourseConfigError, readCourseConfig } from "./course";
import { loadDeck, type LoadOptions } from "./decks";
import { runnableBlocksFromHtml } from "./runnable";

/** A deck's runnable blocks and its problems (the runnable ones included), from the loader's cached conversion. */
export async function collectRunnableBlocks(
  deckName: string,
  opts: LoadOptions = {},
): Promise<{ blocks: RunnableBlock[]; problems: DeckProblem[] } | null> {
  const deck = await loadDeck(deckName, opts);
  if (!deck) return null;
  return { blocks: runnableBlocksFromHtml(deck.slidesHtml), problems: deck.problems };
}

/** What one run of a block produced. */
export interface BlockOutcome {
  compiled: boolean;
  /** The compiler's rendered diagnostics (errors and warnings), when it produced any. */
  diagnostics: string;
  errorDiagnostics: Array<{ code?: string; message: string }>;
  stdout: string;
  stderr: string;
  exit: Extract<RunEvent, { type: "exit" }> | null;
  error: Extract<RunEvent, { type: "error" }> | null;
}

/** The run request a block makes: hidden-line markers removed, as the browser sends it. */
export function requestFor(block: RunnableBlock) {
  const files = block.files.map((f) => ({ name: f.name, content: splitHiddenLines(f.source, block.language).code }));
  // Always close stdin: a program that reads without a `stdin=` gets end-of-file, not a hang.
  return RunRequestSchema.parse(blockRequest(block, files, block.stdin ?? ""));
}

export async function runBlock(engine: Engine, block: RunnableBlock): Promise<BlockOutcome> {
  const outcome: BlockOutcome = { compiled: false, diagnostics: "", errorDiagnostics: [], stdout: "", stderr: "", exit: null, error: null };
  const handle = engine.run(requestFor(block), (event) => {
    switch (event.type) {
      case "diagnostics":
        outcome.diagnostics += event.rendered;
        for (const d of event.items) if (d.severity === "error") outcome.errorDiagnostics.push({ code: d.code, message: d.message });
        break;
      case "compiled":
        outcome.compiled = event.ok;
        if (!event.ok && !outcome.diagnostics) outcome.diagnostics = [event.stderr, event.stdout].filter(Boolean).join("\n");
        break;
      case "stdout":
        outcome.stdout += event.data;
        break;
      case "stderr":
        outcome.stderr += event.data;
        break;
      case "exit":
        outcome.exit = event;
        break;
      case "error":
        outcome.error = event;
        break;
    }
  });
  await handle.done;
  return outcome;
}

const indent = (text: string, width = 4) =>
  text
    .replace(/\s+$/, "")
    .split("\n")
    .map((l) => " ".repeat(width) + l)
    .join("\n");

/** At most `max` lines, saying how many were left out. */
function head(text: string, max = 30): string {
  const lines = text.replace(/\s+$/, "").split("\n");
  return lines.length <= max ? lines.join("\n") : [...lines.slice(0, max), `… (${lines.length - max} more lines)`].join("\n");
}

function ending(exit: NonNullable<BlockOutcome["exit"]>): string {
  return exit.signal ? exit.signal : `exit code ${exit.exitCode}`;
}

/** Null when the block did what it promised; else what went wrong, with the evidence, in words. */
export function judge(block: RunnableBlock, o: BlockOutcome): string | null {
  if (o.error) return `the sandbox could not run it (${o.error.code}): ${o.error.message}`;
  const exit = o.exit;
  if (!exit) return "the run ended without an exit event";
  const expected = block.expected;

  if (expected?.kind === "compile-error") {
    if (o.compiled || exit.phase === "run") return "expected a compile error, but it compiled";
    if (exit.limit) return `expected a compile error, but the compiler hit a limit: ${exit.message}`;
    const needles = [...(expected.text ? [expected.text] : []), ...(expected.errors ?? [])];
    const missing = needles.filter((t) => !o.errorDiagnostics.some((d) => d.code?.includes(t) || d.message.includes(t)));
    if (missing.length > 0) {
      const what = missing.map((t) => `"${t}"`).join(", ");
      return `expected compile errors mentioning ${what}, but the errors were:\n${indent(head(o.diagnostics || o.errorDiagnostics.map((d) => d.message).join("\n")))}`;
    }
    return null;
  }

  if (!o.compiled || exit.phase === "compile") {
    return `does not compile (${exit.message}):\n${indent(head(o.diagnostics || "(no diagnostics)"))}`;
  }
  const problems: string[] = [];
  if (exit.limit) problems.push(`hit a limit: ${exit.message}`);
  else if (block.kernel) {
    // A kernel's exit status is QEMU's isa-debug-exit code; the engine says in words what it means.
    if (exit.message !== KERNEL_SUCCESS_MESSAGE) problems.push(`expected the kernel to exit with success, but: ${exit.message}`);
  } else {
    const want = block.exit ?? 0;
    const gotSignal = exit.signal;
    const ok = typeof want === "number" ? !gotSignal && exit.exitCode === want : gotSignal === want;
    if (!ok) problems.push(`expected ${typeof want === "number" ? `exit code ${want}` : want}, but it ended with ${ending(exit)} (${exit.message})`);
  }
  if (exit.truncated.stdout) problems.push("its output was cut off at the output limit");
  if (expected?.kind === "exact") {
    const why = checkOutput(expected, o.stdout);
    if (why) problems.push(`${why}:\n${indent(outputDiff(expected.text, o.stdout))}`);
  } else if (expected?.kind === "pattern") {
    const why = checkOutput(expected, o.stdout);
    if (why) problems.push(`${why}:\n  expected (pattern):\n${indent(expected.text)}\n  actual:\n${indent(head(o.stdout || "(no output)", 60))}`);
  }
  if (problems.length === 0) return null;
  // A failing run's stderr usually says why.
  if (o.stderr.trim() && problems.some((p) => !p.startsWith("output"))) problems.push(`stderr:\n${indent(head(o.stderr, 15))}`);
  return problems.join("\n  ");
}

/** Runs `work` over `items`, at most `limit` at once, results in input order. */
async function pool<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const k = next++;
      results[k] = await work(items[k]);
    }
  });
  await Promise.all(workers);
  return results;
}

export interface RunnableCheckOptions {
  /**
   * Makes the engine for a course (a content folder) on its first use (default: the real sandbox
   * with default limits, in the course's own images when its course.json names any).
   */
  createEngine?: (contentDir: string) => Promise<Engine> | Engine;
  /** Runs at once (default: the engine's concurrency). */
  concurrency?: number;
}

/** The check for `deckChecks`. It creates one engine on first use; `close()` shuts it down. */
export function runnableCheck(options: RunnableCheckOptions = {}): DeckCheck & { close(): Promise<void> } {
  // One engine per course: each course runs in its own images.
  const engines = new Map<string, Promise<Engine>>();
  let ran = 0;
  let failed = 0;
  const getEngine = (contentDir: string) => {
    let engine = engines.get(contentDir);
    if (!engine) {
      engine = (async () => {
        if (options.createEngine) return options.createEngine(contentDir);
        const { createEngine } = await import("../../../sandbox");
        // A batch: every example waits its turn.
        return createEngine({ maxWaitSeconds: 3600, environments: readCourseConfig(contentDir).images });
      })();
      engines.set(contentDir, engine);
    }
    return engine;
  };
  return {
    name: "runnable",
    async run(deck: Deck, target: CheckTarget): Promise<DeckProblem[]> {
      const blocks = runnableBlocksFromHtml(deck.slidesHtml);
      if (blocks.length === 0) return [];
      let e: Engine;
      try {
        e = await getEngine(target.contentDir);
      } catch (error) {
        if (!(error instanceof CourseConfigError)) throw error;
        return [problemAt(target.contentDir, error.file, `${error.message.slice(error.file.length + 2)} (the course's runnable blocks were not run)`)];
      }
      const concurrency = options.concurrency ?? (await e.health()).maxConcurrent;
      const verdicts = await pool(blocks, concurrency, async (block) => judge(block, await runBlock(e, block)));
      const problems: DeckProblem[] = [];
      ran += blocks.length;
      blocks.forEach((block, k) => {
        const why = verdicts[k];
        if (!why) return;
        failed++;
        const file = path.join(path.dirname(target.dir), block.source.file);
        problems.push(problemAt(target.contentDir, file, `runnable block ${block.id} (${block.language}): ${why}`, block.source.line));
      });
      return problems;
    },
    summary() {
      return ran === 0 ? undefined : `runnable blocks: ${ran} compiled and run, ${failed === 0 ? "all as expected" : `${failed} failed`}`;
    },
    async close() {
      const all = [...engines.values()];
      engines.clear();
      for (const engine of all) await (await engine.catch(() => null))?.shutdown();
    },
  };
}
