/**
 * Two real replicas behind real HAProxy (deploy/haproxy/haproxy.cfg) sharing a real Redis:
 * per-client limits and CPU quotas hold across replicas (a client that switches replica keeps
 * its budget), a 5 MiB body gets a readable 413 through the proxy, /metrics counts runs and the
 * proxy does not hand it out, a real Prometheus scrapes the replicas, and a SIGTERM during a run
 * in Chromium lets the run finish, after which the page goes on with the other replica.
 *
 * Clients are told apart by their source address: the tests connect from 127.0.0.2, .3 and .4
 * (HAProxy sets X-Forwarded-For from the connection; the replicas trust it with TRUST_PROXY).
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { expect, test } from "@playwright/test";
import WebSocket from "ws";
import { parse, stringify } from "yaml";
import { type Cluster, metricSum, startCluster } from "../test/helpers/cluster";
import { stopChild } from "../test/helpers/redis-server";

const PROXY_PORT = 3433;
const REPLICA_PORTS = [3431, 3432];
const REDIS_PORT = 6433;
const PROMETHEUS_PORT = 9430;

const HELLO = '#include <stdio.h>\nint main(void){puts("hello from a replica");}\n';
// 0.6 s of CPU: over the 0.4 CPU-second quota the cluster runs with. On a loaded machine that
// can take many seconds of wall time, so the burner asks for a long wall limit.
const BURN = "#include <time.h>\nint main(void){while (clock() < 3 * CLOCKS_PER_SEC / 5) {}}\n";

let cluster: Cluster;

interface Answer {
  status: number;
  servedBy: string | undefined;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** A request through the proxy from a given loopback address (the client's identity). */
