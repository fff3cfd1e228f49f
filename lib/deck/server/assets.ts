/**
 * NODE ONLY. Files served to the browser, never anything outside the folder they are served from: no `..`, no
 * absolute paths, no dot-files, and the real path (symlinks resolved) must stay inside the folder's real path.
 *   /decks/<name>/assets/…   a deck folder's files (images, videos, downloads, custom CSS)
 *   /course-files/…          any file of the course folder (CONTENT_DIR): shared images, CSS, themes
 *   /vendor/<package>/…      the parts of npm packages slides load: reveal.js themes and fonts, MathJax,
 *                            highlight.js styles, Font Awesome (so a deck never needs a CDN)
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
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".ttf": "font/ttf",
  ".otf": "font/otf",
  ".eot": "application/vnd.ms-fontobject",
  ".html": "text/plain; charset=utf-8",
};

export interface DeckAsset {
  file: string;
  size: number;
  mtimeMs: number;
  contentType: string;
}

/** A file under `dir` named by URL path segments, or null when it is missing or not allowed. */
export async function resolveInside(dir: string, segments: string[]): Promise<DeckAsset | null> {
  if (segments.length === 0) return null;
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

/** The file for `/decks/<name>/assets/<segments…>`, or null (→ 404) when it is missing or not allowed. */
export async function resolveDeckAsset(name: string, segments: string[], root: string = contentDir()): Promise<DeckAsset | null> {
  const dir = await deckDir(name, root);
  if (!dir) return null;
  return resolveInside(dir, segments);
}

/** The file for `/course-files/<segments…>`: anything in the course folder (what decks may include or link). */
export function resolveCourseFile(segments: string[], root: string = contentDir()): Promise<DeckAsset | null> {
  return resolveInside(root, segments);
}

/** npm package → the folders of it the browser may load. */
const VENDOR: Record<string, string[]> = {
  "reveal.js": ["dist"],
  mathjax: ["es5"],
  "highlight.js": ["styles"],
  "@fortawesome/fontawesome-free": ["css", "webfonts"],
};

/** The file for `/vendor/<package>/<folder>/…` from node_modules, or null. */
export async function resolveVendorFile(segments: string[]): Promise<DeckAsset | null> {
  const scoped = segments[0]?.startsWith("@") ? 2 : 1;
  const pkg = segments.slice(0, scoped).join("/");
  const rest = segments.slice(scoped);
  if (!VENDOR[pkg]?.includes(rest[0] ?? "")) return null;
  // turbopackIgnore: node_modules is read at run time, not traced into the build.
  const root = path.join(/*turbopackIgnore: true*/ process.cwd(), "node_modules", ...pkg.split("/"));
  return resolveInside(root, rest);
}

/**
 * A reveal.js theme as the browser gets it: its web-font imports from Google are dropped (no third-party
 * request; the theme's font stacks fall back to local fonts). Everything else is the theme as shipped.
 */
export function withoutRemoteImports(css: string): string {
  return css.replace(/@import\s+url\(\s*["']?https?:\/\/[^)]*\)\s*;?/g, "/* remote font import removed: served offline */");
}

/** The HTTP response for a resolved file (404 when null). `immutable`: versioned package files cache long. */
export async function fileResponse(asset: DeckAsset | null, opts: { immutable?: boolean; transform?: (text: string) => string } = {}): Promise<Response> {
  if (!asset) return new Response("Not found", { status: 404, headers: { "content-type": "text/plain" } });
  const headers: Record<string, string> = {
    "content-type": asset.contentType,
    "last-modified": new Date(asset.mtimeMs).toUTCString(),
    "cache-control": opts.immutable ? "public, max-age=86400" : "public, max-age=60",
    "x-content-type-options": "nosniff",
  };
  if (opts.transform) {
    const body = opts.transform(await fs.readFile(asset.file, "utf8"));
    return new Response(body, { headers });
  }
  const { createReadStream } = await import("node:fs");
  const { Readable } = await import("node:stream");
  const body = Readable.toWeb(createReadStream(asset.file)) as unknown as ReadableStream<Uint8Array>;
  return new Response(body, { headers: { ...headers, "content-length": String(asset.size) } });
}
