/**
 * Follow mode for one reveal.js instance: while a session runs, a following page goes wherever
 * the lecturer goes (slide and fragment); a student who navigates elsewhere is detached, and
 * `refollow()` (the bar's button or the R key) brings them back. A lecturer's page publishes its
 * own navigation instead, and follows the lecturer's other devices.
 */
import type { RevealApi } from "reveal.js";
import type { LiveSlide } from "../../lib/protocol";
import type { LiveClient } from "./live-client";

const NAVIGATION_EVENTS = ["slidechanged", "fragmentshown", "fragmenthidden"] as const;

export function slideOf(deck: RevealApi): LiveSlide {
  const { h, v, f } = deck.getIndices();
  return { h, v: v ?? 0, f: f ?? -1 };
}

const same = (a: LiveSlide | null | undefined, b: LiveSlide | null | undefined) =>
  Boolean(a && b && a.h === b.h && a.v === b.v && a.f === b.f);

/** After going to the lecturer's slide, the page's own events are not the student's doing for this long. */
const SETTLE_MS = 800;

export class FollowController {
  private readonly stop: Array<() => void> = [];
  /** While reveal.js carries out our move (the scroll view scrolls smoothly through pages), until then. */
  private settleUntil = 0;
  private settleTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly deck: RevealApi,
    private readonly client: LiveClient,
  ) {
    const onNavigate = () => this.navigated();
    for (const event of NAVIGATION_EVENTS) {
      deck.on(event, onNavigate);
      this.stop.push(() => deck.off(event, onNavigate));
    }
    this.stop.push(client.on(() => this.sync()));
    deck.addKeyBinding?.({ keyCode: 82, key: "R", description: "Follow the lecturer again (live session)" }, () => this.refollow());
    this.stop.push(() => deck.removeKeyBinding?.(82));
    this.sync();
  }

  /** Back to the lecturer's slide, following from now on. */
  refollow(): void {
    this.client.setFollowing(true);
    this.sync();
  }

  dispose(): void {
    for (const s of this.stop) s();
    if (this.settleTimer) clearTimeout(this.settleTimer);
  }

  /** Goes to the session's slide when this page follows it. */
  private sync(): void {
    const { session, following } = this.client.snapshot;
    if (!session) return;
    if (this.client.isLecturer) {
      // A session just started: it begins where the lecturer is.
      if (!session.slide) this.client.publishSlide(slideOf(this.deck));
      else this.go(session.slide);
      return;
    }
    if (following && session.slide) this.go(session.slide);
  }

  private go(slide: LiveSlide): void {
    if (this.here(slide)) return;
    this.settleUntil = Date.now() + SETTLE_MS;
    if (this.settleTimer) clearTimeout(this.settleTimer);
    // Once settled, look again: a student who moved meanwhile is detached then.
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      this.navigated();
    }, SETTLE_MS + 50);
    this.deck.slide(slide.h, slide.v, slide.f);
  }

  /** Whether the page shows the slide; in the scroll view (phones) the page counts, not the step. */
  private here(slide: LiveSlide): boolean {
    const at = slideOf(this.deck);
    if (this.deck.isScrollView()) return at.h === slide.h && at.v === slide.v;
    return same(at, slide);
  }

  private navigated(): void {
    const { session, following } = this.client.snapshot;
    if (!session) return;
    if (this.client.isLecturer) {
      this.client.publishSlide(slideOf(this.deck));
      return;
    }
    if (Date.now() < this.settleUntil) return;
    // Moving on our own, away from where the lecturer is: detached.
    if (following && session.slide && !this.here(session.slide)) this.client.setFollowing(false);
  }
}
