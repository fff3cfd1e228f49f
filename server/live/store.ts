/**
 * Where live sessions and lecturer sign-ins are kept, so that every server instance sees the same:
 * in this process's memory (memory-store.ts), or in Redis when REDIS_URL is set (redis-store.ts).
 *
 * A session is one record per deck with a sequence number; every change bumps it and is
 * published on a bus that all instances (this one included) hear. An instance answers a late
 * joiner from the record and then passes on only the changes with a higher sequence number.
 */
import type { LiveFile, LiveSession, LiveSlide, RunEvent } from "../../lib/protocol";

/** A change to a running session, as published to every instance. */
export type LiveChange =
  | { kind: "started"; session: LiveSession }
  | { kind: "ended"; reason: "ended" | "idle" }
  | { kind: "slide"; slide: LiveSlide }
  | { kind: "show-join"; show: boolean }
  | { kind: "code"; block: string; files: LiveFile[] }
  /** An event of the lecturer's run at a block; a new runId replaces the block's earlier run. */
  | { kind: "run"; block: string; runId: string; event: RunEvent }
  /** Follower counts changed somewhere: read them again. */
  | { kind: "counts" };

/** The changes the lecturer makes to a running session (start and end have their own calls). */
export type LiveUpdate = Extract<LiveChange, { kind: "slide" | "show-join" | "code" | "run" }>;

export interface LiveBusMessage {
  deck: string;
  /** The session the change belongs to ("" for counts). */
  sessionId: string;
  /** The session's sequence number after the change (0 for counts). */
  seq: number;
  change: LiveChange;
}

export interface StoredSession {
  session: LiveSession;
  seq: number;
}

export interface FollowerCounts {
  following: number;
  detached: number;
}

export interface LiveStore {
  /** The deck's running session, or null (never started, ended, or idle for too long). */
  get(deck: string): Promise<StoredSession | null>;
  /** The running session's id, or null; cheaper than get(). */
  sessionId(deck: string): Promise<string | null>;
  /** Starts a session (or returns the one already running) and publishes `started` if new. */
  start(deck: string, now: number): Promise<{ stored: StoredSession; created: boolean }>;
  /** Ends the running session and publishes `ended`; false if none was running. */
  end(deck: string, reason: "ended" | "idle"): Promise<boolean>;
  /** Applies a change to the running session, refreshes its idle timer and publishes it; false if none runs. */
  update(deck: string, update: LiveUpdate): Promise<boolean>;
  /** This instance's followers of a deck, kept for ttlMs unless reported again. */
  reportCounts(deck: string, instanceId: string, counts: FollowerCounts, ttlMs: number): Promise<void>;
  /** Followers of a deck over all instances. */
  readCounts(deck: string): Promise<FollowerCounts>;
  /** Hears every change of every deck, from every instance. */
  subscribe(listener: (message: LiveBusMessage) => void): () => void;
  close(): Promise<void>;
}

/** Signed-in lecturers and wrong sign-in tries, shared by all instances. */
export interface LecturerStore {
  /** Remembers a session cookie (by its hash) for ttlMs. */
  addSession(idHash: string, ttlMs: number): Promise<void>;
  hasSession(idHash: string): Promise<boolean>;
  /** Revokes a session cookie: it is refused from now on, on every instance. */
  removeSession(idHash: string): Promise<void>;
  /**
   * Claims one sign-in try for a client. Returns 0 when the try may go ahead (and, until it is
   * known to be right, holds back the next one as if it failed), else how many ms to wait.
   */
  beginTry(client: string, now: number): Promise<number>;
  /** Records the outcome of a try begun with beginTry. */
  endTry(client: string, ok: boolean, now: number): Promise<void>;
  /**
   * The lecturer token all instances use when the operator set none: the first instance's
   * candidate wins, and every instance prints it. (Whoever can write the store can sign anyone in
   * anyway, so keeping the token there exposes nothing new.)
   */
  agreeToken(candidate: string): Promise<string>;
  close(): Promise<void>;
}

/** How wrong sign-in tries slow a client down: the wait after the first, doubling up to a cap. */
export interface TryDelays {
  baseMs: number;
  maxMs: number;
}

/** A typo costs a second; guessing costs hours (1 s, 2 s, 4 s … at most 5 minutes). */
export const DEFAULT_TRY_DELAYS: TryDelays = { baseMs: 1000, maxMs: 5 * 60_000 };

/** How long the next sign-in try of a client waits after `failures` wrong ones. */
export function tryDelayMs(failures: number, delays: TryDelays = DEFAULT_TRY_DELAYS): number {
  if (failures <= 0) return 0;
  return Math.min(delays.baseMs * 2 ** (failures - 1), delays.maxMs);
}

/** Wrong tries are forgotten this long after the last one. */
export const TRY_MEMORY_MS = 60 * 60_000;
