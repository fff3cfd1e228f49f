/**
 * String surgery on the converter's output (pure functions, no Node APIs; only the loader uses them).
 *
 * We convert with `standalone: true` because the reveal.js converter only emits the title slide (and the
 * title-slide-* attributes, backgrounds, preamble handling) in its document template; the embedded
 * output lacks it. The slides are then cut out of `<div class="slides">…</div>`; everything else (the
 * converter's <head>, its Reveal.initialize script) is dropped: the React component owns reveal.js.
 */

/** Given as `revealjsdir`, so the script tag that follows the slides can be found without guessing. */
export const REVEALJS_DIR_SENTINEL = "__osbyexample_revealjs__";

const SLIDES_OPEN = '<div class="slides">';
const SLIDES_CLOSE = `</div></div><script src="${REVEALJS_DIR_SENTINEL}/dist/reveal.js"`;

/** The inner HTML of the `.slides` element of a standalone reveal.js document. */
export function extractSlides(standaloneHtml: string): string {
  const start = standaloneHtml.indexOf(SLIDES_OPEN);
  const end = standaloneHtml.lastIndexOf(SLIDES_CLOSE);
  if (start < 0 || end < start) throw new Error("unexpected output from the reveal.js converter (no .slides element)");
  return standaloneHtml.slice(start + SLIDES_OPEN.length, end);
}

/** Slides as reveal.js counts them: every <section>, minus the wrappers of vertical stacks. */
export function countSlides(slidesHtml: string): number {
  const sections = slidesHtml.match(/<section[\s>]/g)?.length ?? 0;
  const stacks = slidesHtml.match(/<section(?:\s[^>]*)?>\s*<section[\s>]/g)?.length ?? 0;
  return sections - stacks;
}

const URL_ATTRS = /(\s(?:src|href|poster|data-src|data-background-image|data-background-video|data-background-iframe)=")([^"]*)(")/g;
/** Absolute URLs, scheme URLs, fragments, queries, data: and empty values stay as they are. */
const KEEP = /^(?:[a-z][a-z0-9+.-]*:|\/|#|\?|$)/i;

/**
 * Make relative URLs in the slides point at a route that serves them, so `image::diagram.png[]` (with or
 * without an `imagesdir`) loads from `/decks/<name>/assets/diagram.png` whatever the page URL is. `base` is
 * the deck's asset prefix, or a function that maps each relative URL (e.g. one into a course-wide folder).
 */
export function rewriteRelativeUrls(html: string, base: string | ((value: string) => string)): string {
  const map = typeof base === "string" ? (value: string) => `${base}${value.replace(/^\.\//, "")}` : base;
  return html.replace(URL_ATTRS, (all, pre: string, value: string, post: string) => {
    if (KEEP.test(value)) return all;
    return `${pre}${map(value)}${post}`;
  });
}

/** Is the URL one that `rewriteRelativeUrls` rewrites (a relative path)? */
export const isRelativeUrl = (value: string): boolean => !KEEP.test(value);
