/**
 * NODE ONLY. `npm run check`: every deck through a list of checks; each problem printed as
 * `content/<deck>/index.adoc:LINE: message`.
 *
 * A check receives the loaded deck (converted HTML, metadata, Asciidoctor's problems) and returns more
 * problems. The first check is the conversion itself; the second compiles and runs every runnable block
 * (./runnable-check.ts; skipped with `--no-run`).
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import type { Deck, DeckProblem } from "../types";
import { INDEX_FILE, problemAt } from "./convert";
import { contentDir, courseFolders, listDeckNames, loadDeckFolder } from "./decks";
import { runnableCheck } from "./runnable-check";

export interface CheckTarget {
  /** Folder name (URL segment). */
  name: string;
  /** Absolute deck folder. */
  dir: string;
  /** The content folder it belongs to. */
  contentDir: string;
}

export interface DeckCheck {
  name: string;
  run(deck: Deck, target: CheckTarget): Promise<DeckProblem[]>;
  /** Frees what the check holds across decks (the runnable check's sandbox engine). */
  close?(): Promise<void>;
  /** A line for the end of the run, e.g. how many blocks were run (undefined: nothing to say). */
  summary?(): string | undefined;
}

/** Checks in the order they run. */
export const deckChecks: DeckCheck[] = [
  {
    // Conversion with Asciidoctor.js: any warning or error (unresolved include, invalid block, missing
    // attribute, no index.adoc, unreadable file) is a problem; the site still presents a deck with warnings,
    // but the check fails on them so CI catches them. Notes (what the site does differently) never fail.
    name: "asciidoctor",
    run: async (deck) => deck.problems,
  },
  // Compile and run every runnable block in the sandbox; compare with its expectation.
  runnableCheck(),
];

/** Checks that `--no-run` leaves out. */
export const RUNNING_CHECKS = new Set(["runnable"]);

export interface CheckResult {
  target: CheckTarget;
  problems: DeckProblem[];
}

/** Decks named by command-line paths: a deck folder, its index.adoc, or a content folder of decks. */
export async function resolveTargets(args: string[]): Promise<{ targets: CheckTarget[]; problems: DeckProblem[] }> {
  const targets: CheckTarget[] = [];
  const problems: DeckProblem[] = [];
  const addContentDir = async (root: string) => {
    // Folders without index.adoc that decks use (shared snippets, attributes, images) are course folders.
    const names = await listDeckNames(root);
    const decks = [];
    for (const name of names) decks.push(await loadDeckFolder(name, path.join(root, name), root));
    const shared = courseFolders(decks, root);
    for (const name of names) {
      const isDeck = await fs.stat(path.join(root, name, INDEX_FILE)).then(() => true, () => false);
      if (isDeck || !shared.has(name)) targets.push({ name, dir: path.join(root, name), contentDir: root });
    }
  };
  if (args.length === 0) {
    await addContentDir(contentDir());
    return { targets, problems };
  }
  for (const arg of args) {
    const abs = path.resolve(arg);
    const st = await fs.stat(abs).catch((err: NodeJS.ErrnoException) => err);
    if (st instanceof Error) {
      problems.push(problemAt(process.cwd(), abs, `cannot check: ${st.code === "ENOENT" ? "no such file or directory" : st.message}`));
      continue;
    }
    if (st.isFile()) {
      const dir = path.dirname(abs);
      targets.push({ name: path.basename(dir), dir, contentDir: path.dirname(dir) });
      continue;
    }
    const hasIndex = await fs.stat(path.join(abs, INDEX_FILE)).then(() => true, () => false);
    let isContentDir = false;
    if (!hasIndex) {
      for (const name of await listDeckNames(abs)) {
        if (await fs.stat(path.join(abs, name, INDEX_FILE)).then(() => true, () => false)) isContentDir = true;
      }
    }
    if (isContentDir) await addContentDir(abs);
    else targets.push({ name: path.basename(abs), dir: abs, contentDir: path.dirname(abs) });
  }
  return { targets, problems };
}

/** Run every check on one deck. A check that throws is reported as a problem, never a crash. */
export async function checkDeck(target: CheckTarget, checks: DeckCheck[] = deckChecks): Promise<CheckResult> {
  const deck = await loadDeckFolder(target.name, target.dir, target.contentDir);
  const problems: DeckProblem[] = [];
  for (const check of checks) {
    try {
      problems.push(...(await check.run(deck, target)));
    } catch (err) {
      problems.push(problemAt(target.contentDir, path.join(target.dir, INDEX_FILE), `check "${check.name}" failed: ${(err as Error).message ?? err}`));
    }
  }
  return { target, problems };
}

/** `file:LINE: message`, with the file relative to the working directory (as editors and CI expect). */
export function formatForTerminal(p: DeckProblem, cwd: string = process.cwd()): string {
  const rel = path.relative(cwd, p.file);
  const file = rel && !rel.startsWith("..") ? rel : p.file;
  return `${file}${p.line ? `:${p.line}` : ""}: ${p.severity === "info" ? "note" : p.severity}: ${p.message}`;
}
