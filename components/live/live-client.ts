/**
 * A page's part in a deck's live session, over the page's one WebSocket (run-connection.ts).
 *
 * It joins the deck's room (again after every reconnect), keeps what the server last said (role,
 * session, counts) and tells its listeners. Everyone on a deck has one; the lecturer's pages also
 * publish through it. Free of React and reveal.js: the controllers that use it own the screen.
 */
import type { LiveFile, LiveRole, LiveServerMessage, LiveSession, LiveSlide, RunEvent } from "../../lib/protocol";
import { pageConnection, type RunConnection } from "../runner/run-connection";

export interface LiveSnapshot {
  role: LiveRole;
  session: LiveSession | null;
  /** Whether this page follows the lecturer (students may detach). */
  following: boolean;
  counts: { following: number; detached: number };
  /** How the last session ended, or the last refusal, in words. */
  notice: string | null;
  /** The server has answered our join since the last (re)connect. */
  joined: boolean;
}

export type LiveListener = (message: LiveServerMessage | null, snapshot: LiveSnapshot) => void;

/** The lecturer's typing goes out at most this often per block (the rest is coalesced). */
const CODE_THROTTLE_MS = 100;
/** A page on a deck nobody presents asks this often whether a session has started. */
const STATUS_POLL_MS = 15_000;

export class LiveClient {
  private readonly listeners = new Set<LiveListener>();
  private readonly unsubscribe: Array<() => void> = [];
  private readonly codeTimers = new Map<string, { timer: ReturnType<typeof setTimeout> | null; files: LiveFile[] | null; last: number }>();
  private wasOpen = false;
  private joinedOnce = false;
  private pollTimer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;
  snapshot: LiveSnapshot = {
    role: "student",
    session: null,
    following: true,
    counts: { following: 0, detached: 0 },
    notice: null,
    joined: false,
  };

  constructor(
    readonly deck: string,
    private readonly connection: RunConnection = pageConnection(),
  ) {
    this.unsubscribe.push(connection.onLiveMessage((m) => this.receive(m)));
    void this.watch();
  }

  /**
   * Joins the room once the deck has a live session (or this is the lecturer's page); until then
   * the page asks over HTTP now and then and holds no WebSocket just for a lecture that is not on.
   */
  private async watch(): Promise<void> {
    if (this.disposed || this.joinedOnce) return;
    let status: { live: boolean; lecturer: boolean } | null = null;
    try {
      const res = await fetch(`/api/live/status?deck=${encodeURIComponent(this.deck)}`, { cache: "no-store" });
      if (res.ok) status = (await res.json()) as { live: boolean; lecturer: boolean };
    } catch {
      /* offline or the server is away: ask again later */
    }
    if (this.disposed || this.joinedOnce) return;
    if (status?.lecturer && !status.live) this.update(null, { role: "lecturer" });
    if (status && (status.live || status.lecturer)) return this.joinFirst();
    this.pollTimer = setTimeout(() => void this.watch(), STATUS_POLL_MS);
  }

  private joinFirst(): void {
    if (this.joinedOnce || this.disposed) return;
    this.joinedOnce = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    // Already connected (the student ran something): the next "open" is a reconnect.
    this.wasOpen = this.connection.state === "open";
    this.unsubscribe.push(
      this.connection.onStateChange((state) => {
        if (state === "open" && this.wasOpen) this.join(); // a reconnect: the server forgot us
        if (state === "open") this.wasOpen = true;
        if (state === "closed" && this.snapshot.joined) this.update(null, { joined: false });
      }),
    );
    this.join();
  }

