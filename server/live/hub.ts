/**
 * This instance's part of live lectures: which of its WebSocket connections are in which deck's
 * room, what each may do, and passing every published change on to them.
 *
 * The state lives in the store (memory or Redis); the hub keeps only its own connections. Every
 * control message is checked against the lecturer's session cookie in the store, in the order it
 * arrived; a refused one is answered and logged. A lecturer's run tagged with `live` is mirrored
 * from the engine's own events, so the room sees exactly what ran, never what a client claims.
 */
import fs from "node:fs";
import type http from "node:http";
import path from "node:path";
import { randomUUID } from "node:crypto";
import {
  LIVE_CONTROL_TYPES,
  type LiveClientMessage,
  type LiveRole,
  type LiveRunTag,
  type RunEvent,
  type ServerMessage,
} from "../../lib/protocol";
import { clientAddress } from "../client-limits";
import type { LecturerAuth } from "./lecturer";
import { sameOrigin } from "./lecturer";
import type { FollowerCounts, LiveBusMessage, LiveStore } from "./store";

export interface LiveHubOptions {
  store: LiveStore;
  auth: LecturerAuth;
  /** Whether a deck of this name exists (a session can only start on one). */
  deckExists: (deck: string) => boolean;
  instanceId?: string;
  /** The room sees this much of one run's output; the rest is cut with a note. */
  maxMirroredOutputBytes?: number;
  /** Decks one connection may be in at once. */
  maxDecksPerConnection?: number;
  /** Control messages per second one connection may send (burst twice that). */
  controlRatePerSecond?: number;
  /** How often an instance checks that the sessions its connections follow have not gone idle. */
  sweepMs?: number;
  countsThrottleMs?: number;
  countsRefreshMs?: number;
  log?: (entry: Record<string, unknown>) => void;
}

export interface LiveConnection {
  handle(message: LiveClientMessage): void;
  /** Returns the sink a run's events go through (besides its own client), or null to mirror nothing. */
  mirrorRun(tag: LiveRunTag, runId: string): (event: RunEvent) => void;
  close(): void;
}

export interface LiveHub {
  /** A new WebSocket connection; `send` writes one serialized server message to it. */
  connect(req: http.IncomingMessage, send: (text: string) => void): LiveConnection;
  readonly instanceId: string;
  close(): Promise<void>;
}

interface Member {
  role: LiveRole;
  following: boolean;
  /** Until the first state is sent, changes wait here (they may be older than the state). */
  buffer: LiveBusMessage[] | null;
  sessionId: string | null;
  seq: number;
}

interface Conn {
  id: string;
  address: string;
  cookie: string | null;
  send: (text: string) => void;
  decks: Map<string, Member>;
  queue: Promise<void>;
  tokens: number;
  tokensAt: number;
  closed: boolean;
}

/** A deck exists when its folder has an index.adoc (the deck loader's rule). */
export function deckExistsIn(contentDir: string): (deck: string) => boolean {
  return (deck) => fs.existsSync(path.join(contentDir, deck, "index.adoc"));
}

const CONTROL = new Set<string>(LIVE_CONTROL_TYPES);

