"use client";
/**
 * What a deck page shows of a live session, over the slides: the follow indicator (following /
 * detached with one click or R to follow again / ended), the join code when the lecturer puts it on
 * the slide, and for a signed-in lecturer a small bar to start or end the session.
 */
import { useEffect, useState } from "react";
import type { RevealApi } from "reveal.js";
import { FollowController } from "./follow-controller";
import { JoinCode, joinUrl } from "./JoinCode";
import { liveClientFor, type LiveClient, type LiveSnapshot } from "./live-client";
import "./live.css";

/** The deck's live client and its latest snapshot, for React. */
export function useLiveClient(deck: string, enabled = true): { client: LiveClient | null; snapshot: LiveSnapshot | null } {
  const [state, setState] = useState<{ client: LiveClient | null; snapshot: LiveSnapshot | null }>({ client: null, snapshot: null });
  useEffect(() => {
    if (!enabled) return;
    const { client, release } = liveClientFor(deck);
    setState({ client, snapshot: client.snapshot });
    const off = client.on((_m, snapshot) => setState({ client, snapshot }));
    return () => {
      off();
      release();
    };
  }, [deck, enabled]);
  return state;
}

export interface LiveLayerProps {
  deck: string;
  reveal: RevealApi | null;
  /** The presenter view shows its own controls; the page then shows only the indicator. */
  presenter?: boolean;
}

export default function LiveLayer({ deck, reveal, presenter = false }: LiveLayerProps) {
  const { client, snapshot } = useLiveClient(deck);
  const [follow, setFollow] = useState<FollowController | null>(null);

  useEffect(() => {
    if (!client || !reveal) return;
    const controller = new FollowController(reveal, client);
    setFollow(controller);
    return () => controller.dispose();
  }, [client, reveal]);

  if (!client || !snapshot) return null;
  const { session, following, role, notice } = snapshot;
  const lecturer = role === "lecturer";

  return (
    <>
      {session?.showJoin && (
        <div className="live-join-overlay" data-live-join>
          <p>Follow this lecture on your device</p>
          <JoinCode url={joinUrl(deck)} size={260} />
        </div>
      )}
      <div className="live-bar" data-live={session ? (lecturer ? "lecturer" : following ? "following" : "detached") : "off"} role="status">
        {session && !lecturer && following && (
          <span className="live-pill live-following" title="This page follows the lecturer's slides">
            <span className="live-dot" /> Following the lecturer
          </span>
        )}
        {session && !lecturer && !following && (
          <button type="button" className="live-pill live-detached" onClick={() => follow?.refollow()} title="Go back to the lecturer's slide (R)">
            Detached · Follow the lecturer <kbd>R</kbd>
          </button>
        )}
        {!session && notice && !lecturer && <span className="live-pill live-ended">{notice}</span>}
        {lecturer && !presenter && (
          <span className="live-pill live-lecturer">
            {session ? (
              <>
                <span className="live-dot" /> Live · {snapshot.counts.following} following · {snapshot.counts.detached} detached ·{" "}
                <button type="button" onClick={() => client.end()}>
                  End
                </button>
              </>
            ) : (
              <button type="button" onClick={() => client.start()}>
                Start live session
              </button>
            )}{" "}
            · <a href={`/decks/${encodeURIComponent(deck)}/presenter${window.location.hash}`}>Presenter view</a>
          </span>
        )}
        {lecturer && notice && !session && <span className="live-pill live-ended">{notice}</span>}
      </div>
    </>
  );
}
