/**
 * Live lectures for one server instance: the stores (Redis when REDIS_URL is set, else memory),
 * the lecturer's sign-in and the hub that serves the rooms over the page's WebSocket.
 */
import type http from "node:http";
import { LiveDeckSchema } from "../../lib/protocol";
import { createLecturerAuth, resolveLecturerToken, type LecturerAuth } from "./lecturer";
import { createLiveHub, deckExistsIn, type LiveHub } from "./hub";
import { createMemoryLecturerStore, createMemoryLiveStore } from "./memory-store";
import { createRedisLecturerStore, createRedisLiveStore } from "./redis-store";
import type { Redis } from "../redis";
import type { LecturerStore, LiveStore, TryDelays } from "./store";

export interface LiveSettings {
  /** A session nobody changed for this long ends by itself. */
  idleMs: number;
  /** How long a lecturer's sign-in lasts. */
  signInTtlMs: number;
  /** How wrong sign-in tries slow a client down (the default unless a test says otherwise). */
  tryDelays?: TryDelays;
}

export function readLiveSettings(env: NodeJS.ProcessEnv = process.env): LiveSettings {
  const minutes = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!(n > 0)) throw new Error(`${name} must be a positive number of minutes, not '${raw}'`);
    return n;
  };
  return { idleMs: minutes("LIVE_IDLE_MINUTES", 60) * 60_000, signInTtlMs: minutes("LECTURER_SIGN_IN_MINUTES", 12 * 60) * 60_000 };
}

export interface Live {
  /** /api/lecturer/* (sign-in) and GET /api/live/status; false for any other request. */
  handleHttp(req: http.IncomingMessage, res: http.ServerResponse): boolean;
  auth: LecturerAuth;
  hub: LiveHub;
  /** The sign-in token and whether it was generated (to print it). */
  token: { token: string; generated: boolean };
  close(): Promise<void>;
}

export interface LiveStores {
  live: LiveStore;
  lecturer: LecturerStore;
}

export function createLiveStores(redis: Redis | null, settings: LiveSettings): LiveStores {
  return redis
    ? { live: createRedisLiveStore(redis, { idleMs: settings.idleMs }), lecturer: createRedisLecturerStore(redis, settings.tryDelays) }
    : { live: createMemoryLiveStore({ idleMs: settings.idleMs }), lecturer: createMemoryLecturerStore(settings.tryDelays) };
}

export async function createLive(options: {
  contentDir: string;
  settings?: LiveSettings;
  /** Sessions go through Redis when given (REDIS_URL), else they live in this process. */
  redis?: Redis | null;
  stores?: LiveStores;
  /** Where refusals and sign-ins are logged (one JSON line each on stderr by default). */
  log?: (entry: Record<string, unknown>) => void;
}): Promise<Live> {
  const settings = options.settings ?? readLiveSettings();
  const stores = options.stores ?? createLiveStores(options.redis ?? null, settings);
  const token = await resolveLecturerToken(stores.lecturer);
  const { log } = options;
  const auth = createLecturerAuth({ store: stores.lecturer, token: token.token, sessionTtlMs: settings.signInTtlMs, log });
  const hub = createLiveHub({ store: stores.live, auth, deckExists: deckExistsIn(options.contentDir), log });

  /**
   * Whether a deck has a live session, and whether the asker is the lecturer: a page opens its
   * socket for the session only then, so a page nobody presents holds no connection.
   */
  const liveStatus = async (deck: string, cookie: string | null) => {
    if (!LiveDeckSchema.safeParse(deck).success) return null;
    const [sessionId, lecturer] = await Promise.all([stores.live.sessionId(deck), auth.isLecturer(cookie)]);
    return { live: sessionId !== null, lecturer };
  };
  return {
    handleHttp(req, res) {
      if (auth.handleHttp(req, res)) return true;
      const url = new URL(req.url ?? "/", "http://localhost");
      if (url.pathname !== "/api/live/status") return false;
      liveStatus(url.searchParams.get("deck") ?? "", auth.sessionCookie(req))
        .then((status) => {
          res.writeHead(status ? 200 : 400, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" });
          res.end(JSON.stringify(status ?? { error: "give ?deck=<deck name>" }));
        })
        .catch((err) => {
          console.error("live status failed", err);
          if (!res.headersSent) res.writeHead(500, { "Content-Type": "application/json" }).end('{"error":"internal error"}');
        });
      return true;
    },
    auth,
    hub,
    token,
    async close() {
      await hub.close();
      await stores.live.close();
      await stores.lecturer.close();
    },
  };
}
