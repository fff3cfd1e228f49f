/**
 * NODE ONLY. One deck folder → one converted deck, with every Asciidoctor warning/error as a located problem.
 * No caching here (see ./decks.ts); this is the expensive step the cache avoids.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import type { Document, LoggerMessage } from "@asciidoctor/core";
import { revealOptionsFromAttributes } from "../reveal-options";
import type { Deck, DeckProblem, RevealOptions } from "../types";
import { getAsciidoctor } from "./asciidoctor";
import { deckExtensions, type DeckContext, type DeckExtension } from "./extensions";
import { listDeckFiles } from "./fingerprint";
import { countSlides, extractSlides, REVEALJS_DIR_SENTINEL, rewriteRelativeUrls } from "./html";

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
  });

  try {
    await fs.access(indexFile, fs.constants.R_OK);
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
  // conversion cannot interleave with another.
  const logger = asciidoctor.MemoryLogger.create();
  const previous = asciidoctor.LoggerManager.getLogger();
  asciidoctor.LoggerManager.setLogger(logger);
  let html: string;
  let doc: Document;
  try {
    countConversion();
    doc = asciidoctor.loadFile(indexFile, {
      safe: "safe", // includes only inside base_dir (the deck folder), no URIs
      backend: "revealjs",
      base_dir: dir,
      sourcemap: true,
      standalone: true,
      extension_registry: registry,
      attributes: baseAttributes(),
    });
    html = String(doc.convert());
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

  let slidesHtml = "";
  try {
    slidesHtml = rewriteRelativeUrls(extractSlides(html), assetBase);
  } catch (err) {
    problems.push(problemAt(contentDir, indexFile, (err as Error).message));
  }
  problems.sort((a, b) => (a.file === b.file ? (a.line ?? 0) - (b.line ?? 0) : a.file === indexFile ? -1 : b.file === indexFile ? 1 : a.relFile.localeCompare(b.relFile)));
  const description = doc.getAttribute("description");
  return {
    name,
    ...plainTitle(doc, name),
    ...(typeof description === "string" && description ? { description } : {}),
    slideCount: countSlides(slidesHtml),
    problems,
    slidesHtml,
    reveal: revealOptionsFromAttributes(doc.getAttributes() as Record<string, unknown>) as RevealOptions,
  };
}
