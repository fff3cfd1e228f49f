import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeRedis, connectRedis, connectRedisFromEnv, redactUrl, redisKey } from "../../server/redis";
import { type RedisServer, startRedisServer } from "../helpers/redis-server";

const port = 6430;

describe("Redis connection (real redis-server)", () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer(port);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("connects from REDIS_URL, stores and reads, and closes", async () => {
    const redis = await connectRedisFromEnv({ REDIS_URL: server.url }, { name: "osbe-test" });
    expect(redis).not.toBeNull();
    await redis!.set(redisKey("test", "a"), "1");
    expect(await redis!.get("osbe:test:a")).toBe("1");
    expect(await redis!.client("GETNAME")).toBe("osbe-test");
    // A duplicate is a second connection, as pub/sub needs.
    const sub = redis!.duplicate();
    const got = new Promise<string>((resolve) => sub.on("message", (_channel: string, message: string) => resolve(message)));
    await sub.subscribe(redisKey("test", "channel"));
    await redis!.publish(redisKey("test", "channel"), "hello");
    expect(await got).toBe("hello");
    await closeRedis(sub);
    await closeRedis(redis!);
    expect(redis!.status).toBe("end");
  });

  it("is null without REDIS_URL", async () => {
    expect(await connectRedisFromEnv({})).toBeNull();
    expect(await connectRedisFromEnv({ REDIS_URL: " " })).toBeNull();
  });

  it("refuses to start with a readable error when Redis is not there", async () => {
    await expect(connectRedis("redis://:secret@127.0.0.1:6439", { readyTimeoutMs: 5_000 })).rejects.toThrow(
      /Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:6439 is not reachable: .*ECONNREFUSED/,
    );
    expect(redactUrl("redis://u:pw@h:1/0")).toBe("redis://u:***@h:1/0");
  });

  it("stop() ends the server and removes its dir", async () => {
    const other = await startRedisServer(port + 1);
    expect(fs.existsSync(other.dir)).toBe(true);
    await other.stop();
    expect(fs.existsSync(other.dir)).toBe(false);
    expect(() => process.kill(other.pid, 0)).toThrow();
    await expect(startRedisServer(port)).rejects.toThrow(/did not start.*\n[\s\S]*Address already in use/);
  });
});
