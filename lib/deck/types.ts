/**
 * The deck model shared by server and browser: plain data, no Node modules.
 * The Node-only loader lives in lib/deck/server/ and must never be imported from a client component.
 */

/** One thing wrong with a deck, located as precisely as Asciidoctor allows. */
export interface DeckProblem {
  severity: "error" | "warning";
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
  /** Empty when the deck is fine; any entry makes it broken. */
  problems: DeckProblem[];
}

/** Reveal.js options a deck may set through `:revealjs_*:` attributes (already typed and filtered). */
export type RevealOptions = Record<string, string | number | boolean>;

/** A converted deck, ready to hand to the client component. */
export interface Deck extends DeckSummary {
  /** The `<section>` elements of the presentation (the inner HTML of reveal's `.slides`), asset URLs rewritten. */
  slidesHtml: string;
  /** Options for `new Reveal(el, options)`, derived from the deck's attributes. */
  reveal: RevealOptions;
  /** Fingerprint of every file the deck reads; changes whenever the deck's content changes. */
  contentHash: string;
}

export const isBroken = (d: DeckSummary): boolean => d.problems.length > 0;

/** `processes/index.adoc:12: message` — the format of `npm run check` and of the error page. */
export function formatProblem(p: DeckProblem, file: string = p.relFile): string {
  return `${file}${p.line ? `:${p.line}` : ""}: ${p.severity === "warning" ? "warning: " : ""}${p.message}`;
}

/** Deck names are folder names that are safe in a URL and on disk: no dots first, no slashes. */
export const DECK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
