/**
 * Where per-client state lives: open connections, the run-rate bucket, windowed usage counters
 * (CPU milliseconds, runs, CPU-limit hits) and abuse flags. In Redis when the server has one
 * (REDIS_URL), so every replica sees the same numbers and a client that switches replica keeps
 * its budget; otherwise in this process's memory. The policy (how much, which message) is in
 * client-limits.ts and quotas.ts; this file only stores and counts.
 */
import { randomUUID } from "node:crypto";
import { type Redis, redisKey } from "./redis";

export interface UsageWindow {
  /** Length of the sliding window. */
  windowMs: number;
  /** The window is kept as this many buckets; the oldest drops out as time moves on. */
  buckets: number;
}

export interface AbuseFlag {
  client: string;
  reason: string;
  /** ms since the epoch */
  flaggedAt: number;
}

export interface UsageStore {
  readonly kind: "redis" | "memory";
  /** Open connections of a client across all replicas. */
  connectionCount(client: string, now: number): Promise<number>;
  /** Counts an open connection; the returned function forgets it again (idempotent). */
  addConnection(client: string, now: number): Promise<() => void>;
  /**
   * Counts one more run going (running or waiting) for a client across all replicas, if it has
   * fewer than `max`; the returned function forgets it again (idempotent). Null when it has `max`.
   */
  takeRunPlace(client: string, max: number, now: number): Promise<(() => void) | null>;
  /** Token bucket: takes one token if there is one; returns the tokens left before taking (may be < 1). */
  takeToken(client: string, perMs: number, burst: number, now: number): Promise<{ taken: boolean; tokens: number }>;
  /** Adds to a windowed counter. */
  add(counter: string, client: string, amount: number, window: UsageWindow, now: number): Promise<void>;
  /** A windowed counter's buckets that are still inside the window: [bucket start ms, amount]. */
  buckets(counter: string, client: string, window: UsageWindow, now: number): Promise<Array<[number, number]>>;
  /** Flags a client; returns false when it was already flagged (within keepMs). */
  flag(flag: AbuseFlag, keepMs: number): Promise<boolean>;
  /** Clients flagged within keepMs, newest first. */
  flags(now: number, keepMs: number): Promise<AbuseFlag[]>;
  close(): void;
}

/** How long a replica's connection counts survive it if it dies without saying goodbye. */
const CONNECTION_LEASE_MS = 30_000;
const LEASE_REFRESH_MS = 10_000;

const bucketMs = (w: UsageWindow) => Math.max(1, Math.floor(w.windowMs / w.buckets));

export function createUsageStore(redis: Redis | null): UsageStore {
  return redis ? new RedisUsageStore(redis) : new MemoryUsageStore();
}

// ---------------------------------------------------------------------------------------------

class MemoryUsageStore implements UsageStore {
  readonly kind = "memory" as const;
  private readonly connections = new Map<string, number>();
  private readonly runsGoing = new Map<string, number>();
  private readonly tokens = new Map<string, { tokens: number; updatedAt: number; burst: number; perMs: number }>();
  private readonly counters = new Map<string, Map<number, number>>();
  private readonly flagged = new Map<string, AbuseFlag>();
  private readonly sweep: NodeJS.Timeout;

  constructor() {
    // Drop full buckets and empty counters now and then so the maps stay as small as the set of active clients.
    this.sweep = setInterval(() => {
      const t = Date.now();
      for (const [client, b] of this.tokens) if (b.tokens + (t - b.updatedAt) * b.perMs >= b.burst) this.tokens.delete(client);
      for (const [key, buckets] of this.counters) {
        for (const start of buckets.keys()) if (start < t - 24 * 3600_000) buckets.delete(start);
        if (buckets.size === 0) this.counters.delete(key);
      }
    }, 60_000);
    this.sweep.unref();
  }

  async connectionCount(client: string): Promise<number> {
    return this.connections.get(client) ?? 0;
  }

  async addConnection(client: string): Promise<() => void> {
    this.connections.set(client, (this.connections.get(client) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.connections.get(client) ?? 1) - 1;
      if (left <= 0) this.connections.delete(client);
      else this.connections.set(client, left);
    };
  }

