/**
 * NODE ONLY. One deck folder → one converted deck, with every Asciidoctor warning/error as a located problem.
 * No caching here (see ./decks.ts); this is the expensive step the cache avoids.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import type { Document, LoggerMessage } from "@asciidoctor/core";
import { revealOptionsFromAttributes } from "../reveal-options";
import type { Deck, DeckLook, DeckProblem, RevealOptions } from "../types";
import { getAsciidoctor } from "./asciidoctor";
import { createReadScope, isInside, withReadScope } from "./course-files";
import { deckExtensions, type DeckContext, type DeckExtension } from "./extensions";
import { listDeckFiles } from "./fingerprint";
import { countSlides, extractSlides, isRelativeUrl, REVEALJS_DIR_SENTINEL, rewriteRelativeUrls } from "./html";
import { attributeEntries, deckLook, type AttributeEntry } from "./look";
import { isPrivatePath, pathSegments } from "./served-files";

export const INDEX_FILE = "index.adoc";

export interface ConvertOptions {
  /** Folder name (URL segment). */
  name: string;
  /** Absolute deck folder. */
  dir: string;
  /** Content folder, for the relative file names in problems. */
  contentDir: string;
  /** Defaults to the global `deckExtensions`. */
  extensions?: DeckExtension[];
}

export type ConvertedDeck = Omit<Deck, "contentHash">;

/** URL prefix of the course-wide files route (app/course-files): files of CONTENT_DIR outside a deck's folder. */
export const COURSE_FILES_BASE = "/course-files/";

/** The look of a deck that could not be read: the course theme, nothing else. */
export const EMPTY_LOOK: DeckLook = {
  stylesheets: [],
  docinfoHead: "",
  docinfoFooter: "",
  math: null,
  plugins: { zoom: true, notes: true, search: false },
};

const encodePath = (rel: string) => rel.split(path.sep).map(encodeURIComponent).join("/");

/** Attributes every deck is converted with. A trailing `@` makes a default the deck may override. */
function baseAttributes(): Record<string, string> {
  return {
    revealjsdir: REVEALJS_DIR_SENTINEL,
    // Highlighting happens in the browser (reveal.js highlight plugin, highlight.js).
    "source-highlighter": "highlight.js",
    // A reference to an undefined attribute is an authoring mistake: make it a warning (so a problem).
    "attribute-missing": "warn@",
    experimental: "@",
    "imagesdir@": "",
    "source-language@": "text",
  };
}

/** Where Asciidoctor puts its conversion counter, so tests can see whether the cache worked. */
const COUNTER = Symbol.for("osbyexample.deck.conversions");
export function conversionCount(): number {
  return (globalThis as { [COUNTER]?: number })[COUNTER] ?? 0;
}
function countConversion(): void {
  const g = globalThis as { [COUNTER]?: number };
  g[COUNTER] = (g[COUNTER] ?? 0) + 1;
}

export function problemAt(
  contentDir: string,
  file: string,
  message: string,
  line?: number,
  severity: DeckProblem["severity"] = "error",
): DeckProblem {
  return { severity, message, file, relFile: path.relative(contentDir, file) || file, ...(line ? { line } : {}) };
}

/** Asciidoctor's log → problems. Messages without a location (e.g. the include-jail warning) borrow the
 * location of the message that follows them, which Asciidoctor logs for the same directive. */
function problemsFromLog(messages: LoggerMessage[], indexFile: string, contentDir: string): DeckProblem[] {
  const located = messages.map((m) => {
    const loc = m.getSourceLocation?.();
    const file = loc?.getFile?.();
    const line = loc?.getLineNumber?.();
    return { m, file: file ? String(file) : undefined, line: typeof line === "number" ? line : undefined };
  });
  const problems: DeckProblem[] = [];
  located.forEach((entry, i) => {
    const severity = String(entry.m.getSeverity());
    if (severity !== "WARN" && severity !== "ERROR" && severity !== "FATAL") return;
    let { file, line } = entry;
    if (!file) {
      const next = located[i + 1];
      if (next?.file) ({ file, line } = next);
    }
    // Absolute paths in messages become content-relative (shorter, and no server paths on a web page).
    const text = String(entry.m.getText()).split(contentDir + path.sep).join("");
    problems.push(problemAt(contentDir, file ?? indexFile, text, line, severity === "WARN" ? "warning" : "error"));
  });
  return problems;
}

