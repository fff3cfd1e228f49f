/**
 * A real HTTP + WebSocket server with live lectures (Next.js left out), and clients that record
 * what they receive. Shared by the memory and the Redis tests.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import WebSocket from "ws";
import type { LiveServerMessage, ServerMessage } from "../../lib/protocol";
import type { Engine } from "../../sandbox/api";
import { createClientLimiter } from "../../server/client-limits";
import { createLive, type Live, type LiveStores } from "../../server/live";
import { createRunSocket, type RunSocket } from "../../server/run-socket";

export const CONTENT = path.resolve("test/fixtures/e2e-content");
export const TOKEN = "test-lecturer-token-0123456789";

export interface Instance {
  base: string;
  live: Live;
  logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

export async function startInstance(engine: Engine, stores: LiveStores, idleMs = 60_000): Promise<Instance> {
  process.env.LECTURER_TOKEN = TOKEN;
  const logs: Array<Record<string, unknown>> = [];
  // What the hub and the sign-in log is kept: refusals must be logged.
  const live = await createLive({ contentDir: CONTENT, settings: { idleMs, signInTtlMs: 3600_000 }, stores, log: (e) => logs.push(e) });
  const runSocket: RunSocket = createRunSocket(engine, createClientLimiter({ maxConnectionsPerClient: 1000 }), { live: live.hub });
  const server = http.createServer((req, res) => {
    if (!live.handleHttp(req, res)) res.writeHead(404).end();
  });
  server.on("upgrade", (req, socket, head) => {
    if (!runSocket.handleUpgrade(req, socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    base: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    live,
    logs,
    async stop() {
      server.closeAllConnections();
      await runSocket.close();
      await live.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export async function signIn(base: string, token = TOKEN): Promise<{ status: number; cookie: string | null; setCookie: string | null; body: Record<string, unknown>; retryAfter: string | null }> {
  const res = await fetch(`http://${base}/api/lecturer/sign-in`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  const setCookie = res.headers.get("set-cookie");
  return {
    status: res.status,
    setCookie,
    cookie: setCookie ? setCookie.split(";")[0] : null,
    body: (await res.json()) as Record<string, unknown>,
    retryAfter: res.headers.get("retry-after"),
  };
}

export type Client = Awaited<ReturnType<typeof connect>>;

/** A WebSocket client (with the lecturer's cookie when given) that records and waits. */
export async function connect(base: string, cookie?: string, origin?: string) {
  const ws = new WebSocket(`ws://${base}/ws`, { headers: { ...(cookie ? { cookie } : {}), ...(origin ? { origin } : {}) } });
  const messages: ServerMessage[] = [];
  const waiters = new Set<() => void>();
  ws.on("message", (data) => {
    messages.push(JSON.parse(data.toString()));
    for (const w of waiters) w();
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const live = () => messages.filter((m): m is LiveServerMessage => m.type.startsWith("live-"));
  const waitFor = async <T extends ServerMessage>(predicate: (m: ServerMessage) => m is T, timeoutMs?: number): Promise<T> =>
    (await waitUntil(() => messages.find(predicate) as T | undefined, timeoutMs)) as T;
  const waitUntil = async <T>(check: () => T | undefined | false, timeoutMs = 20_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = check();
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(messages).slice(-3000)}`);
      await new Promise<void>((resolve) => {
        const done = () => {
          waiters.delete(done);
          resolve();
        };
        waiters.add(done);
        setTimeout(done, 100);
      });
    }
  };
  /** The newest message of a type, after `from` messages. */
  const last = <K extends LiveServerMessage["type"]>(type: K, from = 0) =>
    messages.slice(from).filter((m): m is Extract<LiveServerMessage, { type: K }> => m.type === type).at(-1);
  const send = (message: unknown) => ws.send(JSON.stringify(message));
  const close = () =>
    new Promise<void>((resolve) => {
      if (ws.readyState === ws.CLOSED) return resolve();
      ws.once("close", () => resolve());
      ws.close();
    });
  return { ws, messages, live, waitFor, waitUntil, last, send, close };
}
