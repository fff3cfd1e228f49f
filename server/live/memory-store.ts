/** Live sessions and lecturer sign-ins in this process's memory: one instance, no REDIS_URL. */
import { randomUUID } from "node:crypto";
import type { LiveSession } from "../../lib/protocol";
import {
  DEFAULT_TRY_DELAYS,
  TRY_MEMORY_MS,
  tryDelayMs,
  type TryDelays,
  type FollowerCounts,
  type LecturerStore,
  type LiveBusMessage,
  type LiveChange,
  type LiveStore,
  type LiveUpdate,
  type StoredSession,
} from "./store";

interface Entry extends StoredSession {
  lastActivity: number;
}

export function createMemoryLiveStore(options: { idleMs: number; now?: () => number }): LiveStore {
  const now = options.now ?? Date.now;
  const sessions = new Map<string, Entry>();
  const counts = new Map<string, Map<string, { counts: FollowerCounts; until: number }>>();
  const listeners = new Set<(message: LiveBusMessage) => void>();

  // Delivered on a later tick, as a real bus would: callers never see their own change re-entrantly.
  const publish = (message: LiveBusMessage) => {
    queueMicrotask(() => {
      for (const listener of listeners) listener(message);
    });
  };

  /** The running entry, dropping it when it has been idle too long. */
  const running = (deck: string): Entry | null => {
    const entry = sessions.get(deck);
    if (!entry) return null;
    if (now() - entry.lastActivity > options.idleMs) {
      sessions.delete(deck);
      return null;
    }
    return entry;
  };

  const snapshot = (entry: Entry): StoredSession => ({ session: structuredClone(entry.session), seq: entry.seq });

  const applyUpdate = (session: LiveSession, update: LiveUpdate): void => {
    switch (update.kind) {
      case "slide":
        session.slide = update.slide;
        break;
      case "show-join":
        session.showJoin = update.show;
        break;
      case "code":
        session.code[update.block] = update.files;
        break;
      case "run": {
        const run = session.runs[update.block];
        if (run?.runId === update.runId) run.events.push(update.event);
        else session.runs[update.block] = { runId: update.runId, events: [update.event] };
        break;
      }
    }
  };

  return {
    async get(deck) {
      const entry = running(deck);
      return entry ? snapshot(entry) : null;
    },
    async sessionId(deck) {
      return running(deck)?.session.id ?? null;
    },
    async start(deck, startedAt) {
      const existing = running(deck);
      if (existing) {
        existing.lastActivity = now();
        return { stored: snapshot(existing), created: false };
      }
      const session: LiveSession = { id: randomUUID(), deck, startedAt, slide: null, showJoin: false, code: {}, runs: {} };
      const entry: Entry = { session, seq: 1, lastActivity: now() };
      sessions.set(deck, entry);
      const stored = snapshot(entry);
      publish({ deck, sessionId: session.id, seq: entry.seq, change: { kind: "started", session: stored.session } });
      return { stored, created: true };
    },
    async end(deck, reason) {
      const entry = running(deck);
      if (!entry) return false;
      sessions.delete(deck);
      publish({ deck, sessionId: entry.session.id, seq: entry.seq + 1, change: { kind: "ended", reason } });
      return true;
    },
    async update(deck, update) {
      const entry = running(deck);
      if (!entry) return false;
      applyUpdate(entry.session, update);
      entry.seq += 1;
      entry.lastActivity = now();
      publish({ deck, sessionId: entry.session.id, seq: entry.seq, change: update as LiveChange });
      return true;
    },
    async reportCounts(deck, instanceId, c, ttlMs) {
      const perInstance = counts.get(deck) ?? new Map();
      counts.set(deck, perInstance);
      perInstance.set(instanceId, { counts: { ...c }, until: now() + ttlMs });
      publish({ deck, sessionId: "", seq: 0, change: { kind: "counts" } });
    },
    async readCounts(deck) {
      const total: FollowerCounts = { following: 0, detached: 0 };
      const perInstance = counts.get(deck);
      if (!perInstance) return total;
      for (const [instance, { counts: c, until }] of perInstance) {
        if (until < now()) {
          perInstance.delete(instance);
          continue;
        }
        total.following += c.following;
        total.detached += c.detached;
      }
      return total;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      listeners.clear();
    },
  };
}

export function createMemoryLecturerStore(delays: TryDelays = DEFAULT_TRY_DELAYS, now: () => number = Date.now): LecturerStore {
  const sessions = new Map<string, number>();
  const tries = new Map<string, { failures: number; nextAt: number; forgetAt: number }>();
  let token: string | null = null;

  // Expired entries go now and then, so neither map grows with every visitor ever seen.
  const sweep = setInterval(() => {
    const t = now();
    for (const [id, until] of sessions) if (until < t) sessions.delete(id);
    for (const [client, state] of tries) if (state.forgetAt < t) tries.delete(client);
  }, 60_000);
  sweep.unref();

  return {
    async addSession(idHash, ttlMs) {
      sessions.set(idHash, now() + ttlMs);
    },
    async hasSession(idHash) {
      const until = sessions.get(idHash);
      return until !== undefined && until >= now();
    },
    async removeSession(idHash) {
      sessions.delete(idHash);
    },
    async beginTry(client, t) {
      const state = tries.get(client);
      const failures = state && state.forgetAt >= t ? state.failures : 0;
      if (state && state.forgetAt >= t && t < state.nextAt) return state.nextAt - t;
      tries.set(client, { failures, nextAt: t + tryDelayMs(failures + 1, delays), forgetAt: t + TRY_MEMORY_MS });
      return 0;
    },
    async endTry(client, ok, t) {
      if (ok) {
        tries.delete(client);
        return;
      }
      const failures = (tries.get(client)?.failures ?? 0) + 1;
      tries.set(client, { failures, nextAt: t + tryDelayMs(failures, delays), forgetAt: t + TRY_MEMORY_MS });
    },
    async agreeToken(candidate) {
      token ??= candidate;
      return token;
    },
    async close() {
      clearInterval(sweep);
    },
  };
}
