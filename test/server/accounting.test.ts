/**
 * What the server notes about runs, against the real engine over real HTTP: metrics, the CPU
 * charged to the client, one JSON log line per run and per refusal, abuse flags in health,
 * quota refusals; bodies that are too large or too slow; and a store (Redis) that goes away.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine } from "../../sandbox/api";
import { clientAddress, createClientLimiter } from "../../server/client-limits";
import { createLogger } from "../../server/log";
import { createMetrics } from "../../server/metrics";
import { createQuotas, defaultQuotaSettings } from "../../server/quotas";
import { closeRedis, connectRedis } from "../../server/redis";
import { createRunAccounting } from "../../server/run-accounting";
import { createRunApi } from "../../server/run-api";
import { createUsageStore } from "../../server/usage-store";
import { metricSum } from "../helpers/cluster";
import { startRedisServer } from "../helpers/redis-server";
import { startTestEngine, type TestEngine } from "../sandbox/helpers";

let t: TestEngine;
let engine: Engine;
let server: http.Server;
let base: string;
const metrics = createMetrics();
const logLines: Array<Record<string, unknown>> = [];
const logStream = new Writable({
  write(chunk, _encoding, done) {
    for (const line of chunk.toString().split("\n")) if (line) logLines.push(JSON.parse(line));
    done();
  },
});

beforeAll(async () => {
  t = startTestEngine(253_000);
  engine = t.engine;
  const store = createUsageStore(null);
  const limiter = createClientLimiter({}, Date.now, store);
  const quotas = createQuotas(store, { ...defaultQuotaSettings, cpuSecondsPerWindow: 0.8, flagCpuLimitHits: 2 });
  const accounting = createRunAccounting({ limiter, quotas, metrics, log: createLogger({}, logStream) });
  // Stands in for the lecturer sign-in (server/live): a lecturer's runs are charged to "lecturer".
  const runClient = async (req: http.IncomingMessage) =>
    req.headers.cookie === "osbe_lecturer=signed-in" ? "lecturer" : clientAddress(req);
  const api = createRunApi(engine, limiter, { accounting, bodyTimeoutMs: 1_000, runClient });
  server = http.createServer((req, res) => {
    if (!api(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await t.dispose();
  await new Promise((resolve) => server.close(resolve));
});

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
type Json = Record<string, any>;
const post = async (body: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(`${base}/api/run`, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json", ...headers } });
  return { status: res.status, json: (await res.json()) as Json };
};
const metricsText = async () => metrics.registry.metrics();
const SPIN = "int main(void){ for (;;) {} }\n";

describe("run accounting over HTTP", () => {
  it("counts a run, charges its CPU time (compile included) and logs it as one JSON line", async () => {
    // A source of its own, so the compile misses the (persistent) cache.
    const code = `#include <stdio.h>\nint main(void){puts("counted");} // ${Date.now()}-${Math.random()}\n`;
    const answer = await post({ language: "c", code });
    expect(answer.status).toBe(200);
    const text = await metricsText();
    expect(metricSum(text, "osbe_runs_total", 'outcome="ok"')).toBe(1);
    expect(metricSum(text, "osbe_compile_cache_total", 'result="miss"')).toBe(1);
    expect(metricSum(text, "osbe_compile_duration_seconds_count")).toBe(1);
    expect(metricSum(text, "osbe_queue_wait_seconds_count")).toBe(1);
    // The compiler's CPU time is charged, not its wall time: more than the program's few ms.
    expect(metricSum(text, "osbe_cpu_seconds_total")).toBeGreaterThan(answer.json.run.cpuMs / 1000);
    await expect.poll(() => logLines.filter((l) => l.event === "run").length).toBe(1);
    const line = logLines.find((l) => l.event === "run")!;
    expect(line).toMatchObject({ client: "127.0.0.1", via: "http", language: "c", outcome: "ok", cached: false, limit: null });
    expect(line.cpuMs).toBeGreaterThan(answer.json.run.cpuMs);
    expect(line.compileMs).toBeGreaterThan(0);
    expect(typeof line.time).toBe("string");
  });

  it("flags a client whose runs keep hitting the CPU limit, lists it in health, then refuses it over quota", async () => {
    for (let i = 0; i < 2; i++) {
      // A long wall limit: on a loaded machine half a CPU second can take many seconds.
      const answer = await post({ language: "c", code: SPIN, limits: { cpuSeconds: 0.5, wallSeconds: 60 } });
      expect(answer.status).toBe(200);
      expect(answer.json.run.limit).toBe("cpu");
    }
    await expect.poll(async () => metricSum(await metricsText(), "osbe_abuse_flags_total")).toBe(1);
    expect(metricSum(await metricsText(), "osbe_runs_total", 'outcome="limit-cpu"')).toBe(2);
    const flagLine = logLines.find((l) => l.event === "abuse-flag")!;
    expect(flagLine).toMatchObject({ level: "warn", client: "127.0.0.1", reason: "2 runs hit the CPU limit within 15 min" });
    const health = (await (await fetch(`${base}/api/health`)).json()) as { flaggedClients: Array<{ client: string; reason: string }> };
    expect(health.flaggedClients).toEqual([expect.objectContaining({ client: "127.0.0.1", reason: "2 runs hit the CPU limit within 15 min" })]);
    // Through a proxy the health answer names no address, only how many are flagged.
    const viaProxy = (await (await fetch(`${base}/api/health`, { headers: { "X-Forwarded-For": "1.2.3.4" } })).json()) as { flaggedClients: number };
    expect(viaProxy.flaggedClients).toBe(1);

    // More than 0.8 CPU seconds used: the next run is refused, saying why and when.
    const refused = await post({ language: "c", code: SPIN });
    expect(refused.status).toBe(429);
    expect(refused.json.error).toMatch(/CPU quota used up: .*\(at most 0\.8\); try again in \d+ (s|min)/);
    const text = await metricsText();
    expect(metricSum(text, "osbe_quota_refusals_total", 'reason="quota"')).toBe(1);
    expect(metricSum(text, "osbe_runs_total", 'outcome="refused-quota"')).toBe(1);
    expect(logLines.find((l) => l.event === "refusal")).toMatchObject({ client: "127.0.0.1", reason: "quota", language: "c" });

    // The signed-in lecturer, from the same address, has a budget of their own.
    const lecturer = await post({ language: "c", code: "int main(void){return 0;}\n" }, { Cookie: "osbe_lecturer=signed-in" });
    expect(lecturer.status).toBe(200);
    await expect.poll(() => logLines.filter((l) => l.event === "run" && l.client === "lecturer").length).toBe(1);
  });

  it("a 5 MiB body gets a 413 the client reads, not a reset", async () => {
    const res = await fetch(`${base}/api/run`, { method: "POST", headers: { "Content-Type": "application/json" }, body: Buffer.alloc(5 * 1024 * 1024, "x") });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toMatch(/body is larger than \d+ KiB/);
  });

  it("a body that never finishes gets a 408 and the connection is closed", async () => {
    const { port } = new URL(base);
    const socket = net.connect(Number(port), "127.0.0.1");
    let answer = "";
    socket.on("data", (d) => (answer += d.toString()));
    const closed = new Promise((resolve) => socket.on("close", resolve));
    socket.write("POST /api/run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"lang");
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(answer).toMatch(/the request body did not arrive within 1 s/);
  });
});

describe("a store that goes away", () => {
  it("lets runs through unmetered, counting and logging that it did", async () => {
    const redisServer = await startRedisServer(6435);
    const redis = await connectRedis(redisServer.url);
    const store = createUsageStore(redis);
    const storeMetrics = createMetrics();
    const lines: Array<Record<string, unknown>> = [];
    const stream = new Writable({
      write(chunk, _e, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    });
    const limiter = createClientLimiter({}, Date.now, store);
    const accounting = createRunAccounting({ limiter, quotas: createQuotas(store), metrics: storeMetrics, log: createLogger({}, stream) });
    try {
      const request = { language: "c" as const, files: [{ name: "main.c", content: "int main(void){}" }], flags: [], args: [] };
      expect((await accounting.admit("9.9.9.9", request, "http")).refusal).toBeNull();
      await redisServer.stop();
      expect((await accounting.admit("9.9.9.9", request, "http")).refusal).toBeNull();
      expect(metricSum(await storeMetrics.registry.metrics(), "osbe_store_errors_total")).toBe(1);
      expect(lines.find((l) => l.event === "store-error")).toMatchObject({ level: "error", client: "9.9.9.9" });
    } finally {
      store.close();
      await closeRedis(redis);
      await redisServer.stop();
    }
  });
});