export function createLiveHub(options: LiveHubOptions): LiveHub {
  const { store, auth } = options;
  const instanceId = options.instanceId ?? randomUUID();
  const maxOutput = options.maxMirroredOutputBytes ?? 64 * 1024;
  const maxDecks = options.maxDecksPerConnection ?? 8;
  const controlRate = options.controlRatePerSecond ?? 30;
  const countsThrottleMs = options.countsThrottleMs ?? 250;
  const countsRefreshMs = options.countsRefreshMs ?? 10_000;
  const log = options.log ?? ((entry) => console.warn(JSON.stringify({ at: new Date().toISOString(), ...entry })));

  /** deck → the connections in its room on this instance. */
  const rooms = new Map<string, Set<Conn>>();

  const text = (message: ServerMessage) => JSON.stringify(message);

  const refuse = (conn: Conn, deck: string | null, message: string) => conn.send(text({ type: "live-refused", deck, message }));

  // ---- follower counts: this instance's share goes to the store, lecturers read the sum ----

  const localCounts = (deck: string): FollowerCounts => {
    const counts = { following: 0, detached: 0 };
    for (const conn of rooms.get(deck) ?? []) {
      const m = conn.decks.get(deck);
      if (m?.role !== "student" || m.buffer || !m.sessionId) continue;
      if (m.following) counts.following++;
      else counts.detached++;
    }
    return counts;
  };

  const throttled = (fn: (deck: string) => Promise<void>) => {
    const timers = new Map<string, ReturnType<typeof setTimeout>>();
    return (deck: string) => {
      if (timers.has(deck)) return;
      timers.set(
        deck,
        setTimeout(() => {
          timers.delete(deck);
          fn(deck).catch((err) => log({ event: "live-store-error", deck, error: String(err) }));
        }, countsThrottleMs),
      );
    };
  };

  const reportedDecks = new Set<string>();
  const reportCounts = throttled(async (deck) => {
    const counts = localCounts(deck);
    if (!rooms.has(deck)) reportedDecks.delete(deck);
    else reportedDecks.add(deck);
    await store.reportCounts(deck, instanceId, counts, countsRefreshMs * 3);
  });

  const sendCounts = throttled(async (deck) => {
    const lecturers = [...(rooms.get(deck) ?? [])].filter((c) => c.decks.get(deck)?.role === "lecturer");
    if (lecturers.length === 0) return;
    const counts = await store.readCounts(deck);
    const message = text({ type: "live-counts", deck, ...counts });
    for (const conn of lecturers) conn.send(message);
  });

  const refresh = setInterval(() => {
    for (const deck of new Set([...rooms.keys(), ...reportedDecks])) reportCounts(deck);
  }, countsRefreshMs);
  refresh.unref();

  // ---- changes from the bus to this instance's connections ----

  const deliver = (conn: Conn, m: Member, message: LiveBusMessage, serialized: () => string) => {
    const { change } = message;
    if (change.kind === "counts") return;
    if (change.kind === "started") {
      if (m.sessionId === message.sessionId && m.seq >= message.seq) return;
      m.sessionId = message.sessionId;
      m.seq = message.seq;
      conn.send(text({ type: "live-state", deck: message.deck, role: m.role, session: change.session }));
      return;
    }
    if (m.sessionId !== message.sessionId || message.seq <= m.seq) return;
    m.seq = message.seq;
    if (change.kind === "ended") m.sessionId = null;
    conn.send(serialized());
  };

  const toClient = (message: LiveBusMessage): ServerMessage | null => {
    const { deck, change } = message;
    switch (change.kind) {
      case "slide":
        return { type: "live-slide", deck, slide: change.slide };
      case "show-join":
        return { type: "live-show-join", deck, show: change.show };
      case "code":
        return { type: "live-code", deck, block: change.block, files: change.files };
      case "run":
        return { type: "live-run", deck, block: change.block, runId: change.runId, event: change.event };
      case "ended":
        return { type: "live-ended", deck, reason: change.reason };
      default:
        return null;
    }
  };

  const unsubscribe = store.subscribe((message) => {
    const room = rooms.get(message.deck);
    if (!room) return;
    if (message.change.kind === "counts") return sendCounts(message.deck);
    // Serialized once for the whole room, and only if someone needs it.
    let serialized: string | null = null;
    const once = () => {
      serialized ??= text(toClient(message)!);
      return serialized;
    };
    for (const conn of room) {
      const m = conn.decks.get(message.deck);
      if (!m) continue;
      if (m.buffer) m.buffer.push(message);
      else deliver(conn, m, message, once);
    }
    if (message.change.kind === "started" || message.change.kind === "ended") reportCounts(message.deck);
  });

  // ---- sessions that went idle end without anyone publishing it: look now and then ----

  const sweep = setInterval(() => {
    for (const [deck, room] of rooms) {
      const watched = new Set([...room].map((c) => c.decks.get(deck)?.sessionId).filter((id): id is string => Boolean(id)));
      if (watched.size === 0) continue;
      store
        .sessionId(deck)
        .then((current) => {
          for (const conn of rooms.get(deck) ?? []) {
            const m = conn.decks.get(deck);
            if (!m?.sessionId || m.buffer || m.sessionId === current) continue;
            m.sessionId = null;
            conn.send(text({ type: "live-ended", deck, reason: "idle" }));
          }
          reportCounts(deck);
        })
        .catch((err) => log({ event: "live-store-error", deck, error: String(err) }));
    }
  }, options.sweepMs ?? 5000);
  sweep.unref();

  // ---- one connection ----

  async function join(conn: Conn, deck: string): Promise<void> {
    if (conn.decks.has(deck)) {
      // Joining again (a page that lost track): send the state afresh.
      conn.decks.delete(deck);
    } else if (conn.decks.size >= maxDecks) {
      return refuse(conn, deck, `a connection can be in at most ${maxDecks} decks' rooms at once`);
    }
    const member: Member = { role: "student", following: true, buffer: [], sessionId: null, seq: 0 };
    conn.decks.set(deck, member);
    const room = rooms.get(deck) ?? new Set<Conn>();
    rooms.set(deck, room);
    room.add(conn);
    member.role = (await auth.isLecturer(conn.cookie)) ? "lecturer" : "student";
    const stored = await store.get(deck);
    if (conn.closed || conn.decks.get(deck) !== member) return;
    member.sessionId = stored?.session.id ?? null;
    member.seq = stored?.seq ?? 0;
    conn.send(text({ type: "live-state", deck, role: member.role, session: stored?.session ?? null }));
    const buffered = member.buffer ?? [];
    member.buffer = null;
    for (const message of buffered) {
      const client = toClient(message);
      if (message.change.kind === "counts") continue;
      deliver(conn, member, message, () => text(client!));
    }
    if (member.role === "lecturer") sendCounts(deck);
    reportCounts(deck);
  }

  function leave(conn: Conn, deck: string): void {
    if (!conn.decks.delete(deck)) return;
    const room = rooms.get(deck);
    room?.delete(conn);
    if (room?.size === 0) rooms.delete(deck);
    reportCounts(deck);
  }

  /** Token bucket over control messages, so one connection cannot flood a room. */
  function takeControlToken(conn: Conn): boolean {
    const t = Date.now();
    conn.tokens = Math.min(controlRate * 2, conn.tokens + ((t - conn.tokensAt) / 1000) * controlRate);
    conn.tokensAt = t;
    if (conn.tokens < 1) return false;
    conn.tokens -= 1;
    return true;
  }

  async function control(conn: Conn, message: LiveClientMessage): Promise<void> {
    const { deck } = message;
    if (!(await auth.isLecturer(conn.cookie))) {
      log({ event: "live-control-refused", client: conn.address, type: message.type, deck, reason: "not a signed-in lecturer" });
      return refuse(conn, deck, "only the signed-in lecturer can change the live session");
    }
    if (!takeControlToken(conn)) {
      return refuse(conn, deck, `too many control messages (at most ${controlRate} a second)`);
    }
    const noSession = () => refuse(conn, deck, `no live session is running on '${deck}'; start one first`);
    switch (message.type) {
      case "live-start": {
        if (!options.deckExists(deck)) return refuse(conn, deck, `there is no deck named '${deck}'`);
        if (!conn.decks.has(deck)) await join(conn, deck);
        const { stored, created } = await store.start(deck, Date.now());
        log({ event: created ? "live-started" : "live-start-again", client: conn.address, deck, session: stored.session.id });
        return;
      }
      case "live-end":
        if (!(await store.end(deck, "ended"))) return noSession();
        log({ event: "live-ended", client: conn.address, deck });
        return;
      case "live-slide":
        if (!(await store.update(deck, { kind: "slide", slide: message.slide }))) return noSession();
        return;
      case "live-show-join":
        if (!(await store.update(deck, { kind: "show-join", show: message.show }))) return noSession();
        return;
      case "live-code":
        if (!(await store.update(deck, { kind: "code", block: message.block, files: message.files }))) return noSession();
        return;
    }
  }

  async function process(conn: Conn, message: LiveClientMessage): Promise<void> {
    if (CONTROL.has(message.type)) return control(conn, message);
    switch (message.type) {
      case "live-join":
        return join(conn, message.deck);
      case "live-leave":
        return leave(conn, message.deck);
      case "live-status": {
        const m = conn.decks.get(message.deck);
        if (!m || m.following === message.following) return;
        m.following = message.following;
        reportCounts(message.deck);
        return;
      }
    }
  }

  return {
    instanceId,
    connect(req, send) {
      const conn: Conn = {
        id: randomUUID(),
        address: clientAddress(req),
        // A cross-site page's socket never speaks for the lecturer, cookie or not.
        cookie: sameOrigin(req) ? auth.sessionCookie(req) : null,
        send,
        decks: new Map(),
        queue: Promise.resolve(),
        tokens: controlRate * 2,
        tokensAt: Date.now(),
        closed: false,
      };
      // Messages of one connection are handled in the order they came, each after the last.
      const enqueue = (work: () => Promise<void>) => {
        conn.queue = conn.queue.then(work).catch((err) => {
          log({ event: "live-error", client: conn.address, error: String(err) });
          refuse(conn, null, "the live session could not be updated; try again");
        });
      };
      return {
        handle(message) {
          if (conn.closed) return;
          enqueue(() => process(conn, message));
        },
        mirrorRun(tag, runId) {
          const mirroredId = `${conn.id}:${runId}`;
          let allowed: boolean | null = null;
          const pending: RunEvent[] = [];
          let bytes = 0;
          let cut = false;
          const forward = (event: RunEvent) => {
            if (event.type === "stats") return; // noise for the room
            let mirrored = event;
            if (event.type === "stdout" || event.type === "stderr") {
              if (cut) return;
              bytes += Buffer.byteLength(event.data);
              if (bytes > maxOutput) {
                cut = true;
                mirrored = { type: "stderr", data: `\n[the room sees the first ${Math.round(maxOutput / 1024)} KiB of this run's output]\n` };
              }
            }
            store
              .update(tag.deck, { kind: "run", block: tag.block, runId: mirroredId, event: mirrored })
              .catch((err) => log({ event: "live-store-error", deck: tag.deck, error: String(err) }));
          };
          enqueue(async () => {
            if (!(await auth.isLecturer(conn.cookie))) {
              allowed = false;
              log({ event: "live-control-refused", client: conn.address, type: "run", deck: tag.deck, reason: "not a signed-in lecturer" });
              refuse(conn, tag.deck, "only the signed-in lecturer's runs are shown to the room");
            } else allowed = (await store.sessionId(tag.deck)) !== null;
            for (const event of pending.splice(0)) if (allowed) forward(event);
          });
          return (event) => {
            if (allowed === null) pending.push(event);
            else if (allowed) forward(event);
          };
        },
        close() {
          conn.closed = true;
          for (const deck of [...conn.decks.keys()]) leave(conn, deck);
        },
      };
    },
    async close() {
      clearInterval(sweep);
      clearInterval(refresh);
      unsubscribe();
    },
  };
}
