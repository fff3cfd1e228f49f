/**
 * `:revealjs_*:` document attributes → reveal.js options. Pure data mapping, safe anywhere.
 *
 * Asciidoctor lower-cases attribute names, so `:revealjs_slideNumber:` arrives as `revealjs_slidenumber`.
 * Every option the converter documents is accepted and typed; the site's defaults (hash URLs, a slide number,
 * a wider slide) apply where a deck says nothing. Plugins and the view mode stay the site's (DeckView).
 */
import type { RevealOptions } from "./types";

type Kind = "bool" | "number" | "string" | "boolOrString" | "numberOrString" | "nullOrBool" | "nullOrNumber";

/** attribute suffix (lower case) → [reveal option, kind] */
/** Every option the @asciidoctor/reveal.js converter passes to Reveal.initialize, plus a few reveal.js 5 adds. */
const OPTIONS: Record<string, [string, Kind]> = {
  controls: ["controls", "bool"],
  controlstutorial: ["controlsTutorial", "bool"],
  controlslayout: ["controlsLayout", "string"],
  controlsbackarrows: ["controlsBackArrows", "string"],
  progress: ["progress", "bool"],
  slidenumber: ["slideNumber", "boolOrString"],
  showslidenumber: ["showSlideNumber", "string"],
  hash: ["hash", "bool"],
  history: ["history", "bool"],
  keyboard: ["keyboard", "bool"],
  overview: ["overview", "bool"],
  disablelayout: ["disableLayout", "bool"],
  center: ["center", "bool"],
  touch: ["touch", "bool"],
  loop: ["loop", "bool"],
  rtl: ["rtl", "bool"],
  navigationmode: ["navigationMode", "string"],
  shuffle: ["shuffle", "bool"],
  fragments: ["fragments", "bool"],
  fragmentinurl: ["fragmentInURL", "bool"],
  embedded: ["embedded", "bool"],
  help: ["help", "bool"],
  pause: ["pause", "bool"],
  shownotes: ["showNotes", "bool"],
  autoplaymedia: ["autoPlayMedia", "nullOrBool"],
  preloadiframes: ["preloadIframes", "nullOrBool"],
  autoslide: ["autoSlide", "number"],
  autoslidestoppable: ["autoSlideStoppable", "bool"],
  autoslidemethod: ["autoSlideMethod", "string"],
  defaulttiming: ["defaultTiming", "number"],
  totaltime: ["totalTime", "number"],
  minimumtimeperslide: ["minimumTimePerSlide", "number"],
  mousewheel: ["mouseWheel", "bool"],
  hideinactivecursor: ["hideInactiveCursor", "bool"],
  hidecursortime: ["hideCursorTime", "number"],
  hideaddressbar: ["hideAddressBar", "bool"],
  previewlinks: ["previewLinks", "bool"],
  transition: ["transition", "string"],
  transitionspeed: ["transitionSpeed", "string"],
  backgroundtransition: ["backgroundTransition", "string"],
  viewdistance: ["viewDistance", "number"],
  mobileviewdistance: ["mobileViewDistance", "number"],
  parallaxbackgroundimage: ["parallaxBackgroundImage", "string"],
  parallaxbackgroundsize: ["parallaxBackgroundSize", "string"],
  parallaxbackgroundhorizontal: ["parallaxBackgroundHorizontal", "nullOrNumber"],
  parallaxbackgroundvertical: ["parallaxBackgroundVertical", "nullOrNumber"],
  display: ["display", "string"],
  width: ["width", "numberOrString"],
  height: ["height", "numberOrString"],
  margin: ["margin", "number"],
  minscale: ["minScale", "number"],
  maxscale: ["maxScale", "number"],
  pdfseparatefragments: ["pdfSeparateFragments", "bool"],
  pdfmaxpagesperslide: ["pdfMaxPagesPerSlide", "number"],
  autoanimate: ["autoAnimate", "bool"],
  autoanimateeasing: ["autoAnimateEasing", "string"],
  autoanimateduration: ["autoAnimateDuration", "number"],
  autoanimateunmatched: ["autoAnimateUnmatched", "bool"],
  jumptoslide: ["jumpToSlide", "bool"],
};

/** `revealjs_*` attributes that are not Reveal.initialize options but still mean something (lib/deck/server/look.ts). */
const OTHER_REVEAL_ATTRIBUTES = ["theme", "customtheme", "plugin_zoom", "plugin_notes", "plugin_search", "plugins", "plugins_configuration"];

/** Is `name` (lower case) a `revealjs_*` attribute the converter documents? Unknown ones are likely typos. */
export function isKnownRevealAttribute(name: string): boolean {
  const suffix = name.slice("revealjs_".length);
  return name.startsWith("revealjs_") && (suffix in OPTIONS || OTHER_REVEAL_ATTRIBUTES.includes(suffix));
}

/** The site's defaults, before the deck's own attributes. */
export const DEFAULT_REVEAL_OPTIONS: RevealOptions = {
  slideNumber: "c/t",
  progress: true,
  controls: true,
  center: true,
  transition: "slide",
  width: 1280,
  height: 800,
  margin: 0.06,
  pdfSeparateFragments: false,
};

function parse(value: string, kind: Kind): string | number | boolean | undefined {
  const v = value.trim();
  const bool = v === "" || v === "true" ? true : v === "false" ? false : undefined;
  switch (kind) {
    case "bool":
      return bool;
    case "number": {
      const n = Number(v);
      return v !== "" && Number.isFinite(n) ? n : undefined;
    }
    case "string":
      return v === "" ? undefined : v;
    case "boolOrString":
      return bool ?? v;
    case "numberOrString": {
      const n = Number(v);
      return v === "" ? undefined : Number.isFinite(n) ? n : v;
    }
    case "nullOrBool":
      return v === "null" ? undefined : bool; // undefined: reveal's own default, which is null
    case "nullOrNumber": {
      const n = Number(v);
      return v === "" || v === "null" || !Number.isFinite(n) ? undefined : n;
    }
  }
}

/** Reveal options from a deck's document attributes; unknown or malformed values are ignored. */
export function revealOptionsFromAttributes(attributes: Record<string, unknown>): RevealOptions {
  const options: RevealOptions = { ...DEFAULT_REVEAL_OPTIONS };
  for (const [name, raw] of Object.entries(attributes)) {
    if (!name.startsWith("revealjs_") || typeof raw !== "string") continue;
    const entry = OPTIONS[name.slice("revealjs_".length)];
    if (!entry) continue;
    const value = parse(raw, entry[1]);
    if (value !== undefined) options[entry[0]] = value;
  }
  return options;
}
