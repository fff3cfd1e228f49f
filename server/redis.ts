/**
 * The one place the server connects to Redis (ioredis). With REDIS_URL set, state shared by
 * replicas (client limits, quotas, abuse flags, live sessions) lives there; without it each
 * store keeps it in memory. Stores receive the connection; they do not open their own.
 *
 *   const redis = await connectRedisFromEnv();          // null when REDIS_URL is unset
 *   await redis?.incr(redisKey("runs", address));
 *   const subscriber = redis?.duplicate();              // pub/sub needs its own connection
 *
 * Keys of this project all start with "osbe:" (see redisKey) so one Redis can be shared.
 */
import { Redis } from "ioredis";

export type { Redis };

/** REDIS_URL (e.g. redis://127.0.0.1:6379/0), or null when unset or empty. */
export function redisUrlFromEnv(env: Record<string, string | undefined> = process.env): string | null {
  const url = env.REDIS_URL?.trim();
  return url ? url : null;
}

export interface ConnectRedisOptions {
  /** Connection name shown by CLIENT LIST, e.g. "osbe-3431". */
  name?: string;
  /** How long to wait for the first connection before giving up with an error. */
  readyTimeoutMs?: number;
}

/**
 * Connects and waits until Redis answers. Rejects with a readable error when it does not
 * within the timeout (a replica configured for Redis must not start without it). After
 * start, ioredis reconnects by itself; a command during an outage fails after a few retries
 * instead of hanging, so a request answers with an error rather than never.
 */
export async function connectRedis(url: string, options: ConnectRedisOptions = {}): Promise<Redis> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const redis = new Redis(url, {
    connectionName: options.name,
    lazyConnect: true,
    connectTimeout: Math.min(readyTimeoutMs, 5_000),
    maxRetriesPerRequest: 2,
    // Reconnect quickly at first, then at most every 2 s.
    retryStrategy: (times) => Math.min(times * 100, 2_000),
  });
  const state: { lastError: Error | null } = { lastError: null };
  // Without a listener ioredis prints every failed reconnect as an unhandled error event.
  redis.on("error", (err: Error) => {
    if (state.lastError?.message !== err.message) console.error(`redis: ${err.message}`);
    state.lastError = err;
  });
  redis.on("ready", () => {
    state.lastError = null;
  });

  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("timed out")), readyTimeoutMs);
      }),
    ]);
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    const reason = state.lastError?.message ?? (err as Error).message;
    throw new Error(`Redis at ${redactUrl(url)} is not reachable: ${reason}`);
  } finally {
    clearTimeout(timer);
  }
  return redis;
}

/** connectRedis(REDIS_URL), or null when REDIS_URL is not set. */
export async function connectRedisFromEnv(
  env: Record<string, string | undefined> = process.env,
  options: ConnectRedisOptions = {},
): Promise<Redis | null> {
  const url = redisUrlFromEnv(env);
  return url ? connectRedis(url, options) : null;
}

/** Closes politely (QUIT), or drops the connection when Redis does not answer in time; resolves once closed. */
export async function closeRedis(redis: Redis, timeoutMs = 2_000): Promise<void> {
  if (redis.status === "end") return;
  const ended = new Promise<void>((resolve) => redis.once("end", () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  redis.quit().catch(() => {
    // already closing or closed: the disconnect below settles it
  });
  await Promise.race([ended, timedOut]);
  clearTimeout(timer);
  if ((redis.status as string) !== "end") {
    redis.disconnect();
    // While reconnecting to a Redis that is gone, ioredis may never say "end": do not wait for it.
    await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
  }
}

/** A key in this project's namespace: redisKey("limits", "conn", "1.2.3.4") → "osbe:limits:conn:1.2.3.4". */
export function redisKey(...parts: string[]): string {
  return ["osbe", ...parts].join(":");
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(invalid REDIS_URL)";
  }
}
