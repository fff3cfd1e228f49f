"use client";
/**
 * Presents one converted deck with reveal.js 5.
 *
 * The server hands over the `<section>`s (HTML from lib/deck) and the reveal options derived from the deck's
 * `:revealjs_*:` attributes; this component owns the reveal.js instance and its lifecycle. reveal.js touches
 * `navigator` when its module is evaluated, so it (and its plugins) are imported inside the effect only.
 *
 * Query parameters are reveal's own: `?view=scroll` (scroll view), `?print-pdf` (print/PDF), `?receiver`
 * (the speaker view's previews). The site always uses hash URLs (#/slide-id) so every slide has a URL.
 */
import { useEffect, useRef, useState } from "react";
import type { RevealApi } from "reveal.js";
import type { DeckLook, RevealOptions } from "@/lib/deck/types";
import { insertDocinfo, measureTone, runSlideScripts, stylesheetsLoaded, typesetMath } from "./deck-look";
import { POSITION_KEY } from "./DevReload";
import { mountRunners } from "../runner/mount-runners";
import { styleSpeakerView } from "./speaker-view-style";
import LiveLayer from "../live/LiveLayer";
// The theme, the converter's CSS and the course theme follow as <link>s in the deck's order (app/decks/[name]/page.tsx).
import "reveal.js/dist/reveal.css";

export interface DeckViewProps {
  /** The deck's folder name: runners keep students' edits under it. */
  deck: string;
  slidesHtml: string;
  options: RevealOptions;
  /** Theme tone, docinfo, math, plugins (lib/deck/server/look.ts). */
  look: DeckLook;
  /** Inside a page of its own (the presenter view) instead of the whole window. */
  embedded?: boolean;
  /** Shown in the presenter view, which has its own live controls. */
  presenter?: boolean;
  onReady?: (deck: RevealApi) => void;
}

/** Below this width the scroll view lays slides out narrower, so text stays readable on a phone. */
const NARROW = 700;

/**
 * The converter's own client-side fix-up: a slide with role `canvas` or `background` whose CSS sets a
 * background colour gets it as reveal's data-background-color.
 */
function applyCssBackgrounds(root: HTMLElement): void {
  root.querySelectorAll<HTMLElement>(".slides section").forEach((slide) => {
    if (slide.getAttribute("data-background-color")) return;
    if (!(slide.classList.contains("canvas") || slide.classList.contains("background"))) return;
    const bg = getComputedStyle(slide).backgroundColor;
    if (bg !== "rgba(0, 0, 0, 0)" && bg !== "transparent") {
      slide.setAttribute("data-background-color", bg);
      slide.style.backgroundColor = "transparent";
    }
  });
}

/** The converter's `.stretch` support: a stretched block takes the slide height its siblings leave free. */
function layoutStretch(root: HTMLElement, height: number): void {
  root.querySelectorAll<HTMLElement>(".slides section .stretch").forEach((el) => {
    const slide = el.closest("section");
    if (!slide) return;
    const old = el.style.height;
    el.style.height = "0px";
    slide.style.height = "auto";
    const free = height - slide.offsetHeight;
    slide.style.removeProperty("height");
    el.style.height = free > 0 ? `${free}px` : old;
  });
}

/**
 * The phone's scroll view: each page as tall as its slide's content (reveal.js gives every page one
 * height, which clips a long slide and leaves a short one in blank space).
 */
function fitScrollPages(root: HTMLElement, scale: number): void {
  for (const page of root.querySelectorAll<HTMLElement>(".scroll-page")) {
    const slide = page.querySelector<HTMLElement>("section");
    if (!slide) continue;
    // The slide's own height too: a short slide takes only the room its content needs.
    page.style.setProperty("--slide-height", "auto");
    page.style.setProperty("--page-height", `${Math.ceil(slide.scrollHeight * scale)}px`);
  }
}

/**
 * After a dev reload (components/deck/DevReload.tsx): if the slide the hash names no longer exists (its title,
 * hence its id, was edited), go back to the same position by indices.
 */