/**
 * Asciidoctor reports "skipping reference to missing attribute: x" without a line. Find the first line of
 * the deck's AsciiDoc files (index.adoc first) that references `{x}`, so the author still gets file:line.
 */
async function locateMissingAttributes(problems: DeckProblem[], dir: string, indexFile: string, contentDir: string): Promise<void> {
  const missing = problems.filter((p) => !p.line && /missing attribute: \S+/.test(p.message));
  if (missing.length === 0) return;
  const files = [indexFile, ...(await listDeckFiles(dir)).filter((f) => /\.(adoc|asciidoc|asc)$/.test(f.rel)).map((f) => path.join(dir, f.rel))];
  const texts = new Map<string, string[]>();
  for (const p of missing) {
    const name = /missing attribute: (\S+)/.exec(p.message)![1];
    for (const file of new Set(files)) {
      if (!texts.has(file)) texts.set(file, (await fs.readFile(file, "utf8").catch(() => "")).split(/\r?\n/));
      const index = texts.get(file)!.findIndex((line) => line.includes(`{${name}}`));
      if (index >= 0) {
        Object.assign(p, problemAt(contentDir, file, p.message, index + 1, p.severity));
        break;
      }
    }
  }
}

function plainTitle(doc: Document, name: string): { title: string; subtitle?: string } {
  if (!doc.hasHeader() || !doc.getDocumentTitle()) return { title: name };
  const title = doc.getDocumentTitle({ partition: true, sanitize: true }) as unknown as {
    getMain(): string;
    getSubtitle(): string | undefined;
  };
  const subtitle = title.getSubtitle?.();
  return { title: decodeEntities(title.getMain()), ...(subtitle ? { subtitle: decodeEntities(subtitle) } : {}) };
}

/** The few entities Asciidoctor's sanitized titles still carry (quotes, dashes, apostrophes…). */
export function decodeEntities(s: string): string {
  return s.replace(/&(#x?[0-9a-f]+|amp|lt|gt|quot|apos|nbsp);/gi, (all, e: string) => {
    const k = e.toLowerCase();
    if (k === "amp") return "&";
    if (k === "lt") return "<";
    if (k === "gt") return ">";
    if (k === "quot") return '"';
    if (k === "apos") return "'";
    if (k === "nbsp") return "\u00a0";
    const code = k.startsWith("#x") ? parseInt(k.slice(2), 16) : parseInt(k.slice(1), 10);
    return Number.isFinite(code) ? String.fromCodePoint(code) : all;
  });
}

