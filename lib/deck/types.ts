/**
 * The deck model shared by server and browser: plain data, no Node modules.
 * The Node-only loader lives in lib/deck/server/ and must never be imported from a client component.
 */

/**
 * One thing wrong with a deck, located as precisely as Asciidoctor allows. Errors block (the deck is shown as
 * broken); warnings inform (the deck renders, the warning is listed; `npm run check` fails on both); notes
 * tell the author what the site does differently from asciidoctor-reveal.js (listed, never fail the check).
 */
export interface DeckProblem {
  severity: "error" | "warning" | "info";
  /** Human readable, as Asciidoctor (or the loader) worded it. */
  message: string;
  /** Absolute path of the file the problem is in (the deck's index.adoc when unknown). */
  file: string;
  /** The same file relative to the content folder, e.g. `processes/index.adoc`. */
  relFile: string;
  /** 1-based line, when known. */
  line?: number;
}

/** What the index shows about a deck. */
export interface DeckSummary {
  /** Folder name under CONTENT_DIR; also the URL segment (/decks/<name>). */
  name: string;
  /** Document title as plain text (falls back to the folder name when the deck cannot be read). */
  title: string;
  subtitle?: string;
  description?: string;
  /** Slides as reveal.js counts them: title slide + every level-1 and level-2 section. */
  slideCount: number;
  /** Empty when the deck is fine; an error makes it broken, warnings and notes are listed with it. */
  problems: DeckProblem[];
}

/** What the converter's standalone page puts around the slides, pointing at files this site serves. */
export interface DeckLook {
  /** Stylesheet URLs after reveal.css, in cascade order: theme, converter CSS, course theme, code colours, custom CSS. */
  stylesheets: string[];
  /** `:highlightjs-theme:` given: its stylesheet colours code blocks instead of the course's colours. */
  highlightjsTheme?: boolean;
  /** The theme's background, when the server knows it (built-in themes); a custom theme's is measured in the browser. */
  tone?: "light" | "dark";
  favicon?: { href: string; type?: string };
  lang?: string;
  /** Docinfo HTML for <head> (`docinfo-revealjs.html`) and the end of <body> (`docinfo-footer.html`). */
  docinfoHead: string;
  docinfoFooter: string;
  /** `:stem:` set: typeset \(…\) / \[…\] (LaTeX) and \$…\$ (AsciiMath) with MathJax; equation numbers per `:eqnums:`. */
  math: null | { eqnums: "none" | "ams" | "all" };
  /** reveal.js's built-in plugins (`:revealjs_plugin_zoom: disabled`, `:revealjs_plugin_search: enabled`…). */
  plugins: { zoom: boolean; notes: boolean; search: boolean };
}

/** Reveal.js options a deck may set through `:revealjs_*:` attributes (already typed and filtered). */
export type RevealOptions = Record<string, string | number | boolean>;

/** A converted deck, ready to hand to the client component. */
export interface Deck extends DeckSummary {
  /** The `<section>` elements of the presentation (the inner HTML of reveal's `.slides`), asset URLs rewritten. */
  slidesHtml: string;
  /** Options for `new Reveal(el, options)`, derived from the deck's attributes. */
  reveal: RevealOptions;
  look: DeckLook;
  /** Files outside the deck's folder the deck read (shared includes, docinfo) or links to: absolute paths. */
  dependencies: string[];
  /**
   * Files the author marks for serving whatever their type (lib/deck/server/assets.ts): those the slides link
   * to and the `:downloads:` entries (a file, a folder ending in `/`, a name with `*`), relative to the course
   * folder with `/`.
   */
  servedFiles: string[];
  /** Fingerprint of every file the deck reads; changes whenever the deck's content changes. */
  contentHash: string;
}

/** Only errors make a deck broken; warnings and notes inform. */
export const isBroken = (d: Pick<DeckSummary, "problems">): boolean => d.problems.some((p) => p.severity === "error");
export const warningsOf = (d: Pick<DeckSummary, "problems">): DeckProblem[] => d.problems.filter((p) => p.severity !== "error");

/** `processes/index.adoc:12: message` — the format of `npm run check` and of the error page. */
export function formatProblem(p: DeckProblem, file: string = p.relFile): string {
  return `${file}${p.line ? `:${p.line}` : ""}: ${p.severity === "warning" ? "warning: " : p.severity === "info" ? "note: " : ""}${p.message}`;
}

/** Deck names are folder names that are safe in a URL and on disk: no dots first, no slashes. */
export const DECK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
