/**
 * Per-client bounds: open WebSocket connections and a run rate (token bucket) per address.
 * Kept in this process's memory; with several replicas each bounds its own share, which is
 * what a per-replica load balancer hands it.
 *
 * "Client" is an address, and a whole class behind one NAT (or behind a proxy without
 * TRUST_PROXY) is one address: the defaults are sized for that, a few hundred students with a
 * tab or two each and a burst when everyone presses Run at once. CLIENT_LIMITS overrides them.
 */
import type http from "node:http";
import { z } from "zod";

export interface ClientLimits {
  /** WebSocket connections one address may hold open. */
  maxConnectionsPerClient: number;
  /** Runs one address may start per minute (WebSocket and HTTP together), with this burst. */
  runsPerMinute: number;
  runBurst: number;
}

export const defaultClientLimits: ClientLimits = {
  maxConnectionsPerClient: 500,
  runsPerMinute: 1200,
  runBurst: 300,
};

const ClientLimitsSchema = z
  .object({
    maxConnectionsPerClient: z.number().int().positive(),
    runsPerMinute: z.number().positive(),
    runBurst: z.number().int().positive(),
  })
  .partial()
  .strict();

/** Defaults, then CLIENT_LIMITS (JSON, e.g. `{"maxConnectionsPerClient":32}`) from the environment. */
export function readClientLimits(env: Record<string, string | undefined> = process.env): ClientLimits {
  if (!env.CLIENT_LIMITS) return { ...defaultClientLimits };
  let json: unknown;
  try {
    json = JSON.parse(env.CLIENT_LIMITS);
  } catch (error) {
    throw new Error(`CLIENT_LIMITS is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = ClientLimitsSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`).join("; ");
    throw new Error(`CLIENT_LIMITS: ${issues} (keys: maxConnectionsPerClient, runsPerMinute, runBurst)`);
  }
  return { ...defaultClientLimits, ...parsed.data };
}

export interface ClientLimiter {
  /** Why a new connection from this address is refused, or null. */
  connectionRefusal(address: string): string | null;
  /** Counts an open connection; call the returned function when it closes. */
  openConnection(address: string): () => void;
  /** Takes one run from the address's budget; returns why it is refused, or null. */
  takeRun(address: string): string | null;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export function createClientLimiter(limits: Partial<ClientLimits> = {}, now: () => number = Date.now): ClientLimiter {
  const l = { ...defaultClientLimits, ...limits };
  const connections = new Map<string, number>();
  const buckets = new Map<string, Bucket>();
  const perMs = l.runsPerMinute / 60_000;

  // Drop full buckets now and then so the map stays as small as the set of active clients.
  const sweep = setInterval(() => {
    const t = now();
    for (const [address, bucket] of buckets) {
      if (bucket.tokens + (t - bucket.updatedAt) * perMs >= l.runBurst) buckets.delete(address);
    }
  }, 60_000);
  sweep.unref();

  return {
    connectionRefusal(address) {
      const open = connections.get(address) ?? 0;
      return open >= l.maxConnectionsPerClient
        ? `too many open connections from your address (at most ${l.maxConnectionsPerClient}); close other tabs of this course or wait`
        : null;
    },
    openConnection(address) {
      connections.set(address, (connections.get(address) ?? 0) + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (connections.get(address) ?? 1) - 1;
        if (left <= 0) connections.delete(address);
        else connections.set(address, left);
      };
    },
    takeRun(address) {
      const t = now();
      const bucket = buckets.get(address) ?? { tokens: l.runBurst, updatedAt: t };
      bucket.tokens = Math.min(l.runBurst, bucket.tokens + (t - bucket.updatedAt) * perMs);
      bucket.updatedAt = t;
      buckets.set(address, bucket);
      if (bucket.tokens < 1) {
        const waitS = Math.ceil((1 - bucket.tokens) / perMs / 1000);
        return `too many runs: at most ${l.runsPerMinute} a minute; try again in ${waitS} s`;
      }
      bucket.tokens -= 1;
      return null;
    },
  };
}

/** The client's address. X-Forwarded-For is trusted only when TRUST_PROXY is set (behind a known proxy). */
export function clientAddress(req: http.IncomingMessage): string {
  if (process.env.TRUST_PROXY) {
    const forwarded = req.headers["x-forwarded-for"];
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(",")[0]?.trim();
    if (first) return first;
  }
  return req.socket.remoteAddress ?? "unknown";
}