  async takeRunPlace(client: string, max: number): Promise<(() => void) | null> {
    // Checked and counted in one step: a burst of runs cannot all pass the check before counting.
    const going = this.runsGoing.get(client) ?? 0;
    if (going >= max) return null;
    this.runsGoing.set(client, going + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.runsGoing.get(client) ?? 1) - 1;
      if (left <= 0) this.runsGoing.delete(client);
      else this.runsGoing.set(client, left);
    };
  }

  async takeToken(client: string, perMs: number, burst: number, now: number) {
    const b = this.tokens.get(client) ?? { tokens: burst, updatedAt: now, burst, perMs };
    b.tokens = Math.min(burst, b.tokens + (now - b.updatedAt) * perMs);
    b.updatedAt = now;
    this.tokens.set(client, b);
    const tokens = b.tokens;
    const taken = tokens >= 1;
    if (taken) b.tokens -= 1;
    return { taken, tokens };
  }

  async add(counter: string, client: string, amount: number, window: UsageWindow, now: number) {
    const key = `${counter}\0${client}`;
    const buckets = this.counters.get(key) ?? new Map<number, number>();
    const size = bucketMs(window);
    const start = Math.floor(now / size) * size;
    buckets.set(start, (buckets.get(start) ?? 0) + amount);
    for (const s of buckets.keys()) if (s <= now - window.windowMs - size) buckets.delete(s);
    this.counters.set(key, buckets);
  }

  async buckets(counter: string, client: string, window: UsageWindow, now: number) {
    const buckets = this.counters.get(`${counter}\0${client}`);
    if (!buckets) return [];
    const size = bucketMs(window);
    return [...buckets].filter(([start]) => start + size > now - window.windowMs);
  }

  async flag(flag: AbuseFlag, keepMs: number) {
    const existing = this.flagged.get(flag.client);
    if (existing && existing.flaggedAt > flag.flaggedAt - keepMs) return false;
    this.flagged.set(flag.client, flag);
    return true;
  }

  async flags(now: number, keepMs: number) {
    for (const [client, f] of this.flagged) if (f.flaggedAt <= now - keepMs) this.flagged.delete(client);
    return [...this.flagged.values()].sort((a, b) => b.flaggedAt - a.flaggedAt);
  }

  close() {
    clearInterval(this.sweep);
  }
}

// ---------------------------------------------------------------------------------------------

/** Token bucket in one step, so two replicas cannot both take the last token. */
const TAKE_TOKEN = `
local burst = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 't', 'u')
local now = tonumber(ARGV[1])
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * tonumber(ARGV[2]))
local before = tokens
local taken = 0
if tokens >= 1 then tokens = tokens - 1; taken = 1 end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'u', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {taken, tostring(before)}
`;

/** A lease in a sorted set of leases if fewer than ARGV[2] are alive, in one step. */
const TAKE_LEASE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`;

/** Adds to the bucket of now and drops buckets that left the window. */
const ADD_USAGE = `
redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
local oldest = tonumber(ARGV[3])
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if tonumber(field) < oldest then redis.call('HDEL', KEYS[1], field) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

/**
 * Redis layout (all under osbe:):
 *   conn:<client>        sorted set: connection id → lease expiry (ms); replicas renew their leases
 *   runs:<client>        sorted set: run id → lease expiry (ms): the client's runs running or waiting
 *   rate:<client>        hash t (tokens), u (updated ms)
 *   usage:<name>:<client> hash bucket start (ms) → amount
 *   flags                hash client → JSON AbuseFlag
 */
class RedisUsageStore implements UsageStore {
  readonly kind = "redis" as const;
  private readonly replicaId = randomUUID().slice(0, 8);
  private counter = 0;
  /** This replica's leases (open connections, runs going): id → sorted set key, renewed every LEASE_REFRESH_MS. */
  private readonly open = new Map<string, string>();
  private readonly renew: NodeJS.Timeout;

  constructor(private readonly redis: Redis) {
    redis.defineCommand("osbeTakeToken", { numberOfKeys: 1, lua: TAKE_TOKEN });
    redis.defineCommand("osbeAddUsage", { numberOfKeys: 1, lua: ADD_USAGE });
    redis.defineCommand("osbeTakeLease", { numberOfKeys: 1, lua: TAKE_LEASE });
    this.renew = setInterval(() => void this.renewLeases(), LEASE_REFRESH_MS);
    this.renew.unref();
  }

