/**
 * NODE ONLY. The course: the decks in CONTENT_DIR, loaded through a content-addressed cache.
 *
 * Every call re-walks the deck folder (readdir + stat, cheap), so edits are picked up in production too;
 * Asciidoctor only runs when the bytes of some file in the folder changed.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { DECK_NAME, type Deck, type DeckSummary } from "../types";
import { convertDeck, EMPTY_LOOK, INDEX_FILE, problemAt, type ConvertedDeck } from "./convert";
import { isInside } from "./course-files";
import type { DeckExtension } from "./extensions";
import { contentHash, listDeckFiles, statFiles, statKey, type DeckFile } from "./fingerprint";

/** The content folder: `CONTENT_DIR` (server/index.ts makes it absolute), default `./content`. */
export function contentDir(): string {
  // turbopackIgnore: the folder is chosen at run time, not a file of the build (keeps Next from tracing the project).
  return path.resolve(/*turbopackIgnore: true*/ process.env.CONTENT_DIR ?? "content");
}

interface CacheState {
  /** deck folder → last stat key, the content hash it had, and the files outside the folder it depends on */
  stats: Map<string, { key: string; hash: string; dependencies: string[] }>;
  /** content hash → converted deck (insertion order = age; bounded) */
  decks: Map<string, ConvertedDeck>;
}
const CACHE = Symbol.for("osbyexample.deck.cache");
const MAX_CACHED = 200;

function cache(): CacheState {
  const g = globalThis as { [CACHE]?: CacheState };
  g[CACHE] ??= { stats: new Map(), decks: new Map() };
  return g[CACHE];
}

/** Forget everything (tests). */
export function clearDeckCache(): void {
  const c = cache();
  c.stats.clear();
  c.decks.clear();
}

export interface LoadOptions {
  contentDir?: string;
  extensions?: DeckExtension[];
}

/** Deck folder names in the content folder, sorted (prefix them with numbers to order a course). */
export async function listDeckNames(dir: string = contentDir()): Promise<string[]> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const names: string[] = [];
  for (const e of entries) {
    if (!DECK_NAME.test(e.name) || e.name === "node_modules") continue;
    if (e.isDirectory()) names.push(e.name);
    else if (e.isSymbolicLink()) {
      const st = await fs.stat(path.join(dir, e.name)).catch(() => null);
      if (st?.isDirectory()) names.push(e.name);
    }
  }
  return names.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}

/** Absolute folder of a deck, or null when the name is not a deck folder of the content folder. */
export async function deckDir(name: string, dir: string = contentDir()): Promise<string | null> {
  if (!DECK_NAME.test(name)) return null;
  const abs = path.join(dir, name);
  const st = await fs.stat(abs).catch(() => null);
  return st?.isDirectory() ? abs : null;
}

/**
 * Load one deck by folder name: converted HTML, reveal options, metadata and problems.
 * Returns null when there is no such folder (→ 404). A broken deck is returned with `problems`.
 */
export async function loadDeck(name: string, opts: LoadOptions = {}): Promise<Deck | null> {
  const root = opts.contentDir ?? contentDir();
  const dir = await deckDir(name, root);
  if (!dir) return null;
  return loadDeckFolder(name, dir, root, opts.extensions);
}

/** Load a deck from an explicit folder (used by `npm run check` for paths given on the command line). */
export async function loadDeckFolder(name: string, dir: string, root: string, extensions?: DeckExtension[]): Promise<Deck> {
  const c = cache();
  try {
    const files = await listDeckFiles(dir);
    const known = c.stats.get(dir);
    const salt = `${name}\0${root}\0`;
    const fingerprint = async (dependencies: string[], deckFiles: DeckFile[]) => {
      const outside = await statFiles(dependencies);
      const key = `${statKey(deckFiles)}\n\0\n${statKey(outside)}`;
      const hash = known && known.key === key ? known.hash : await contentHash(dir, [...deckFiles, ...outside], salt);
      return { key, hash, dependencies };
    };
    let state = await fingerprint(known?.dependencies ?? [], files);
    let converted = extensions ? undefined : c.decks.get(state.hash);
    if (!converted) {
      converted = await convertDeck({ name, dir, contentDir: root, extensions });
      // The conversion may have read other files than last time (an include added or removed): key by those.
      if (converted.dependencies.join("\0") !== state.dependencies.join("\0")) state = await fingerprint(converted.dependencies, files);
      if (!extensions) {
        c.decks.set(state.hash, converted);
        while (c.decks.size > MAX_CACHED) c.decks.delete(c.decks.keys().next().value!);
      }
    } else {
      // refresh its age
      c.decks.delete(state.hash);
      c.decks.set(state.hash, converted);
    }
    c.stats.set(dir, state);
    return { ...converted, contentHash: state.hash };
  } catch (err) {
    // Not expected (convertDeck reports instead of throwing), but one deck must never take the site down.
    return {
      name,
      title: name,
      slideCount: 0,
      problems: [problemAt(root, path.join(dir, INDEX_FILE), `cannot load deck: ${(err as Error).message ?? err}`)],
      slidesHtml: "",
      reveal: {},
      look: EMPTY_LOOK,
      dependencies: [],
      servedFiles: [],
      contentHash: "",
    };
  }
}

/**
 * Folders of the course that are not decks but hold files decks use (a `shared/` folder of snippets and
 * attribute files, a folder of images): folders without index.adoc that some deck reads or links into.
 */
export function courseFolders(decks: Pick<Deck, "dependencies">[], root: string = contentDir()): Set<string> {
  const folders = new Set<string>();
  for (const d of decks) {
    for (const file of d.dependencies) {
      if (isInside(root, file)) folders.add(path.relative(root, file).split(path.sep)[0]);
    }
  }
  return folders;
}

/** Is this a deck folder (it has index.adoc), rather than a course folder or a mistake? */
async function hasIndex(root: string, name: string): Promise<boolean> {
  return fs.stat(path.join(root, name, INDEX_FILE)).then(
    (st) => st.isFile(),
    () => false,
  );
}

/**
 * Every deck of the course with what the index shows; broken decks included, with their problems. A folder
 * without index.adoc is listed (as a problem) unless decks use files in it: then it is a course folder.
 */
export async function listDecks(opts: LoadOptions = {}): Promise<DeckSummary[]> {
  const root = opts.contentDir ?? contentDir();
  const names = await listDeckNames(root);
  const loaded: Deck[] = [];
  for (const name of names) {
    const deck = await loadDeck(name, { ...opts, contentDir: root });
    if (deck) loaded.push(deck); // else: vanished between readdir and load
  }
  const shared = courseFolders(loaded, root);
  const out: DeckSummary[] = [];
  for (const deck of loaded) {
    if (shared.has(deck.name) && !(await hasIndex(root, deck.name))) continue;
    const { slidesHtml: _html, reveal: _reveal, contentHash: _hash, look: _look, dependencies: _deps, servedFiles: _served, ...summary } = deck;
    out.push(summary);
  }
  return out;
}

/**
 * Are a deck's warnings and notes shown to readers (on the index and over the slides)? In `npm run dev` yes,
 * for the author; in production only with DECK_WARNINGS=show (students need not see them; `npm run check`
 * reports them either way).
 */
export function showDeckWarnings(): boolean {
  const setting = process.env.DECK_WARNINGS;
  if (setting === "show") return true;
  if (setting === "hide") return false;
  return process.env.NODE_ENV === "development";
}
