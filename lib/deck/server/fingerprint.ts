/**
 * NODE ONLY. What a deck's conversion depends on: every file in its folder, plus the files outside it that
 * its last conversion read (shared includes, docinfo; `Deck.dependencies`, recorded by ./course-files.ts).
 *
 * Two levels, so a request for an unchanged deck costs one directory walk with `lstat`s:
 *   statKey      paths + sizes + mtimes: cheap; equal keys mean "unchanged"
 *   contentHash  sha256 over paths + bytes: computed only when the stat key moved; the cache is keyed by it,
 *                so touching a file without changing it does not re-run Asciidoctor.
 */
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";

export interface DeckFile {
  /** Path relative to the deck folder, `/`-separated. */
  rel: string;
  size: number;
  mtimeMs: number;
  /** Set when the entry could not be examined (permissions…); the entry still counts. */
  error?: string;
}

/** Limits that keep a runaway folder (a build tree dropped into content/) from stalling a request. */
const MAX_FILES = 2000;
const MAX_DEPTH = 8;

/** Every regular file under `dir` (dot-entries and node_modules skipped), sorted by path. */
export async function listDeckFiles(dir: string): Promise<DeckFile[]> {
  const out: DeckFile[] = [];
  async function walk(abs: string, rel: string, depth: number): Promise<void> {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await fs.readdir(abs, { withFileTypes: true });
    } catch (err) {
      out.push({ rel: rel || ".", size: -1, mtimeMs: -1, error: (err as NodeJS.ErrnoException).code ?? String(err) });
      return;
    }
    for (const entry of entries) {
      if (out.length >= MAX_FILES) return;
      if (entry.name.startsWith(".") || entry.name === "node_modules") continue;
      const childAbs = path.join(abs, entry.name);
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      try {
        // stat (not lstat): a symlinked file counts with its target's content.
        const st = await fs.stat(childAbs);
        if (st.isDirectory()) {
          if (depth < MAX_DEPTH) await walk(childAbs, childRel, depth + 1);
        } else if (st.isFile()) {
          out.push({ rel: childRel, size: st.size, mtimeMs: st.mtimeMs });
        }
      } catch (err) {
        out.push({ rel: childRel, size: -1, mtimeMs: -1, error: (err as NodeJS.ErrnoException).code ?? String(err) });
      }
    }
  }
  await walk(dir, "", 0);
  return out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/** Files given by absolute path (a deck's dependencies outside its folder); a missing one counts as missing. */
export async function statFiles(files: string[]): Promise<DeckFile[]> {
  return Promise.all(
    files.map(async (file) => {
      try {
        const st = await fs.stat(file);
        return { rel: file, size: st.size, mtimeMs: st.mtimeMs };
      } catch (err) {
        return { rel: file, size: -1, mtimeMs: -1, error: (err as NodeJS.ErrnoException).code ?? String(err) };
      }
    }),
  );
}

export function statKey(files: DeckFile[]): string {
  return files.map((f) => `${f.rel}\0${f.size}\0${f.mtimeMs}\0${f.error ?? ""}`).join("\n");
}

/** sha256 over the paths and bytes of the files (unreadable files contribute their error code). */
export async function contentHash(dir: string, files: DeckFile[], salt = ""): Promise<string> {
  const hash = createHash("sha256");
  hash.update(salt);
  for (const f of files) {
    hash.update(`\0${f.rel}\0`);
    if (f.error) {
      hash.update(`error:${f.error}`);
      continue;
    }
    try {
      hash.update(await fs.readFile(path.resolve(dir, f.rel)));
    } catch (err) {
      hash.update(`error:${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  return hash.digest("hex");
}
