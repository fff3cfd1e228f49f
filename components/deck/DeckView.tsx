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
import { useEffect, useRef } from "react";
import type { RevealApi } from "reveal.js";
import type { RevealOptions } from "@/lib/deck/types";
import { POSITION_KEY } from "./DevReload";
import { mountRunners } from "../runner/mount-runners";
import "reveal.js/dist/reveal.css";
import "reveal.js/dist/theme/white.css";
import "./asciidoctor-revealjs.css";
import "./course-theme.css";

export interface DeckViewProps {
  /** The deck's folder name: runners keep students' edits under it. */
  deck: string;
  slidesHtml: string;
  options: RevealOptions;
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

export default function DeckView({ deck: deckName, slidesHtml, options }: DeckViewProps) {
  const rootRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const root = rootRef.current;
    if (!root) return;
    let deck: RevealApi | null = null;
    let cancelled = false;
    let unmountRunners = () => {};

    (async () => {
      const [{ default: Reveal }, { default: Notes }, { default: Highlight }, { default: Zoom }] = await Promise.all([
        import("reveal.js"),
        import("reveal.js/plugin/notes/notes.esm.js"),
        import("reveal.js/plugin/highlight/highlight.esm.js"),
        import("reveal.js/plugin/zoom/zoom.esm.js"),
      ]);
      if (cancelled) return;

      const params = new URLSearchParams(window.location.search);
      const scroll = params.get("view") === "scroll";
      const narrow = window.innerWidth < NARROW;
      const config: Record<string, unknown> = {
        ...options,
        hash: true,
        history: false,
        respondToHashChanges: true,
        keyboard: true,
        overview: true,
        help: true,
        plugins: [Notes, Highlight, Zoom],
        highlight: { highlightOnLoad: true, escapeHTML: false },
        // reveal.js switches to the scroll view by itself below this width (phones).
        scrollActivationWidth: 500,
        scrollProgress: "auto",
        scrollLayout: "full",
      };
      if ((scroll || window.innerWidth < 500) && narrow) {
        // Reading on a phone: a narrow logical slide, so text wraps instead of being scaled down to nothing,
        // pages as tall as a slide needs (not a screen each), content from the top.
        config.width = 560;
        config.height = 900;
        config.center = false;
        config.scrollLayout = "compact";
      }

      root.classList.toggle("deck-scroll", scroll);
      root.classList.toggle("deck-narrow", config.width === 560);
      applyCssBackgrounds(root);
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
      restoreDevPosition(deck);
      // Runners mount once the slides are laid out; each creates its editor when first on screen.
      unmountRunners = mountRunners(root, deckName);
      root.dataset.ready = "true";
    })().catch((err) => {
      console.error("reveal.js failed to start", err);
      root.dataset.error = String(err);
    });

    return () => {
      cancelled = true;
      unmountRunners();
      try {
        deck?.destroy();
      } catch {
        /* reveal.js may not have finished initialising */
      }
    };
  }, [deckName, slidesHtml, options]);

  return (
    <div className="reveal" ref={rootRef}>
      {/* biome-ignore lint/security/noDangerouslySetInnerHtml: Asciidoctor renders the course's own files on the server */}
      <div className="slides" dangerouslySetInnerHTML={{ __html: slidesHtml }} />
    </div>
  );
}