  private async renewLeases(): Promise<void> {
    if (this.open.size === 0) return;
    const expiry = Date.now() + CONNECTION_LEASE_MS;
    const pipeline = this.redis.pipeline();
    for (const [id, key] of this.open) {
      pipeline.zadd(key, "XX", expiry, id);
      pipeline.pexpire(key, CONNECTION_LEASE_MS);
    }
    await pipeline.exec().catch(() => {
      // Redis away for a moment: the next renewal tries again, well within the lease.
    });
  }

  async connectionCount(client: string, now: number): Promise<number> {
    const key = redisKey("conn", client);
    const [, [, count]] = (await this.redis.multi().zremrangebyscore(key, "-inf", now).zcard(key).exec()) as [
      unknown,
      [unknown, number],
    ];
    return count;
  }

  async addConnection(client: string, now: number): Promise<() => void> {
    const id = `${this.replicaId}:${(this.counter++).toString(36)}`;
    const key = redisKey("conn", client);
    await this.redis.multi().zadd(key, now + CONNECTION_LEASE_MS, id).pexpire(key, CONNECTION_LEASE_MS).exec();
    this.open.set(id, key);
    return this.forgetter(id, key);
  }

  async takeRunPlace(client: string, max: number, now: number): Promise<(() => void) | null> {
    const id = `${this.replicaId}:r${(this.counter++).toString(36)}`;
    const key = redisKey("runs", client);
    const taken = await (this.redis as unknown as { osbeTakeLease(...args: Array<string | number>): Promise<number> }).osbeTakeLease(
      key,
      now,
      max,
      now + CONNECTION_LEASE_MS,
      id,
      CONNECTION_LEASE_MS,
    );
    if (taken !== 1) return null;
    this.open.set(id, key);
    return this.forgetter(id, key);
  }

  private forgetter(id: string, key: string): () => void {
    return () => {
      if (!this.open.delete(id)) return;
      this.redis.zrem(key, id).catch(() => {
        // the lease runs out by itself
      });
    };
  }

  async takeToken(client: string, perMs: number, burst: number, now: number) {
    const ttl = Math.ceil(burst / perMs) + 60_000;
    const [taken, tokens] = (await (
      this.redis as unknown as { osbeTakeToken(...args: Array<string | number>): Promise<[number, string]> }
    ).osbeTakeToken(redisKey("rate", client), now, perMs, burst, ttl)) as [number, string];
    return { taken: taken === 1, tokens: Number(tokens) };
  }

  async add(counter: string, client: string, amount: number, window: UsageWindow, now: number) {
    const size = bucketMs(window);
    const start = Math.floor(now / size) * size;
    const oldest = now - window.windowMs - size;
    await (this.redis as unknown as { osbeAddUsage(...args: Array<string | number>): Promise<number> }).osbeAddUsage(
      redisKey("usage", counter, client),
      start,
      Math.round(amount),
      oldest,
      window.windowMs + size,
    );
  }

  async buckets(counter: string, client: string, window: UsageWindow, now: number) {
    const size = bucketMs(window);
    const all = await this.redis.hgetall(redisKey("usage", counter, client));
    return Object.entries(all)
      .map(([start, amount]) => [Number(start), Number(amount)] as [number, number])
      .filter(([start]) => start + size > now - window.windowMs);
  }

  async flag(flag: AbuseFlag, keepMs: number) {
    const key = redisKey("flags");
    const existing = await this.redis.hget(key, flag.client);
    if (existing && (JSON.parse(existing) as AbuseFlag).flaggedAt > flag.flaggedAt - keepMs) return false;
    await this.redis.hset(key, flag.client, JSON.stringify(flag));
    return true;
  }

  async flags(now: number, keepMs: number) {
    const key = redisKey("flags");
    const all = Object.values(await this.redis.hgetall(key)).map((v) => JSON.parse(v) as AbuseFlag);
    const old = all.filter((f) => f.flaggedAt <= now - keepMs);
    if (old.length > 0) await this.redis.hdel(key, ...old.map((f) => f.client));
    return all.filter((f) => f.flaggedAt > now - keepMs).sort((a, b) => b.flaggedAt - a.flaggedAt);
  }

  close() {
    clearInterval(this.renew);
    // Give this replica's connections back at once instead of waiting for their leases.
    const pipeline = this.redis.pipeline();
    for (const [id, key] of this.open) pipeline.zrem(key, id);
    this.open.clear();
    pipeline.exec().catch(() => {});
  }
}
