"use client";
/**
 * Development only: reloads the page when a file of this deck changes (server-sent events from
 * /api/dev/deck-events, fed by a watcher on CONTENT_DIR). reveal.js keeps the slide in the URL hash, so the
 * reload lands on the slide the author was looking at. Also mounted on a broken deck's error page, so
 * fixing the file brings the slides back.
 */
import { useEffect } from "react";

export default function DevReload({ deck }: { deck: string }) {
  useEffect(() => {
    const events = new EventSource(`/api/dev/deck-events?deck=${encodeURIComponent(deck)}`);
    events.addEventListener("change", (e) => {
      try {
        const { deck: changed } = JSON.parse((e as MessageEvent<string>).data) as { deck: string };
        if (changed === deck || changed === "*") window.location.reload();
      } catch {
        /* malformed event: ignore */
      }
    });
    return () => events.close();
  }, [deck]);
  return null;
}