  on(listener: LiveListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get live(): boolean {
    return this.snapshot.session !== null;
  }

  get isLecturer(): boolean {
    return this.snapshot.role === "lecturer";
  }

  /** A student detaches by navigating away and re-follows with one action. */
  setFollowing(following: boolean): void {
    if (this.snapshot.following === following) return;
    this.connection.sendLive({ type: "live-status", deck: this.deck, following });
    this.update(null, { following });
  }

  start(): void {
    this.joinFirst();
    this.connection.sendLive({ type: "live-start", deck: this.deck });
  }

  end(): void {
    this.connection.sendLive({ type: "live-end", deck: this.deck });
  }

  showJoin(show: boolean): void {
    this.connection.sendLive({ type: "live-show-join", deck: this.deck, show });
    // Shown at once on this page; the server's echo confirms it.
    if (this.snapshot.session) this.update(null, { session: { ...this.snapshot.session, showJoin: show } });
  }

  publishSlide(slide: LiveSlide): void {
    const current = this.snapshot.session?.slide;
    if (!this.isLecturer || !this.live) return;
    if (current && current.h === slide.h && current.v === slide.v && current.f === slide.f) return;
    // Taken as the session's slide at once, so the echo from the server changes nothing here.
    if (this.snapshot.session) this.snapshot.session.slide = slide;
    this.connection.sendLive({ type: "live-slide", deck: this.deck, slide });
  }

  /** The lecturer's edit of a block; sent at once, then at most every CODE_THROTTLE_MS while typing. */
  publishCode(block: string, files: LiveFile[]): void {
    if (!this.isLecturer || !this.live) return;
    const entry = this.codeTimers.get(block) ?? { timer: null, files: null, last: 0 };
    this.codeTimers.set(block, entry);
    entry.files = files;
    if (entry.timer) return;
    const flush = () => {
      entry.timer = null;
      if (!entry.files) return;
      this.connection.sendLive({ type: "live-code", deck: this.deck, block, files: entry.files });
      entry.files = null;
      entry.last = Date.now();
    };
    const wait = entry.last + CODE_THROTTLE_MS - Date.now();
    if (wait <= 0) flush();
    else entry.timer = setTimeout(flush, wait);
  }

  dispose(): void {
    this.disposed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    for (const u of this.unsubscribe) u();
    for (const entry of this.codeTimers.values()) if (entry.timer) clearTimeout(entry.timer);
    this.listeners.clear();
    if (this.joinedOnce) this.connection.sendLive({ type: "live-leave", deck: this.deck });
  }

  private join(): void {
    this.connection.sendLive({ type: "live-join", deck: this.deck });
    // The server counts a joining page as following; say so if this one is not.
    if (!this.snapshot.following) this.connection.sendLive({ type: "live-status", deck: this.deck, following: false });
  }

  private update(message: LiveServerMessage | null, patch: Partial<LiveSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const listener of this.listeners) listener(message, this.snapshot);
  }

  private receive(message: LiveServerMessage): void {
    if (message.deck !== null && message.deck !== this.deck) return;
    const session = this.snapshot.session;
    switch (message.type) {
      case "live-state": {
        const wasLive = session !== null;
        const patch: Partial<LiveSnapshot> = { role: message.role, session: message.session, joined: true };
        // A new session (or the first look at one) starts with everyone following.
        if (message.session && (!wasLive || session?.id !== message.session.id)) {
          patch.notice = null;
          if (!this.snapshot.following) {
            patch.following = true;
            this.connection.sendLive({ type: "live-status", deck: this.deck, following: true });
          }
        }
        this.update(message, patch);
        return;
      }
      case "live-slide":
        if (session) session.slide = message.slide;
        this.update(message, {});
        return;
      case "live-show-join":
        if (session) session.showJoin = message.show;
        this.update(message, {});
        return;
      case "live-code":
        if (session) session.code[message.block] = message.files;
        this.update(message, {});
        return;
      case "live-run": {
        if (session) appendRunEvent(session, message.block, message.runId, message.event);
        this.update(message, {});
        return;
      }
      case "live-ended":
        this.update(message, {
          session: null,
          notice: message.reason === "idle" ? "The live session ended (no activity for a while)." : "The lecturer ended the live session.",
        });
        return;
      case "live-counts":
        this.update(message, { counts: { following: message.following, detached: message.detached } });
        return;
      case "live-refused":
        // Signed out meanwhile (or never signed in): this page is a student's now.
        this.update(message, /only the signed-in lecturer/.test(message.message) ? { role: "student", notice: message.message } : { notice: message.message });
        return;
    }
  }
}

function appendRunEvent(session: LiveSession, block: string, runId: string, event: RunEvent): void {
  const run = session.runs[block];
  if (run?.runId === runId) run.events.push(event);
  else session.runs[block] = { runId, events: [event] };
}

/** Print and the speaker view's previews (`?receiver`) take no part in a live session. */
export function livePageAllowed(): boolean {
  if (typeof window === "undefined") return false;
  const params = new URLSearchParams(window.location.search);
  return !params.has("receiver") && !params.has("print-pdf");
}

const clients = new Map<string, { client: LiveClient; users: number }>();

/** The page's live client for a deck, shared by the deck view and its runners. */
export function liveClientFor(deck: string): { client: LiveClient; release: () => void } {
  let entry = clients.get(deck);
  if (!entry) {
    entry = { client: new LiveClient(deck), users: 0 };
    clients.set(deck, entry);
  }
  entry.users++;
  const held = entry;
  let released = false;
  return {
    client: held.client,
    release: () => {
      if (released) return;
      released = true;
      held.users--;
      if (held.users === 0) {
        clients.delete(deck);
        held.client.dispose();
      }
    },
  };
}