function request(method: string, urlPath: string, from: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port: PROXY_PORT, path: urlPath, method, localAddress: from, headers: { "Content-Type": "application/json", ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode!,
            servedBy: res.headers["x-served-by"] as string | undefined,
            body: Buffer.concat(chunks).toString("utf8"),
            headers: res.headers,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const runC = (code: string, from: string) => request("POST", "/api/run", from, JSON.stringify({ language: "c", code }));

test.describe.serial("replicas behind HAProxy with Redis", () => {
  test.beforeAll(async () => {
    test.setTimeout(300_000);
    cluster = await startCluster({
      proxyPort: PROXY_PORT,
      replicaPorts: REPLICA_PORTS,
      redisPort: REDIS_PORT,
      env: {
        CLIENT_LIMITS: JSON.stringify({ maxConnectionsPerClient: 4, runsPerMinute: 1, runBurst: 6 }),
        QUOTAS: JSON.stringify({ cpuSecondsPerWindow: 0.4, windowMinutes: 15 }),
        // Long enough for the browser test to answer its program's prompt during the drain.
        DRAIN_GRACE_MS: "90000",
      },
    });
  });

  test.afterAll(async () => {
    test.setTimeout(120_000);
    await cluster?.stop();
  });

  test("the run rate of a client holds across replicas", async () => {
    test.setTimeout(180_000);
    const from = "127.0.0.2";
    const served = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const answer = await runC(HELLO, from);
      expect(answer.status, answer.body).toBe(200);
      expect(JSON.parse(answer.body).run.stdout).toBe("hello from a replica\n");
      served.add(answer.servedBy!);
    }
    // Round robin: both replicas took a share of the six, and both count against one budget.
    expect([...served].sort()).toEqual(["app1", "app2"]);
    for (let i = 0; i < 2; i++) {
      const refused = await runC(HELLO, from);
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.body).error).toMatch(/too many runs: at most 1 a minute; try again in \d+ s/);
      expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    }
    // Another client is not affected.
    expect((await runC(HELLO, "127.0.0.5")).status).toBe(200);
  });

  test("the CPU quota of a client holds across replicas, and the refusal says when to come back", async () => {
    test.setTimeout(180_000);
    const from = "127.0.0.3";
    const burn = await request("POST", "/api/run", from, JSON.stringify({ language: "c", code: BURN, limits: { wallSeconds: 60 } }));
    expect(burn.status, burn.body).toBe(200);
    expect(JSON.parse(burn.body).run).toMatchObject({ exitCode: 0, limit: null });
    expect(JSON.parse(burn.body).run.cpuMs).toBeGreaterThanOrEqual(500);
    // Refused on whichever replica answers, and at least once on the one that did not run it.
    const refusedBy = new Set<string>();
    for (let i = 0; i < 4 && !refusedBy.has(burn.servedBy === "app1" ? "app2" : "app1"); i++) {
      const refused = await runC(HELLO, from);
      expect(refused.status, refused.body).toBe(429);
      expect(JSON.parse(refused.body).error).toMatch(/CPU quota used up: your runs used \d+ CPU seconds in the last 15 min \(at most 0\.4\); try again in \d+ (s|min)/);
      refusedBy.add(refused.servedBy!);
    }
    expect([...refusedBy]).toContain(burn.servedBy === "app1" ? "app2" : "app1");
  });

  test("the connection bound of a client holds across replicas", async () => {
    test.setTimeout(120_000);
    const from = "127.0.0.4";
    const open = (): Promise<{ ws: WebSocket; servedBy: string; closed: Promise<{ code: number; reason: string }> }> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${PROXY_PORT}/ws`, { localAddress: from });
        let servedBy = "";
        const closed = new Promise<{ code: number; reason: string }>((done) => ws.once("close", (code, reason) => done({ code, reason: reason.toString() })));
        ws.once("upgrade", (res) => (servedBy = String(res.headers["x-served-by"])));
        ws.once("open", () => resolve({ ws, servedBy, closed }));
        ws.once("error", reject);
      });
    const sockets = [];
    for (let i = 0; i < 4; i++) sockets.push(await open());
    expect(new Set(sockets.map((s) => s.servedBy))).toEqual(new Set(["app1", "app2"]));
    // The fifth is accepted and closed at once with the reason, whichever replica takes it.
    const fifth = await open();
    const { code, reason } = await fifth.closed;
    expect(code).toBe(4429);
    expect(reason).toMatch(/too many open connections from your address \(at most 4\)/);
    // Closing one frees its place for the client on any replica.
    sockets[0].ws.close();
    await sockets[0].closed;
    await expect
      .poll(
        async () => {
          const again = await open();
          const result = await Promise.race([again.closed.then((c) => c.code), new Promise((r) => setTimeout(() => r("open"), 1000))]);
          again.ws.close();
          return result;
        },
        { timeout: 30_000 },
      )
      .toBe("open");
    for (const s of sockets) s.ws.close();
  });

  test("a 5 MiB body gets a 413 the client can read, through the proxy", async () => {
    const body = Buffer.alloc(5 * 1024 * 1024, "a");
    const answer = await request("POST", "/api/run", "127.0.0.6", body);
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body).error).toMatch(/body is larger than \d+ KiB/);
  });

  test("/metrics counts runs on each replica; the proxy does not hand it out", async () => {
    const viaProxy = await request("GET", "/metrics", "127.0.0.6");
    expect(viaProxy.status).toBe(403);
    const texts = await Promise.all(cluster.replicas.map(async (r) => (await fetch(`${r.url}/metrics`)).text()));
    const ok = texts.map((t) => metricSum(t, "osbe_runs_total", 'outcome="ok"'));
    // Seven hellos and the CPU burner ran, spread over both replicas.
    expect(ok[0] + ok[1]).toBeGreaterThanOrEqual(8);
    expect(ok[0]).toBeGreaterThan(0);
    expect(ok[1]).toBeGreaterThan(0);
    expect(texts.map((t) => metricSum(t, "osbe_quota_refusals_total", 'reason="rate"')).reduce((a, b) => a + b)).toBeGreaterThanOrEqual(2);
    expect(texts.map((t) => metricSum(t, "osbe_quota_refusals_total", 'reason="quota"')).reduce((a, b) => a + b)).toBeGreaterThanOrEqual(1);
    expect(texts[0]).toMatch(/^process_resident_memory_bytes \d+/m);
  });

  test("a real Prometheus scrapes the replicas and has the runs in its counters", async () => {
    test.setTimeout(180_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "osbe-prometheus-"));
    let prometheus: ChildProcess | null = null;
    let output = "";
    try {
      // The deploy configuration, scraping every second, with this cluster's replicas as targets.
      const config = parse(fs.readFileSync("deploy/prometheus/prometheus.yml", "utf8"));
      config.global.scrape_interval = "1s";
      fs.writeFileSync(path.join(dir, "prometheus.yml"), stringify(config));
      fs.mkdirSync(path.join(dir, "targets"));
      fs.writeFileSync(
        path.join(dir, "targets/replicas.json"),
        JSON.stringify([{ targets: cluster.replicas.map((r) => `127.0.0.1:${r.port}`), labels: { env: "test" } }]),
      );
      prometheus = spawn(
        "prometheus",
        [
          `--config.file=${path.join(dir, "prometheus.yml")}`,
          `--storage.tsdb.path=${path.join(dir, "data")}`,
          `--web.listen-address=127.0.0.1:${PROMETHEUS_PORT}`,
          "--log.level=warn",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      prometheus.stdout!.on("data", (d: Buffer) => (output += d.toString()));
      prometheus.stderr!.on("data", (d: Buffer) => (output += d.toString()));
      const query = async (q: string): Promise<number | null> => {
        try {
          const res = await fetch(`http://127.0.0.1:${PROMETHEUS_PORT}/api/v1/query?query=${encodeURIComponent(q)}`);
          const json = (await res.json()) as { data: { result: Array<{ value: [number, string] }> } };
          return json.data.result.length > 0 ? Number(json.data.result[0].value[1]) : null;
        } catch {
          return null;
        }
      };
      await expect.poll(() => query('count(up{job="osbyexample"} == 1)'), { timeout: 120_000, intervals: [1000] }).toBe(2);
      await expect
        .poll(() => query('sum(osbe_runs_total{job="osbyexample",language="c",outcome="ok"})'), { timeout: 60_000, intervals: [1000] })
        .toBeGreaterThanOrEqual(8);
      expect(await query('sum(osbe_compile_cache_total{job="osbyexample"})')).toBeGreaterThan(0);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nprometheus said:\n${output.slice(-3000)}`);
    } finally {
      if (prometheus) await stopChild(prometheus, 10_000);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("SIGTERM during a run: the run finishes, then the page goes on with the other replica", async ({ page }) => {
    test.setTimeout(240_000);
    const connections = async () =>
      Promise.all(cluster.replicas.map(async (r) => metricSum(await (await fetch(`${r.url}/metrics`)).text(), "osbe_websocket_connections")));
    await expect.poll(async () => (await connections()).reduce((a, b) => a + b), { timeout: 30_000 }).toBe(0);

    // No request from the page leaves the machine (no telemetry, fonts or scripts from elsewhere).
    const hosts = new Set<string>();
    page.on("request", (r) => hosts.add(new URL(r.url()).host));
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`http://127.0.0.1:${PROXY_PORT}/decks/04-runnable#/_input`);
    await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
    const runner = page.locator(".reveal .slides section.present [data-runner]");
    await expect(runner.locator(".ace_editor").first()).toBeVisible({ timeout: 30_000 });
    await runner.getByRole("button", { name: /Run/ }).click();
    await expect(runner.locator(".runner-console")).toContainText("Your name?", { timeout: 60_000 });

    // The replica holding the page's socket gets SIGTERM while the program waits for its input.
    let counts: number[] = [];
    await expect
      .poll(async () => {
        counts = await connections();
        return counts.reduce((a, b) => a + b);
      })
      .toBe(1);
    const draining = cluster.replicas[counts[0] === 1 ? 0 : 1];
    const other = cluster.replicas[counts[0] === 1 ? 1 : 0];
    draining.process.kill("SIGTERM");
    await cluster.waitForProxyState(draining.name, "DOWN");

    // The run goes on to its end on the draining replica.
    const input = runner.getByLabel("program input");
    await input.fill("Ada");
    await input.press("Enter");
    await expect(runner.locator(".runner-console")).toContainText("Hello, Ada", { timeout: 30_000 });
    await expect(runner.locator(".runner-status")).toContainText("exited with code 0");
    // Then it closes the page's socket and exits by itself, having drained.
    expect(await draining.exited).toBe(0);
    expect(draining.log()).toMatch(/drained; exiting/);

    // The page carries on with the other replica without a reload.
    await runner.getByRole("button", { name: /Run/ }).click();
    await expect(runner.locator(".runner-console")).toContainText("Your name?", { timeout: 60_000 });
    expect(metricSum(await (await fetch(`${other.url}/metrics`)).text(), "osbe_websocket_connections")).toBe(1);
    await input.fill("Grace");
    await input.press("Enter");
    await expect(runner.locator(".runner-console")).toContainText("Hello, Grace", { timeout: 30_000 });
    await page.screenshot({ path: "e2e/screenshots/replicas-after-drain.png" });
    expect([...hosts].filter((h) => h !== `127.0.0.1:${PROXY_PORT}`)).toEqual([]);
  });
});
