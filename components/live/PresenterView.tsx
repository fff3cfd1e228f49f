"use client";
/**
 * The lecturer's presenter view, for a laptop, a second screen or a tablet: the current slide (a
 * full deck the lecturer drives, examples included), the next step, the speaker notes, elapsed
 * time and clock, and the live session: start and end, the join link and QR code (and a switch
 * that puts them on the room's slide), and how many students follow or have detached.
 */
import { useEffect, useRef, useState } from "react";
import type { RevealApi } from "reveal.js";
import type { DeckLook, RevealOptions } from "@/lib/deck/types";
import DeckView from "../deck/DeckView";
import { JoinCode, joinUrl } from "./JoinCode";
import { useLiveClient } from "./LiveLayer";
import "./live.css";

export interface PresenterViewProps {
  deck: string;
  title: string;
  slidesHtml: string;
  options: RevealOptions;
  look: DeckLook;
}

const NAVIGATION_EVENTS = ["slidechanged", "fragmentshown", "fragmenthidden"] as const;

function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(Math.floor(s / 3600))}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
}

/** A second, passive reveal.js instance that shows the step after the current one. */
function NextPreview({
  slidesHtml,
  options,
  look,
  current,
}: {
  slidesHtml: string;
  options: RevealOptions;
  look: DeckLook;
  current: RevealApi | null;
}) {
  const rootRef = useRef<HTMLDivElement>(null);
  const [atEnd, setAtEnd] = useState(false);
  useEffect(() => {
    const root = rootRef.current;
    if (!root || !current) return;
    let preview: RevealApi | null = null;
    let cancelled = false;
    const follow = () => {
      if (!preview) return;
      const { h, v, f } = current.getIndices();
      preview.slide(h, v ?? 0, f ?? -1);
      const before = JSON.stringify(preview.getIndices());
      preview.next();
      setAtEnd(JSON.stringify(preview.getIndices()) === before);
    };
    (async () => {
      const [{ default: Reveal }, { default: Highlight }] = await Promise.all([
        import("reveal.js"),
        import("reveal.js/plugin/highlight/highlight.esm.js"),
      ]);
      if (cancelled) return;
      preview = new Reveal(root, {
        ...options,
        embedded: true,
        controls: false,
        progress: false,
        slideNumber: false,
        keyboard: false,
        touch: false,
        hash: false,
        history: false,
        transition: "none",
        backgroundTransition: "none",
        plugins: [Highlight],
        highlight: { highlightOnLoad: true, escapeHTML: false },
      });
      await preview.initialize();
      if (cancelled) return preview.destroy();
      follow();
    })().catch((err) => console.error("the next-slide preview failed", err));
    for (const event of NAVIGATION_EVENTS) current.on(event, follow);
    return () => {
      cancelled = true;
      for (const event of NAVIGATION_EVENTS) current.off(event, follow);
      try {
        preview?.destroy();
      } catch {
        /* not initialised yet */
      }
    };
  }, [current, slidesHtml, options]);
  return (
    <div className="presenter-next" data-presenter-next>
      <h2>Next</h2>
      <div className="presenter-preview">
        <div className="reveal" ref={rootRef} aria-hidden="true" data-tone={look.tone} lang={look.lang}>
          {/* biome-ignore lint/security/noDangerouslySetInnerHtml: Asciidoctor renders the course's own files on the server */}
          <div className="slides" dangerouslySetInnerHTML={{ __html: slidesHtml }} />
        </div>
        {atEnd && <p className="presenter-end">End of the deck</p>}
      </div>
    </div>
  );
}

export default function PresenterView({ deck, title, slidesHtml, options, look }: PresenterViewProps) {
  const [current, setCurrent] = useState<RevealApi | null>(null);
  const [notes, setNotes] = useState<string>("");
  const [position, setPosition] = useState("");
  const [now, setNow] = useState(() => Date.now());
  const [openedAt, setOpenedAt] = useState(() => Date.now());
  const { client, snapshot } = useLiveClient(deck);

  useEffect(() => {
    const tick = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(tick);
  }, []);

  useEffect(() => {
    if (!current) return;
    const update = () => {
      setNotes(current.getSlideNotes() ?? "");
      const { h, v, f } = current.getIndices();
      setPosition(`slide ${h + 1}${v ? `.${v + 1}` : ""}${f !== undefined && f >= 0 ? ` · step ${f + 1}` : ""}`);
    };
    update();
    for (const event of NAVIGATION_EVENTS) current.on(event, update);
    return () => {
      for (const event of NAVIGATION_EVENTS) current.off(event, update);
    };
  }, [current]);

  const session = snapshot?.session ?? null;
  const lecturer = snapshot?.role === "lecturer";
  const startedAt = session?.startedAt ?? openedAt;
  const url = typeof window === "undefined" ? "" : joinUrl(deck);

  return (
    <div className="presenter" data-presenter>
      <section className="presenter-current" aria-label="Current slide">
        <DeckView deck={deck} slidesHtml={slidesHtml} options={options} look={look} embedded presenter onReady={setCurrent} />
      </section>
      <aside className="presenter-side">
        <NextPreview slidesHtml={slidesHtml} options={options} look={look} current={current} />
        <div className="presenter-notes" data-presenter-notes>
          <h2>Notes <span className="presenter-position">{position}</span></h2>
          {notes ? (
            // biome-ignore lint/security/noDangerouslySetInnerHtml: speaker notes are the course's own AsciiDoc, rendered on the server
            <div dangerouslySetInnerHTML={{ __html: notes }} />
          ) : (
            <p className="hint">No notes on this slide.</p>
          )}
        </div>
      </aside>
      <footer className="presenter-status" data-presenter-status>
        <div className="presenter-times">
          <span title="Elapsed since the session started (or this view opened)">
            Elapsed <span data-elapsed>{formatElapsed(now - startedAt)}</span>
            {!session && (
              <button type="button" onClick={() => setOpenedAt(Date.now())} title="Start the timer again">
                reset
              </button>
            )}
          </span>
          <span title="Clock" data-clock>
            Clock {new Date(now).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}
          </span>
        </div>
        <div className="presenter-live" data-live-status={session ? "live" : "off"}>
          <strong>{title}</strong>
          {!snapshot ? null : !lecturer ? (
            <span>
              Not signed in as the lecturer: <a href="/lecturer">sign in</a> to start a live session.
            </span>
          ) : session ? (
            <>
              <span className="live-pill live-lecturer">
                <span className="live-dot" /> Live
              </span>
              <span data-counts>
                {snapshot.counts.following} following · {snapshot.counts.detached} detached
              </span>
              <label>
                <input type="checkbox" checked={session.showJoin} onChange={(e) => client?.showJoin(e.target.checked)} /> Join code on the
                slide
              </label>
              <button type="button" onClick={() => client?.end()}>
                End live session
              </button>
            </>
          ) : (
            <>
              <span>Not live.</span>
              <button type="button" onClick={() => client?.start()}>
                Start live session
              </button>
            </>
          )}
          {snapshot?.notice && <span className="hint">{snapshot.notice}</span>}
        </div>
        {session && lecturer && url && (
          <div className="presenter-join">
            <JoinCode url={url} size={110} />
          </div>
        )}
      </footer>
    </div>
  );
}
