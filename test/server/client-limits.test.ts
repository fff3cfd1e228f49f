import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClientLimiter, defaultClientLimits, readClientLimits } from "../../server/client-limits";
import { createQuotas, defaultQuotaSettings, readQuotaSettings } from "../../server/quotas";
import { closeRedis, connectRedis, type Redis } from "../../server/redis";
import { createUsageStore, type UsageStore } from "../../server/usage-store";
import { type RedisServer, startRedisServer } from "../helpers/redis-server";

const REDIS_PORT = 6432;
let redisServer: RedisServer;
let redis: Redis;
const stores: UsageStore[] = [];

beforeAll(async () => {
  redisServer = await startRedisServer(REDIS_PORT);
  redis = await connectRedis(redisServer.url);
});
afterAll(async () => {
  for (const store of stores) store.close();
  if (redis) await closeRedis(redis);
  await redisServer?.stop();
});

/** Two stores, as two replicas would have: in memory they are one process's; in Redis two connections. */
const kinds = {
  memory: () => {
    const store = createUsageStore(null);
    stores.push(store);
    return [store, store];
  },
  redis: () => {
    const a = createUsageStore(redis);
    const b = createUsageStore(redis.duplicate());
    stores.push(a, b);
    return [a, b];
  },
};

describe.each(Object.entries(kinds))("client limits (%s)", (kind, makeStores) => {
  // Each test uses its own client names, so the shared Redis needs no flushing between tests.
  const client = (name: string) => `${kind}-${name}-${Math.random().toString(36).slice(2, 8)}`;

  it("bounds connections per address across replicas and frees them on close", async () => {
    const [a, b] = makeStores();
    const one = createClientLimiter({ maxConnectionsPerClient: 2 }, Date.now, a);
    const two = createClientLimiter({ maxConnectionsPerClient: 2 }, Date.now, b);
    const x = client("x");
    const y = client("y");
    const release = await one.openConnection(x);
    await two.openConnection(x);
    expect(await one.connectionRefusal(x)).toMatch(/too many open connections/);
    expect(await two.connectionRefusal(x)).toMatch(/too many open connections/);
    expect(await two.connectionRefusal(y)).toBeNull();
    release();
    release(); // releasing twice counts once
    await expect.poll(() => two.connectionRefusal(x), { timeout: 10_000 }).toBeNull();
  });

  it("allows a burst of runs, then refills at the set rate, whichever replica is asked", async () => {
    let t = 1_000_000;
    const [a, b] = makeStores();
    const one = createClientLimiter({ runsPerMinute: 60, runBurst: 3 }, () => t, a);
    const two = createClientLimiter({ runsPerMinute: 60, runBurst: 3 }, () => t, b);
    const x = client("x");
    expect([await one.takeRun(x), await two.takeRun(x), await one.takeRun(x)]).toEqual([null, null, null]);
    expect(await two.takeRun(x)).toMatch(/too many runs: at most 60 a minute; try again in 1 s/);
    expect(await two.takeRun(client("other"))).toBeNull();
    t += 1000;
    expect(await two.takeRun(x)).toBeNull();
    expect(await one.takeRun(x)).not.toBeNull();
  });

  it("bounds the runs an address has going across replicas, taken at once by a burst, and gives places back", async () => {
    const [a, b] = makeStores();
    const one = createClientLimiter({ maxRunsGoingPerClient: 4 }, Date.now, a);
    const two = createClientLimiter({ maxRunsGoingPerClient: 4 }, Date.now, b);
    const x = client("x");
    // Ten at once over both replicas: exactly four get a place.
    const places = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).takeRunPlace(x)));
    const granted = places.filter((p): p is { release: () => void } => "release" in p);
    expect(granted).toHaveLength(4);
    expect(places.find((p) => "refusal" in p)).toEqual({
      refusal: "too many runs at once from your address: at most 4 running or waiting; run again when one of them has ended",
    });
    expect("release" in (await one.takeRunPlace(client("other")))).toBe(true);
    granted[0]!.release();
    granted[0]!.release(); // releasing twice counts once
    await expect.poll(async () => "release" in (await two.takeRunPlace(x)), { timeout: 10_000 }).toBe(true);
    expect("refusal" in (await one.takeRunPlace(x))).toBe(true);
  });

  it("refuses runs once the CPU budget of the window is spent, saying when it frees up", async () => {
    let t = 10_000_000;
    const [a, b] = makeStores();
    const settings = { ...defaultQuotaSettings, cpuSecondsPerWindow: 10, windowMinutes: 10 };
    const one = createQuotas(a, settings, () => t);
    const two = createQuotas(b, settings, () => t);
    const x = client("x");
    expect(await one.check(x)).toBeNull();
    await one.charge(x, { cpuMs: 6_000, hitCpuLimit: false });
    t += 60_000;
    await two.charge(x, { cpuMs: 4_500, hitCpuLimit: false });
    expect(await one.cpuUsedMs(x)).toBe(10_500);
    const refusal = await two.check(x);
    expect(refusal?.message).toMatch(/CPU quota used up: your runs used 11 CPU seconds in the last 10 min \(at most 10\); try again in 10 min/);
    // The first charge leaves the window 10 min after the end of its 20 s bucket: 9 min 20 s from now.
    expect(refusal?.retryAfterS).toBe(560);
    expect(await one.check(client("other"))).toBeNull();
    t += refusal!.retryAfterS * 1000;
    expect(await one.check(x)).toBeNull();
    expect(await one.cpuUsedMs(x)).toBe(4_500);
  });

  it("flags a client whose runs keep hitting the CPU limit, once, and lists it", async () => {
    let t = 20_000_000;
    const [a, b] = makeStores();
    const settings = { ...defaultQuotaSettings, flagCpuLimitHits: 3, flagRunsPerWindow: 5 };
    const one = createQuotas(a, settings, () => t);
    const two = createQuotas(b, settings, () => t);
    const miner = client("miner");
    expect(await one.charge(miner, { cpuMs: 1000, hitCpuLimit: true })).toBeNull();
    expect(await two.charge(miner, { cpuMs: 1000, hitCpuLimit: true })).toBeNull();
    const flag = await one.charge(miner, { cpuMs: 1000, hitCpuLimit: true });
    expect(flag).toMatchObject({ client: miner, reason: "3 runs hit the CPU limit within 15 min" });
    expect(await two.charge(miner, { cpuMs: 1000, hitCpuLimit: true })).toBeNull(); // already flagged
    const script = client("script");
    for (let i = 0; i < 5; i++) expect(await two.charge(script, { cpuMs: 1, hitCpuLimit: false })).toBeNull();
    t += 1;
    expect((await one.charge(script, { cpuMs: 1, hitCpuLimit: false }))?.reason).toBe("6 runs within 15 min (more than 5)");
    const listed = await two.flags();
    expect(listed.map((f) => f.client)).toEqual(expect.arrayContaining([script, miner]));
    expect(listed.findIndex((f) => f.client === script)).toBeLessThan(listed.findIndex((f) => f.client === miner));
  });
});

