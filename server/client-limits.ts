/**
 * Per-client bounds: open WebSocket connections, runs going at once (running or waiting, both
 * endpoints together) and a run rate (token bucket) per address.
 * Kept where the usage store keeps them: with REDIS_URL in Redis, so the bounds hold across
 * replicas; otherwise in this process's memory.
 *
 * "Client" is an address, and a whole class behind one NAT (or behind a proxy without
 * TRUST_PROXY) is one address: the defaults are sized for that, a few hundred students with a
 * tab or two each and a burst when everyone presses Run at once. CLIENT_LIMITS overrides them.
 */
import { z } from "zod";
import { readJsonSettings } from "./json-settings";
import { createUsageStore, type UsageStore } from "./usage-store";

export interface ClientLimits {
  /** WebSocket connections one address may hold open. */
  maxConnectionsPerClient: number;
  /** Runs one address may start per minute (WebSocket and HTTP together), with this burst. */
  runsPerMinute: number;
  runBurst: number;
  /**
   * Runs one address may have running or waiting at once, WebSocket and HTTP together: one
   * client cannot fill the sandboxes and the queue (its memory, its wait bound) for everyone.
   */
  maxRunsGoingPerClient: number;
}

export const defaultClientLimits: ClientLimits = {
  maxConnectionsPerClient: 500,
  runsPerMinute: 1200,
  runBurst: 300,
  // A class behind one NAT address presses Run on the same slide at once.
  maxRunsGoingPerClient: 300,
};

const ClientLimitsSchema = z
  .object({
    maxConnectionsPerClient: z.number().int().positive(),
    runsPerMinute: z.number().positive(),
    runBurst: z.number().int().positive(),
    maxRunsGoingPerClient: z.number().int().positive(),
  })
  .partial()
  .strict();

/** Defaults, then CLIENT_LIMITS (JSON, e.g. `{"maxConnectionsPerClient":32}`) from the environment. */
export function readClientLimits(env: Record<string, string | undefined> = process.env): ClientLimits {
  return readJsonSettings("CLIENT_LIMITS", env.CLIENT_LIMITS, defaultClientLimits, ClientLimitsSchema);
}

export interface ClientLimiter {
  /** Why a new connection from this address is refused, or null. */
  connectionRefusal(address: string): Promise<string | null>;
  /** Counts an open connection; call the returned function when it closes. */
  openConnection(address: string): Promise<() => void>;
  /** Takes one run from the address's budget; returns why it is refused, or null. */
  takeRun(address: string): Promise<string | null>;
  /**
   * Counts a run as going (running or waiting) until the returned function is called, or says
   * why the address may not have one more going now.
   */
  takeRunPlace(address: string): Promise<{ release: () => void } | { refusal: string }>;
}

/**
 * The bounds over a usage store: in memory by default, in Redis (shared by replicas) when the
 * server passes a Redis-backed store.
 */
export function createClientLimiter(
  limits: Partial<ClientLimits> = {},
  now: () => number = Date.now,
  store: UsageStore = createUsageStore(null),
): ClientLimiter {
  const l = { ...defaultClientLimits, ...limits };
  const perMs = l.runsPerMinute / 60_000;

  return {
    async connectionRefusal(address) {
      const open = await store.connectionCount(address, now());
      return open >= l.maxConnectionsPerClient
        ? `too many open connections from your address (at most ${l.maxConnectionsPerClient}); close other tabs of this course or wait`
        : null;
    },
    openConnection(address) {
      return store.addConnection(address, now());
    },
    async takeRun(address) {
      const { taken, tokens } = await store.takeToken(address, perMs, l.runBurst, now());
      if (!taken) {
        const waitS = Math.ceil((1 - tokens) / perMs / 1000);
        return `too many runs: at most ${l.runsPerMinute} a minute; try again in ${waitS} s`;
      }
      return null;
    },
    async takeRunPlace(address) {
      const release = await store.takeRunPlace(address, l.maxRunsGoingPerClient, now());
      if (release) return { release };
      return {
        refusal: `too many runs at once from your address: at most ${l.maxRunsGoingPerClient} running or waiting; run again when one of them has ended`,
      };
    },
  };
}

/** The client's address (its /64 for IPv6), from X-Forwarded-For only as TRUST_PROXY allows: server/trust-proxy.ts. */
export { clientAddress } from "./trust-proxy";
