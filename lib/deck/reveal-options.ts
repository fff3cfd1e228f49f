/**
 * `:revealjs_*:` document attributes → reveal.js options. Pure data mapping, safe anywhere.
 *
 * Asciidoctor lower-cases attribute names, so `:revealjs_slideNumber:` arrives as `revealjs_slidenumber`.
 * Only options that make sense inside this site are accepted; the site's own choices (hash URLs,
 * plugins, the view mode) are applied by the client and cannot be switched off by a deck.
 */
import type { RevealOptions } from "./types";

type Kind = "bool" | "number" | "string" | "boolOrString";

/** attribute suffix (lower case) → [reveal option, kind] */
const OPTIONS: Record<string, [string, Kind]> = {
  controls: ["controls", "bool"],
  controlstutorial: ["controlsTutorial", "bool"],
  controlslayout: ["controlsLayout", "string"],
  controlsbackarrows: ["controlsBackArrows", "string"],
  progress: ["progress", "bool"],
  slidenumber: ["slideNumber", "boolOrString"],
  showslidenumber: ["showSlideNumber", "string"],
  center: ["center", "bool"],
  loop: ["loop", "bool"],
  rtl: ["rtl", "bool"],
  navigationmode: ["navigationMode", "string"],
  fragments: ["fragments", "bool"],
  fragmentinurl: ["fragmentInURL", "bool"],
  shownotes: ["showNotes", "bool"],
  autoslide: ["autoSlide", "number"],
  autoslidestoppable: ["autoSlideStoppable", "bool"],
  defaulttiming: ["defaultTiming", "number"],
  totaltime: ["totalTime", "number"],
  minimumtimeperslide: ["minimumTimePerSlide", "number"],
  mousewheel: ["mouseWheel", "bool"],
  previewlinks: ["previewLinks", "bool"],
  transition: ["transition", "string"],
  transitionspeed: ["transitionSpeed", "string"],
  backgroundtransition: ["backgroundTransition", "string"],
  viewdistance: ["viewDistance", "number"],
  width: ["width", "number"],
  height: ["height", "number"],
  margin: ["margin", "number"],
  minscale: ["minScale", "number"],
  maxscale: ["maxScale", "number"],
  pdfseparatefragments: ["pdfSeparateFragments", "bool"],
  pdfmaxpagesperslide: ["pdfMaxPagesPerSlide", "number"],
  hideinactivecursor: ["hideInactiveCursor", "bool"],
  parallaxbackgroundimage: ["parallaxBackgroundImage", "string"],
  parallaxbackgroundsize: ["parallaxBackgroundSize", "string"],
  autoanimate: ["autoAnimate", "bool"],
};

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