describe("client limit settings", () => {
  it("reads CLIENT_LIMITS over defaults that fit a class behind one address, and names a bad setting", () => {
    // A class of a few hundred behind one NAT address must not be refused by default.
    expect(defaultClientLimits.maxConnectionsPerClient).toBeGreaterThanOrEqual(300);
    expect(defaultClientLimits.runBurst).toBeGreaterThanOrEqual(200);
    expect(defaultClientLimits.maxRunsGoingPerClient).toBeGreaterThanOrEqual(200);
    expect(readClientLimits({})).toEqual(defaultClientLimits);
    expect(readClientLimits({ CLIENT_LIMITS: '{"maxConnectionsPerClient":16,"runsPerMinute":120}' })).toEqual({
      ...defaultClientLimits,
      maxConnectionsPerClient: 16,
      runsPerMinute: 120,
    });
    expect(() => readClientLimits({ CLIENT_LIMITS: "{" })).toThrow(/CLIENT_LIMITS is not valid JSON/);
    expect(() => readClientLimits({ CLIENT_LIMITS: '{"connections":3}' })).toThrow(/CLIENT_LIMITS: .*connections/);
    expect(() => readClientLimits({ CLIENT_LIMITS: '{"runBurst":0}' })).toThrow(/CLIENT_LIMITS: runBurst/);
  });
});

describe("quota settings", () => {
  it("reads QUOTAS and says what is wrong with it", () => {
    expect(readQuotaSettings({})).toEqual(defaultQuotaSettings);
    expect(readQuotaSettings({ QUOTAS: '{"cpuSecondsPerWindow": 60}' }).cpuSecondsPerWindow).toBe(60);
    expect(() => readQuotaSettings({ QUOTAS: "{" })).toThrow(/QUOTAS is not valid JSON/);
    expect(() => readQuotaSettings({ QUOTAS: '{"cpu": 1}' })).toThrow(/QUOTAS: .*cpu.*keys: cpuSecondsPerWindow/);
  });
});
