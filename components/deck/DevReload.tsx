"use client";
/**
 * Development only: reloads the page when a file of this deck changes (server-sent events from
 * /api/dev/deck-events, fed by a watcher on CONTENT_DIR). reveal.js keeps the slide in the URL hash, so the
 * reload lands on the slide the author was looking at. Also mounted on a broken deck's error page, so
 * fixing the file brings the slides back.
 */
import { useEffect } from "react";

/** Where the author is, by indices: the hash names the slide by id, which changes when its title is edited. */
export const POSITION_KEY = "osbyexample:dev-position";

function rememberPosition(deck: string): void {
  const stacks = Array.from(document.querySelectorAll(".reveal .slides > section"));
  const h = stacks.findIndex((s) => s.classList.contains("present"));
  if (h < 0) return;
  const v = Array.from(stacks[h].querySelectorAll(":scope > section")).findIndex((s) => s.classList.contains("present"));
  try {
    sessionStorage.setItem(POSITION_KEY, JSON.stringify({ deck, hash: window.location.hash, h, v: Math.max(v, 0) }));
  } catch {
    /* storage disabled: the hash alone will do */
  }
}

export default function DevReload({ deck, version }: { deck: string; version: string }) {
  useEffect(() => {
    const events = new EventSource(`/api/dev/deck-events?deck=${encodeURIComponent(deck)}&version=${encodeURIComponent(version)}`);
    events.addEventListener("change", (e) => {
      try {
        const { deck: changed } = JSON.parse((e as MessageEvent<string>).data) as { deck: string };
        if (changed === deck || changed === "*") {
          rememberPosition(deck);
          window.location.reload();
        }
      } catch {
        /* malformed event: ignore */
      }
    });
    return () => events.close();
  }, [deck, version]);
  return null;
}
