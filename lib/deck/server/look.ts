/**
 * NODE ONLY. What the @asciidoctor/reveal.js converter puts around the slides of a standalone page (its
 * <head> and the end of <body>), worked out from the deck's attributes the way its document template does,
 * but pointing at files this site serves itself (no CDN):
 *
 *   reveal.css → theme (:revealjs_theme: / :revealjs_customtheme:) → the converter's CSS → the course theme
 *   → code colours (ours, or :highlightjs-theme:) → icon font (:icons: font) → :customcss: → docinfo (head)
 *
 * plus the favicon, docinfo for the end of <body>, math (:stem:) and the built-in plugins. Attributes the
 * converter reads that cannot mean the same here (a CDN folder, custom plugin scripts) are reported with
 * file and line as notes (or warnings when the deck will look or behave differently).
 */
import path from "node:path";
import type { Document } from "@asciidoctor/core";
import { isKnownRevealAttribute } from "../reveal-options";
import type { DeckLook, DeckProblem } from "../types";

/** The themes reveal.js ships (node_modules/reveal.js/dist/theme). */
export const REVEAL_THEMES = [
  "beige",
  "black",
  "black-contrast",
  "blood",
  "dracula",
  "league",
  "moon",
  "night",
  "serif",
  "simple",
  "sky",
  "solarized",
  "white",
  "white-contrast",
  "white_contrast_compact_verbatim_headers",
] as const;
/** Of those, the ones with a dark background (code colours, the runner follow). */
const DARK_THEMES = new Set(["black", "black-contrast", "blood", "dracula", "league", "moon", "night"]);

/** The site's own stylesheets (served by app/deck-css), in cascade order. */
export const SITE_CSS = {
  converter: "/deck-css/asciidoctor-revealjs.css",
  course: "/deck-css/course-theme.css",
  palette: "/deck-css/course-palette.css",
  code: "/deck-css/course-code.css",
} as const;
const vendor = (pkg: string, file: string) => `/vendor/${pkg}/${file}`;

/** An attribute entry as written in a file (`:name: value`), for reporting with file and line. */
export interface AttributeEntry {
  name: string;
  value: string;
  file: string;
  line: number;
}

const ENTRY = /^:(!?)([A-Za-z0-9_][A-Za-z0-9_-]*)(!?):(?:[ \t]+(.*))?$/;

/** The attribute entries of AsciiDoc sources (`:name: value`, `:name!:`), in order, first file first. */
export function attributeEntries(sources: { file: string; text: string }[]): AttributeEntry[] {
  const entries: AttributeEntry[] = [];
  for (const { file, text } of sources) {
    let inBlock: string | null = null;
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trimEnd();
      if (/^(-{4,}|\.{4,}|\+{4,}|\/{4,}|={4,}|_{4,}|\*{4,})$/.test(line)) {
        inBlock = inBlock === line ? null : (inBlock ?? line);
        return;
      }
      if (inBlock) return;
      const m = ENTRY.exec(line);
      if (m) entries.push({ name: m[2].toLowerCase(), value: m[1] || m[3] ? "" : (m[4] ?? ""), file, line: i + 1 });
    });
  }
  return entries;
}

export interface LookInput {
  doc: Document;
  /** The docinfo the conversion read: for <head> and for the end of <body>. */
  docinfo: { head: string; footer: string };
  /** Attribute entries of the files the deck was read from (index.adoc and its includes). */
  entries: AttributeEntry[];
  /** Maps a path as the author wrote it (relative to the deck's page) to a URL the site serves, or null when outside the course. */
  url(target: string): string | null;
  /** Report a note or warning at the attribute's entry. */
  report(problem: Pick<DeckProblem, "severity" | "message">, at: AttributeEntry | undefined): void;
}

/** Attributes whose documented effect is replaced by the site: they are noted, not silently dropped. */
const REPLACED: Record<string, string> = {
  revealjsdir: "the site serves reveal.js 5 itself; :revealjsdir: is ignored",
  highlightjsdir: "the site serves highlight.js itself (with every language); :highlightjsdir: is ignored",
  mathjaxdir: "the site serves MathJax 3 itself; :mathjaxdir: is ignored",
  "font-awesome-version": "the site serves Font Awesome (free, with the v4 names) itself; :font-awesome-version: is ignored",
  "iconfont-cdn": "the site serves Font Awesome itself; :iconfont-cdn: is ignored",
  "iconfont-remote": "the site serves Font Awesome itself; :iconfont-remote: is ignored",
  revealjs_plugins: "custom reveal.js plugin scripts are not loaded on this site (the built-in zoom, notes and search plugins are: :revealjs_plugin_search: enabled)",
  revealjs_plugins_configuration: "custom reveal.js plugin configuration is not used on this site (custom plugins are not loaded)",
};

/** `highlight.js/…/styles/github.min.css` (a CDN URL) → the same style from the local highlight.js package. */
function localHighlightStyle(value: string): string | null {
  const m = /(?:^|\/)styles\/((?:base16\/)?[a-z0-9-]+)(?:\.min)?\.css$/i.exec(value);
  if (m && /highlight/i.test(value)) return vendor("highlight.js", `styles/${m[1]}.css`);
  if (/^[a-z0-9-]+$/i.test(value)) return vendor("highlight.js", `styles/${value}.css`);
  return null;
}

