/**
 * Lecturer sign-in: one secret the operator sets (LECTURER_TOKEN, or a random one printed at
 * start), exchanged for an HttpOnly, SameSite=Strict session cookie that every instance honours
 * until it expires or the lecturer signs out (which revokes it in the shared store).
 *
 *   POST /api/lecturer/sign-in   {"token": "…"}  → 200 + cookie | 401 wrong | 429 wait (Retry-After)
 *   POST /api/lecturer/sign-out                  → 200, cookie revoked and cleared
 *   GET  /api/lecturer/me                        → {"signedIn": true|false}
 *
 * Wrong tries are counted per client address in the shared store, so switching instance does not
 * reset them: after each wrong try the next one from that address waits twice as long (1 s, 2 s,
 * 4 s … at most 5 min).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type http from "node:http";
import { clientAddress } from "../client-limits";
import { isOwnOrigin } from "../origin";
import { fromTrustedProxy } from "../trust-proxy";
import type { LecturerStore } from "./store";

export const LECTURER_COOKIE = "osbe_lecturer";
const MAX_BODY_BYTES = 4096;

export interface LecturerAuthOptions {
  store: LecturerStore;
  /** The secret in force (from resolveLecturerToken). */
  token: string;
  /** How long a sign-in lasts. */
  sessionTtlMs?: number;
  now?: () => number;
  log?: (entry: Record<string, unknown>) => void;
}

export interface LecturerAuth {
  /** Answers /api/lecturer/*; false for any other request. */
  handleHttp(req: http.IncomingMessage, res: http.ServerResponse): boolean;
  /** The session cookie of a request, or null. */
  sessionCookie(req: http.IncomingMessage): string | null;
  /** Whether this cookie value is a lecturer's valid, unrevoked session. */
  isLecturer(cookie: string | null): Promise<boolean>;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest();
const sessionKey = (cookie: string) => sha256(`session:${cookie}`).toString("hex");

/** A fresh secret: 24 random bytes, URL-safe. */
export function randomToken(): string {
  return randomBytes(24).toString("base64url");
}

/**
 * The secret all instances use: LECTURER_TOKEN when set; otherwise a random one, agreed through
 * the store so that instances sharing Redis share it. `generated` says it was not configured.
 */
export async function resolveLecturerToken(
  store: LecturerStore,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ token: string; generated: boolean }> {
  const configured = env.LECTURER_TOKEN?.trim();
  if (configured) return { token: configured, generated: false };
  return { token: await store.agreeToken(randomToken()), generated: true };
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    try {
      if (!cookies.has(name)) cookies.set(name, decodeURIComponent(value));
    } catch {
      /* a malformed value is no cookie of ours */
    }
  }
  return cookies;
}

/**
 * A browser's request from another site (Origin names a host other than ours) is not trusted; one
 * without Origin is not a browser's cross-site request. The server refuses cross-site requests and
 * sockets before they get here (server/origin.ts); this is the lecturer's own second check.
 */
export function sameOrigin(req: http.IncomingMessage): boolean {
  return isOwnOrigin(req);
}

function isHttps(req: http.IncomingMessage): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted) return true;
  // X-Forwarded-Proto counts only when the connection comes from a proxy TRUST_PROXY names.
  return fromTrustedProxy(req) && req.headers["x-forwarded-proto"] === "https";
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", ...headers });
  res.end(JSON.stringify(body));
}

async function readBody(req: http.IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export function createLecturerAuth(options: LecturerAuthOptions): LecturerAuth {
  const { store } = options;
  const now = options.now ?? Date.now;
  const ttlMs = options.sessionTtlMs ?? 12 * 3600_000;
  const tokenHash = sha256(options.token);
  const log = options.log ?? ((entry) => console.warn(JSON.stringify({ at: new Date().toISOString(), ...entry })));

  const tokenMatches = (given: string) => timingSafeEqual(sha256(given), tokenHash);

  const cookieHeader = (req: http.IncomingMessage, value: string, maxAgeS: number) =>
    `${LECTURER_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${isHttps(req) ? "; Secure" : ""}`;

  const sessionCookie = (req: http.IncomingMessage) => parseCookies(req.headers.cookie).get(LECTURER_COOKIE) || null;

  const isLecturer = async (cookie: string | null) => {
    if (!cookie || cookie.length > 200) return false;
    return store.hasSession(sessionKey(cookie));
  };

  async function signIn(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const client = clientAddress(req);
    const text = await readBody(req);
    if (text === null) return json(res, 413, { error: `the request body is larger than ${MAX_BODY_BYTES} bytes` });
    let token: unknown;
    try {
      token = (JSON.parse(text) as { token?: unknown }).token;
    } catch {
      return json(res, 400, { error: 'send JSON: {"token": "…"}' });
    }
    if (typeof token !== "string" || token.length === 0 || token.length > 1000) {
      return json(res, 400, { error: 'send JSON: {"token": "…"} with the lecturer token as a string' });
    }
    const waitMs = await store.beginTry(client, now());
    if (waitMs > 0) {
      const waitS = Math.ceil(waitMs / 1000);
      log({ event: "lecturer-sign-in-throttled", client, waitS });
      return json(
        res,
        429,
        { error: `too many wrong tries from your address: try again in ${waitS} s`, retryAfterSeconds: waitS },
        { "Retry-After": String(waitS) },
      );
    }
    const ok = tokenMatches(token);
    await store.endTry(client, ok, now());
    if (!ok) {
      log({ event: "lecturer-sign-in-refused", client });
      return json(res, 401, { error: "wrong lecturer token" });
    }
    const cookie = randomBytes(32).toString("base64url");
    await store.addSession(sessionKey(cookie), ttlMs);
    log({ event: "lecturer-signed-in", client });
    json(res, 200, { signedIn: true }, { "Set-Cookie": cookieHeader(req, cookie, Math.floor(ttlMs / 1000)) });
  }

  async function signOut(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const cookie = sessionCookie(req);
    if (cookie) await store.removeSession(sessionKey(cookie));
    json(res, 200, { signedIn: false }, { "Set-Cookie": cookieHeader(req, "", 0) });
  }

  return {
    sessionCookie,
    isLecturer,
    handleHttp(req, res) {
      const { pathname } = new URL(req.url ?? "/", "http://localhost");
      if (!pathname.startsWith("/api/lecturer/")) return false;
      const route = `${req.method} ${pathname}`;
      const fail = (err: unknown) => {
        console.error("lecturer sign-in failed", err);
        if (!res.headersSent) json(res, 500, { error: "internal error; see the server log" });
      };
      if (req.method === "POST" && !sameOrigin(req)) {
        json(res, 403, { error: "cross-site request refused" });
        return true;
      }
      if (route === "POST /api/lecturer/sign-in") signIn(req, res).catch(fail);
      else if (route === "POST /api/lecturer/sign-out") signOut(req, res).catch(fail);
      else if (route === "GET /api/lecturer/me") {
        isLecturer(sessionCookie(req))
          .then((signedIn) => json(res, 200, { signedIn }))
          .catch(fail);
      } else json(res, 404, { error: `no such endpoint: ${route}` });
      return true;
    },
  };
}
