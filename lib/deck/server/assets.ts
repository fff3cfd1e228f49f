/**
 * NODE ONLY. Files of a deck folder served to the browser (images, videos, downloads), never anything
 * outside the folder: no `..`, no absolute paths, no dot-files, and the real path (symlinks resolved) must
 * stay inside the deck's real folder.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { contentDir, deckDir } from "./decks";

const TYPES: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".svg": "image/svg+xml",
  ".webp": "image/webp",
  ".avif": "image/avif",
  ".ico": "image/x-icon",
  ".mp4": "video/mp4",
  ".webm": "video/webm",
  ".ogv": "video/ogg",
  ".mp3": "audio/mpeg",
  ".ogg": "audio/ogg",
  ".wav": "audio/wav",
  ".pdf": "application/pdf",
  ".txt": "text/plain; charset=utf-8",
  ".adoc": "text/plain; charset=utf-8",
  ".c": "text/plain; charset=utf-8",
  ".h": "text/plain; charset=utf-8",
  ".rs": "text/plain; charset=utf-8",
  ".s": "text/plain; charset=utf-8",
  ".sh": "text/plain; charset=utf-8",
  ".json": "application/json",
  ".csv": "text/csv; charset=utf-8",
};

export interface DeckAsset {
  file: string;
  size: number;
  mtimeMs: number;
  contentType: string;
}

/** The file for `/decks/<name>/assets/<segments…>`, or null (→ 404) when it is missing or not allowed. */
export async function resolveDeckAsset(name: string, segments: string[], root: string = contentDir()): Promise<DeckAsset | null> {
  const dir = await deckDir(name, root);
  if (!dir || segments.length === 0) return null;
  for (const s of segments) {
    if (!s || s === "." || s === ".." || s.startsWith(".") || s.includes("/") || s.includes("\\") || s.includes("\0")) return null;
  }
  const candidate = path.join(dir, ...segments);
  try {
    const [realDir, realFile] = await Promise.all([fs.realpath(dir), fs.realpath(candidate)]);
    if (!realFile.startsWith(realDir + path.sep)) return null;
    const st = await fs.stat(realFile);
    if (!st.isFile()) return null;
    const contentType = TYPES[path.extname(realFile).toLowerCase()] ?? "application/octet-stream";
    return { file: realFile, size: st.size, mtimeMs: st.mtimeMs, contentType };
  } catch {
    return null;
  }
}