/** Convert one deck. Never throws for a bad deck: everything wrong ends up in `problems`. */
export async function convertDeck(opts: ConvertOptions): Promise<ConvertedDeck> {
  const { name, dir, contentDir } = opts;
  const indexFile = path.join(dir, INDEX_FILE);
  const assetBase = `/decks/${encodeURIComponent(name)}/assets/`;
  const problems: DeckProblem[] = [];
  const empty = (): ConvertedDeck => ({
    name,
    title: name,
    slideCount: 0,
    problems,
    slidesHtml: "",
    reveal: revealOptionsFromAttributes({}),
    look: EMPTY_LOOK,
    dependencies: [],
    servedFiles: [],
  });

  try {
    await fs.access(indexFile, fs.constants.R_OK);
    // Access says yes to root for any file, and to a folder: a folder cannot be read either.
    if ((await fs.stat(indexFile)).isDirectory()) throw Object.assign(new Error("a folder"), { code: "EISDIR" });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.push(
      problemAt(contentDir, indexFile, code === "ENOENT" ? `no ${INDEX_FILE} in the deck folder` : `cannot read ${INDEX_FILE} (${code ?? err})`),
    );
    return empty();
  }

  const asciidoctor = await getAsciidoctor();
  const ctx: DeckContext = {
    name,
    dir,
    assetBase,
    report: (p) => problems.push({ ...p, relFile: p.relFile ?? (path.relative(contentDir, p.file) || p.file) }),
  };
  const registry = asciidoctor.Extensions.create();
  for (const ext of opts.extensions ?? deckExtensions) ext.register(registry, ctx);

  // The logger is process-global in Asciidoctor.js; conversion is synchronous, so swapping it around one
  // conversion cannot interleave with another. So is the read scope (./course-files.ts).
  const logger = asciidoctor.MemoryLogger.create();
  const previous = asciidoctor.LoggerManager.getLogger();
  asciidoctor.LoggerManager.setLogger(logger);
  const scope = createReadScope(contentDir, dir);
  let html: string;
  let doc: Document;
  let docinfo: { head: string; footer: string };
  try {
    countConversion();
    [doc, html, docinfo] = withReadScope(scope, () => {
      const d = asciidoctor.loadFile(indexFile, {
        safe: "safe", // files only from the course folder (./course-files.ts widens the jail from base_dir), no URIs
        backend: "revealjs",
        base_dir: dir,
        sourcemap: true,
        standalone: true,
        extension_registry: registry,
        attributes: baseAttributes(),
      });
      const converted = String(d.convert());
      // Docinfo for the page around the slides (the converter's head and end of body), read within the scope too.
      const info = { head: String(d.getDocinfo("head", "-revealjs.html") ?? ""), footer: String(d.getDocinfo("footer", ".html") ?? "") };
      return [d, converted, info] as const;
    });
  } catch (err) {
    asciidoctor.LoggerManager.setLogger(previous);
    problems.push(...problemsFromLog(logger.getMessages(), indexFile, contentDir));
    problems.push(problemAt(contentDir, indexFile, `Asciidoctor failed: ${(err as Error).message ?? err}`));
    return empty();
  } finally {
    asciidoctor.LoggerManager.setLogger(previous);
  }
  const logged = problemsFromLog(logger.getMessages(), indexFile, contentDir);
  await locateMissingAttributes(logged, dir, indexFile, contentDir);
  problems.unshift(...logged);
  for (const r of scope.refused) problems.push(problemAt(contentDir, r.file, r.message, r.line));

  // The AsciiDoc the deck was read from: for attribute entries and locating URLs by their text.
  const sources: { file: string; text: string }[] = [];
  for (const file of [indexFile, ...[...scope.reads].filter((f) => /\.(adoc|asciidoc|asc|ad)$/i.test(f))]) {
    const text = await fs.readFile(file, "utf8").catch(() => null);
    if (text !== null && !sources.some((s) => s.file === file)) sources.push({ file, text });
  }
  const locate = (needle: string): { file: string; line?: number } => {
    for (const s of sources) {
      const index = s.text.split(/\r?\n/).findIndex((l) => l.includes(needle));
      if (index >= 0) return { file: s.file, line: index + 1 };
    }
    return { file: indexFile };
  };

  // Relative URLs (images, links, backgrounds, stylesheets) may point anywhere inside the course folder.
  const used = new Set<string>();
  /** Files the slides link to: served whatever their type (a private one is not, and the author is told). */
  const linked = new Set<string>();
  const courseUrl = (value: string): string | null => {
    const cut = value.search(/[?#]/);
    const [target, suffix] = cut < 0 ? [value, ""] : [value.slice(0, cut), value.slice(cut)];
    let decoded = target;
    try {
      decoded = decodeURI(target.replace(/&amp;/g, "&"));
    } catch {
      /* keep it as written */
    }
    const abs = path.resolve(dir, decoded);
    if (isInside(contentDir, abs) && decoded) linked.add(abs);
    if (isInside(dir, abs)) return `${assetBase}${encodePath(path.relative(dir, abs))}${suffix}`;
    if (!isInside(contentDir, abs)) return null;
    used.add(abs);
    return `${COURSE_FILES_BASE}${encodePath(path.relative(contentDir, abs))}${suffix}`;
  };

  let slidesHtml = "";
  try {
    let slides = extractSlides(html);
    // `:notitle:` (asciidoctor-reveal.js documents it for the title slide; its template only checks :noheader:)
    if (doc.hasAttribute("notitle")) slides = slides.replace(/<section class="title"[^>]*>[\s\S]*?<\/section>/, "");
    slidesHtml = rewriteRelativeUrls(slides, (value) => {
      const url = courseUrl(value);
      if (url) return url;
      const at = locate(value);
      problems.push(problemAt(contentDir, at.file, `${value} is outside the course folder (CONTENT_DIR): not served`, at.line, "warning"));
      return value;
    });
  } catch (err) {
    problems.push(problemAt(contentDir, indexFile, (err as Error).message));
  }
  const entries = attributeEntries(sources);
  const look = deckLook({
    doc,
    docinfo,
    entries,
    url: courseUrl,
    report: (p, at?: AttributeEntry) => problems.push(problemAt(contentDir, at?.file ?? indexFile, p.message, at?.line, p.severity)),
  });
  const servedFiles = markedFiles({ doc, dir, contentDir, linked, entries, locate, report: (p) => problems.push(p) });
  problems.sort((a, b) => (a.file === b.file ? (a.line ?? 0) - (b.line ?? 0) : a.file === indexFile ? -1 : b.file === indexFile ? 1 : a.relFile.localeCompare(b.relFile)));
  const dependencies = [...new Set([...scope.reads, ...used])].filter((f) => !isInside(dir, f)).sort();
  const reveal = revealOptionsFromAttributes(doc.getAttributes() as Record<string, unknown>) as RevealOptions;
  const parallax = reveal.parallaxBackgroundImage;
  if (typeof parallax === "string" && isRelativeUrl(parallax)) reveal.parallaxBackgroundImage = courseUrl(parallax) ?? parallax;
  const description = doc.getAttribute("description");
  return {
    name,
    ...plainTitle(doc, name),
    ...(typeof description === "string" && description ? { description } : {}),
    slideCount: countSlides(slidesHtml),
    problems,
    slidesHtml,
    reveal,
    look,
    dependencies,
    servedFiles,
  };
}

/**
 * What the author marks for serving (lib/deck/server/assets.ts): the files the slides link to, and the
 * `:downloads:` entries (comma-separated, relative to the deck: files, folders ending in `/`, names with `*`),
 * relative to the course folder. A private file (`_name`, `.name`, inside `private/`) is never served: a link
 * to one or a listed one is a warning.
 */
function markedFiles(input: {
  doc: Document;
  dir: string;
  contentDir: string;
  linked: Set<string>;
  entries: AttributeEntry[];
  locate: (needle: string) => { file: string; line?: number };
  report: (problem: DeckProblem) => void;
}): string[] {
  const { doc, dir, contentDir, linked, entries, locate, report } = input;
  const marks = new Set<string>();
  const relative = (abs: string) => path.relative(contentDir, abs).split(path.sep).join("/");
  for (const abs of linked) {
    const rel = relative(abs);
    if (isPrivatePath(pathSegments(rel))) {
      const at = locate(path.relative(dir, abs).split(path.sep).join("/"));
      report(problemAt(contentDir, at.file, `${rel} is private (a name beginning with _ or ., or inside a private/ folder): linked but not served`, at.line, "warning"));
    } else marks.add(rel);
  }
  const downloads = doc.getAttribute("downloads");
  if (typeof downloads === "string" && downloads.trim()) {
    const entry = [...entries].reverse().find((e) => e.name === "downloads");
    const at = entry ?? { file: path.join(dir, INDEX_FILE), line: undefined };
    for (const item of downloads.split(",").map((d) => d.trim()).filter(Boolean)) {
      const folder = /[\\/]$/.test(item);
      const abs = path.resolve(dir, item);
      if (!isInside(contentDir, abs) || abs === contentDir) {
        report(problemAt(contentDir, at.file, `:downloads: ${item} is outside the course folder (CONTENT_DIR): not served`, at.line, "warning"));
        continue;
      }
      const rel = relative(abs);
      if (isPrivatePath(pathSegments(rel))) {
        report(problemAt(contentDir, at.file, `:downloads: ${item} is private (a name beginning with _ or ., or inside a private/ folder): not served`, at.line, "warning"));
        continue;
      }
      marks.add(folder ? `${rel}/` : rel);
    }
  }
  return [...marks].sort();
}
