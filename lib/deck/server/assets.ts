/**
 * NODE ONLY. Files served to the browser, never anything outside the folder they are served from: no `..`, no
 * absolute paths, no dot-files, and the real path (symlinks resolved) must stay inside the folder's real path.
 *   /decks/<name>/assets/…   a deck folder's files that slides need (see below)
 *   /course-files/…          the same of the course folder (CONTENT_DIR): shared images, CSS, themes
 *   /vendor/<package>/…      the parts of npm packages slides load: reveal.js themes and fonts, MathJax,
 *                            highlight.js styles, Font Awesome (so a deck never needs a CDN)
 *
 * A deck folder also holds what students must not download: the AsciiDoc sources (notes, solutions in
 * comments), examples' sources, the author's own files. So a deck or course folder serves only
 *   - what slides need to show: images, audio, video, subtitles, fonts, stylesheets (SLIDE_FILE_TYPES);
 *   - files the author marks: those the slides link to (`link:handout.pdf[]`, `video::`, a docinfo's
 *     `<script src>`…) and those the deck lists in `:downloads:` (files, folders ending in `/`, `*`);
 *   - never a private file: a name beginning with `.` or `_`, or anything in a folder named `private`,
 *     also when linked or listed (the loader warns).
 * Every served file carries `Content-Security-Policy: sandbox`: opened directly, an SVG or HTML file runs
 * no script and has no origin, so it cannot act as the site. docs/authoring.md tells authors.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { FILE_CSP } from "../../web/security-headers";
import { contentDir, deckDir, listDeckNames, loadDeck } from "./decks";
import { isMarked, isPrivatePath, pathSegments } from "./served-files";

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

/** What slides need to show, served from any deck or course folder without being marked. */
export const SLIDE_FILE_TYPES: ReadonlySet<string> = new Set([
  // images
  ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".avif", ".ico",
  // audio, video, subtitles
  ".mp4", ".webm", ".ogv", ".mp3", ".ogg", ".wav", ".vtt",
  // fonts and stylesheets (a deck's theme and custom CSS, the fonts and images they name)
  ".woff", ".woff2", ".ttf", ".otf", ".eot", ".css",
]);

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

/**
 * The file for `/decks/<name>/assets/<segments…>`, or null (→ 404) when it is missing or not served: a file
 * slides need, or one the deck marks (links to, lists in `:downloads:`), never a private one.
 */
export async function resolveDeckAsset(name: string, segments: string[], root: string = contentDir()): Promise<DeckAsset | null> {
  const dir = await deckDir(name, root);
  if (!dir || isPrivatePath(segments)) return null;
  const asset = await resolveInside(dir, segments);
  if (!asset || !(await servedFrom(asset, dir))) return null;
  if (isSlideFile(asset)) return asset;
  const marks = (await loadDeck(name, { contentDir: root }))?.servedFiles ?? [];
  return isMarked([name, ...segments].join("/"), marks) ? asset : null;
}

/**
 * The file for `/course-files/<segments…>`: files of the course folder that decks link to from outside their
 * own folder (shared images, CSS, themes), by the same rules as a deck's: what slides need, or what a deck
 * marks, never a private file.
 */
export async function resolveCourseFile(segments: string[], root: string = contentDir()): Promise<DeckAsset | null> {
  if (isPrivatePath(segments)) return null;
  const asset = await resolveInside(root, segments);
  if (!asset || !(await servedFrom(asset, root))) return null;
  if (isSlideFile(asset)) return asset;
  const file = segments.join("/");
  for (const name of await listDeckNames(root)) {
    const deck = await loadDeck(name, { contentDir: root });
    if (deck && isMarked(file, deck.servedFiles)) return asset;
  }
  return null;
}

const isSlideFile = (asset: DeckAsset) => SLIDE_FILE_TYPES.has(path.extname(asset.file).toLowerCase());

/** The file's real path, seen from the folder's real path, names nothing private (a link to a private file is private). */
async function servedFrom(asset: DeckAsset, dir: string): Promise<boolean> {
  const realDir = await fs.realpath(dir).catch(() => null);
  return realDir !== null && !isPrivatePath(pathSegments(path.relative(realDir, asset.file)));
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
  if (!asset) return notFound();
  const headers: Record<string, string> = {
    "content-type": asset.contentType,
    "last-modified": new Date(asset.mtimeMs).toUTCString(),
    "cache-control": opts.immutable ? "public, max-age=86400" : "public, max-age=60",
    "x-content-type-options": "nosniff",
    "content-security-policy": FILE_CSP,
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

/** The 404 of the file routes. */
export function notFound(): Response {
  return new Response("Not found", { status: 404, headers: { "content-type": "text/plain; charset=utf-8", "content-security-policy": FILE_CSP } });
}