export function deckLook({ doc, docinfo, entries, url, report }: LookInput): DeckLook {
  const attr = (name: string): string | undefined => {
    const v = doc.getAttribute(name);
    return v === undefined || v === null ? undefined : String(v);
  };
  const entry = (name: string) => [...entries].reverse().find((e) => e.name === name);
  const stylesheet = (name: string, value: string): string | null => {
    if (/^[a-z][a-z0-9+.-]*:/i.test(value) || value.startsWith("/")) return value; // the author's own URL
    const href = url(value);
    if (!href) report({ severity: "error", message: `:${name}: ${value} is outside the course folder (CONTENT_DIR)` }, entry(name));
    return href;
  };

  for (const e of entries) {
    if (e.name.startsWith("revealjs_") && !isKnownRevealAttribute(e.name) && !(e.name in REPLACED)) {
      report({ severity: "warning", message: `unknown reveal.js attribute :${e.name}: (not an asciidoctor-reveal.js option; a typo?)` }, e);
    }
  }
  for (const [name, why] of Object.entries(REPLACED)) {
    const at = entry(name);
    if (at) report({ severity: name.startsWith("revealjs_plugins") ? "warning" : "info", message: why }, at);
  }

  // Theme: a custom theme replaces the named one; no theme at all is the course's own (white + its palette).
  const sheets: string[] = [];
  let tone: DeckLook["tone"] = "light";
  const customTheme = attr("revealjs_customtheme");
  const theme = attr("revealjs_theme")?.trim();
  if (customTheme) {
    const href = stylesheet("revealjs_customtheme", customTheme);
    if (href) sheets.push(href);
    tone = undefined; // found out in the browser
  } else if (theme && (REVEAL_THEMES as readonly string[]).includes(theme)) {
    sheets.push(vendor("reveal.js", `dist/theme/${theme}.css`));
    tone = DARK_THEMES.has(theme) ? "dark" : "light";
  } else {
    if (theme) report({ severity: "warning", message: `unknown reveal.js theme "${theme}" (themes: ${REVEAL_THEMES.join(", ")}); the course theme is used` }, entry("revealjs_theme"));
    sheets.push(vendor("reveal.js", "dist/theme/white.css"));
  }
  sheets.push(SITE_CSS.converter, SITE_CSS.course);
  if (!customTheme && !(theme && (REVEAL_THEMES as readonly string[]).includes(theme))) sheets.push(SITE_CSS.palette);

  const hljsTheme = attr("highlightjs-theme");
  if (hljsTheme) {
    const local = localHighlightStyle(hljsTheme);
    const href = local ?? stylesheet("highlightjs-theme", hljsTheme);
    if (href) sheets.push(href);
  } else {
    sheets.push(SITE_CSS.code);
  }
  // The site converts with highlight.js whatever the deck asks for; say so when it asks for another.
  const highlighter = entry("source-highlighter")?.value.trim();
  if (highlighter && highlighter !== "highlight.js" && highlighter !== "highlightjs") {
    report({ severity: "info", message: `:source-highlighter: ${highlighter} is not available here; code is highlighted with highlight.js` }, entry("source-highlighter"));
  }

  if (attr("icons") === "font") sheets.push(vendor("@fortawesome/fontawesome-free", "css/all.min.css"), vendor("@fortawesome/fontawesome-free", "css/v4-shims.min.css"));

  const customCss = attr("customcss");
  if (customCss !== undefined) {
    const href = stylesheet("customcss", customCss === "" ? "asciidoctor-revealjs.css" : customCss);
    if (href) sheets.push(href);
  }

  let favicon: DeckLook["favicon"];
  const icon = attr("favicon");
  if (icon !== undefined) {
    const value = icon === "" ? "favicon.ico" : icon;
    const ext = path.extname(value).toLowerCase();
    const href = /^[a-z][a-z0-9+.-]*:/i.test(value) || value.startsWith("/") ? value : url(value);
    if (href) favicon = { href, type: !ext || ext === ".ico" ? "image/x-icon" : ext === ".svg" ? "image/svg+xml" : `image/${ext.slice(1)}` };
    else report({ severity: "error", message: `:favicon: ${value} is outside the course folder (CONTENT_DIR)` }, entry("favicon"));
  }

  const stem = attr("stem");
  const eqnums = attr("eqnums");
  const on = (name: string, value: string) => attr(name) === value;
  const lang = attr("nolang") === undefined ? (attr("lang") ?? "en") : undefined;

  return {
    stylesheets: sheets,
    ...(hljsTheme ? { highlightjsTheme: true } : {}),
    ...(tone ? { tone } : {}),
    ...(favicon ? { favicon } : {}),
    ...(lang ? { lang } : {}),
    docinfoHead: docinfo.head,
    docinfoFooter: docinfo.footer,
    math: stem === undefined ? null : { eqnums: eqnums === undefined ? "none" : eqnums === "" ? "ams" : eqnums === "all" || eqnums === "none" ? eqnums : "ams" },
    plugins: { zoom: !on("revealjs_plugin_zoom", "disabled"), notes: !on("revealjs_plugin_notes", "disabled"), search: on("revealjs_plugin_search", "enabled") },
  };
}