function restoreDevPosition(deck: RevealApi): void {
  let saved: { deck: string; hash: string; h: number; v: number } | null = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(POSITION_KEY) ?? "null");
    sessionStorage.removeItem(POSITION_KEY);
  } catch {
    return;
  }
  // reveal.js has already rewritten the URL when the slide was not found, so compare with the saved hash
  if (!saved || !window.location.pathname.endsWith(`/decks/${encodeURIComponent(saved.deck)}`)) return;
  const id = decodeURIComponent(saved.hash.replace(/^#\//, "").split("/")[0] ?? "");
  if (id && /^\d+$/.test(id)) return; // a numeric hash is already positional
  if (id && document.getElementById(id)) return;
  deck.slide(saved.h, saved.v);
}

/** `:revealjs_autoslidemethod:` names a navigation function of reveal's API (`Reveal.navigateNext`), as the converter writes it. */
function autoSlideMethodName(value: unknown): string | undefined {
  return typeof value === "string" ? /^(?:Reveal\.)?(navigate(?:Next|Prev|Left|Right|Up|Down))$/.exec(value.trim())?.[1] : undefined;
}

export default function DeckView({
  deck: deckName,
  slidesHtml,
  options,
  look,
  embedded = false,
  presenter = false,
  onReady,
}: DeckViewProps) {
  const rootRef = useRef<HTMLDivElement>(null);
  // The live session (components/live) attaches once reveal.js is ready, except in print and in
  // the speaker view's previews (`?receiver`), which must not follow anyone.
  const [liveReveal, setLiveReveal] = useState<RevealApi | null>(null);

  useEffect(() => {
    const root = rootRef.current;
    if (!root) return;
    let deck: RevealApi | null = null;
    let cancelled = false;
    let unmountRunners = () => {};
    const undo: Array<() => void> = [];

    (async () => {
      // The converter's page order: docinfo in <head>, the slides (with their scripts), reveal.js, footer docinfo.
      undo.push(insertDocinfo(look.docinfoHead, document.head, "head"));
      runSlideScripts(root);
      const [{ default: Reveal }, { default: Notes }, { default: Highlight }, { default: Zoom }, search] = await Promise.all([
        import("reveal.js"),
        import("reveal.js/plugin/notes/notes.esm.js"),
        import("reveal.js/plugin/highlight/highlight.esm.js"),
        import("reveal.js/plugin/zoom/zoom.esm.js"),
        look.plugins.search ? import("reveal.js/plugin/search/search.esm.js") : null,
      ]);
      if (cancelled) return;
      if (!look.tone) {
        // A custom theme: find out whether it is dark once its stylesheet is in (code colours, runners follow).
        await stylesheetsLoaded(look.stylesheets);
        root.dataset.tone = measureTone();
      }

      const params = new URLSearchParams(window.location.search);
      const scroll = params.get("view") === "scroll";
      const narrow = window.innerWidth < NARROW;
      const config: Record<string, unknown> = {
        // Every slide has a URL unless the deck says otherwise (:revealjs_hash: false).
        hash: true,
        ...options,
        respondToHashChanges: true,
        plugins: [look.plugins.notes && Notes, Highlight, look.plugins.zoom && Zoom, search?.default].filter(Boolean),
        highlight: { highlightOnLoad: true, escapeHTML: false },
        // reveal.js switches to the scroll view by itself below this width (phones).
        scrollActivationWidth: 500,
        scrollProgress: "auto",
        scrollLayout: "full",
        embedded,
      };
      if ((scroll || window.innerWidth < 500) && narrow) {
        // Reading on a phone: a narrow logical slide, so text wraps instead of being scaled down to nothing,
        // pages as tall as a slide needs (not a screen each), content from the top.
        config.width = 560;
        config.height = 900;
        config.center = false;
        config.scrollLayout = "compact";
        // Reading, not presenting: every fragment shows at once (reveal.js would turn each into a
        // screen of scrolling).
        for (const el of root.querySelectorAll(".slides .fragment")) el.classList.remove("fragment");
      }

      root.classList.toggle("deck-scroll", scroll);
      root.classList.toggle("deck-narrow", config.width === 560);
      applyCssBackgrounds(root);
      const slideMethod = autoSlideMethodName(options.autoSlideMethod);
      if (slideMethod) config.autoSlideMethod = () => (deck as unknown as Record<string, () => void> | null)?.[slideMethod]?.();
      else delete config.autoSlideMethod;
      deck = new Reveal(root, config);
      const height = Number(config.height) || 700;
      const relayout = () => root && layoutStretch(root, height);
      deck.on("ready", relayout);
      deck.on("slidechanged", relayout);
      deck.on("resize", relayout);
      await deck.initialize();
      if (cancelled) {
        deck.destroy();
        return;
      }
      // Footer docinfo scripts expect the global `Reveal` the converter's page has.
      (window as unknown as { Reveal?: RevealApi }).Reveal = deck;
      undo.push(insertDocinfo(look.docinfoFooter, document.body, "footer"));
      if (look.math) {
        typesetMath(root, look.math)
          .then(() => {
            if (cancelled) return;
            deck?.layout();
            root.dataset.math = "typeset";
          })
          .catch((err) => {
            console.error(err);
            root.dataset.math = `failed: ${err}`;
          });
      }
      if (config.width === 560 && deck.isScrollView()) {
        const reveal = deck;
        const fitPages = () => fitScrollPages(root, reveal.getScale());
        // Slides change height when their editors are created and when a console opens.
        const observer = new ResizeObserver(fitPages);
        for (const slide of root.querySelectorAll(".scroll-page section")) observer.observe(slide);
        reveal.on("resize", fitPages);
        fitPages();
        undo.push(() => observer.disconnect());
      }
      restoreDevPosition(deck);
      // Runners mount once the slides are laid out; each creates its editor when first on screen.
      // In print the placeholders' static code is what prints: all of it, laid out before reveal.js
      // sized the PDF pages (a runner mounted later would not fit the page it was given).
      if (look.plugins.notes) undo.push(styleSpeakerView());
      if (!deck.isPrintView()) {
        unmountRunners = mountRunners(root, deckName);
        deck.registerKeyboardShortcut("Ctrl + Enter", "Run the example on this slide");
      }
      root.dataset.ready = "true";
      if (!params.has("receiver") && !params.has("print-pdf")) setLiveReveal(deck);
      onReady?.(deck);
    })().catch((err) => {
      console.error("reveal.js failed to start", err);
      root.dataset.error = String(err);
    });

    return () => {
      cancelled = true;
      unmountRunners();
      for (const u of undo) u();
      try {
        deck?.destroy();
      } catch {
        /* reveal.js may not have finished initialising */
      }
    };
  }, [deckName, slidesHtml, options, look]);

  return (
    <>
      <div className="reveal" ref={rootRef} data-tone={look.tone} data-hljs-theme={look.highlightjsTheme ? "" : undefined} lang={look.lang}>
        {/* biome-ignore lint/security/noDangerouslySetInnerHtml: Asciidoctor renders the course's own files on the server */}
        <div className="slides" dangerouslySetInnerHTML={{ __html: slidesHtml }} />
      </div>
      {liveReveal && <LiveLayer deck={deckName} reveal={liveReveal} presenter={presenter} />}
    </>
  );
}
