/**
 * Live lecture under a lecture hall's load (issue 9's targets):
 *   1. 300 follower WebSocket clients; the lecturer changes slide 50 times: delivery to all
 *      followers p50 / p95 / max (target p95 ≤ 100 ms);
 *   2. the same with two server instances sharing Redis, followers split over both, the lecturer
 *      on one (target p95 ≤ 150 ms);
 *   3. the lecturer types (code mirrored at 10 updates a second, as the page throttles it) for
 *      20 s to 300 followers: the server's CPU (target: below one core).
 * Servers run in their own processes (bench/live-server.ts); Redis is Debian's redis-server on a
 * loopback port, started and stopped here. Latency = the follower's receipt − the lecturer's send,
 * on this process's clock.
 *
 *   npm run bench:live   (FOLLOWERS, SLIDES, BENCH_PORT_BASE, BENCH_REDIS_PORT to change)
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import WebSocket from "ws";
import { startRedisServer } from "../test/helpers/redis-server";

const FOLLOWERS = Number(process.env.FOLLOWERS ?? 300);
const SLIDES = Number(process.env.SLIDES ?? 50);
const PORT_BASE = Number(process.env.BENCH_PORT_BASE ?? 3418);
const REDIS_PORT = Number(process.env.BENCH_REDIS_PORT ?? 6412);
const TOKEN = "bench-lecturer-token";
const DECK = "06-live";

interface Server {
  port: number;
  child: ChildProcess;
  cpuSeconds(): number;
}

async function startServer(port: number, env: Record<string, string> = {}): Promise<Server> {
  const child = spawn("node_modules/.bin/tsx", ["bench/live-server.ts"], {
    env: { ...process.env, BENCH_PORT: String(port), LECTURER_TOKEN: TOKEN, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes('"port"')) resolve();
    });
    child.once("exit", (code) => reject(new Error(`bench server exited (${code})`)));
  });
  // tsx runs the server in a child of its own: measure the process that listens.
  const pids = [child.pid!, ...childPids(child.pid!)];
  return {
    port,
    child,
    cpuSeconds: () => pids.reduce((sum, pid) => sum + cpuOf(pid), 0),
  };
}

function childPids(pid: number): number[] {
  try {
    const kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    return kids.flatMap((k) => [k, ...childPids(k)]);
  } catch {
    return [];
  }
}

/** utime + stime of a process, in seconds. */
function cpuOf(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

async function stopServer(server: Server): Promise<void> {
  const exited = new Promise((resolve) => server.child.once("exit", resolve));
  server.child.kill("SIGTERM");
  await exited;
}

async function signIn(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/api/lecturer/sign-in`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token: TOKEN }),
  });
  if (!res.ok) throw new Error(`sign-in failed: ${res.status}`);
  return res.headers.get("set-cookie")!.split(";")[0];
}

interface Client {
  ws: WebSocket;
  onMessage(fn: (message: { type: string; [k: string]: unknown }, at: number) => void): void;
}

async function connect(port: number, cookie?: string): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: cookie ? { cookie } : {} });
  const handlers: Array<(m: { type: string }, at: number) => void> = [];
  ws.on("message", (data) => {
    const at = performance.now();
    const message = JSON.parse(data.toString());
    for (const h of handlers) h(message, at);
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  return { ws, onMessage: (fn) => handlers.push(fn as (m: { type: string }, at: number) => void) };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

/** Lecturer on servers[0], followers spread over all servers; slide changes, then typing. */
async function scenario(name: string, servers: Server[]): Promise<void> {
  const cookie = await signIn(servers[0].port);
  const lecturer = await connect(servers[0].port, cookie);
  const started = new Promise<void>((resolve) => lecturer.onMessage((m) => m.type === "live-state" && m.session && resolve()));
  lecturer.ws.send(JSON.stringify({ type: "live-join", deck: DECK }));
  lecturer.ws.send(JSON.stringify({ type: "live-start", deck: DECK }));
  await started;

  // Followers join (in batches, as a room does over a minute; here over a few seconds).
  const followers: Client[] = [];
  const slideTimes: Array<Map<number, number>> = [];
  const codeCounts: number[] = [];
  for (let i = 0; i < FOLLOWERS; i += 25) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(25, FOLLOWERS - i) }, (_, j) => connect(servers[(i + j) % servers.length].port)),
    );
    for (const f of batch) {
      const times = new Map<number, number>();
      const index = followers.length;
      codeCounts.push(0);
      f.onMessage((m, at) => {
        if (m.type === "live-slide") times.set((m.slide as { h: number }).h, at);
        if (m.type === "live-code") codeCounts[index]++;
      });
      slideTimes.push(times);
      followers.push(f);
      f.ws.send(JSON.stringify({ type: "live-join", deck: DECK }));
    }
  }
  // Everyone has the state before the clock starts.
  await new Promise((r) => setTimeout(r, 2000));

  const latencies: number[] = [];
  const sentAt = new Map<number, number>();
  for (let h = 1; h <= SLIDES; h++) {
    sentAt.set(h, performance.now());
    lecturer.ws.send(JSON.stringify({ type: "live-slide", deck: DECK, slide: { h, v: 0, f: -1 } }));
    // A lecturer clicks through quickly, but not in a burst: 200 ms between slides.
    await new Promise((r) => setTimeout(r, 200));
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && slideTimes.some((t) => t.size < SLIDES)) await new Promise((r) => setTimeout(r, 100));
  let missing = 0;
  for (const times of slideTimes) {
    for (let h = 1; h <= SLIDES; h++) {
      const at = times.get(h);
      if (at === undefined) missing++;
      else latencies.push(at - sentAt.get(h)!);
    }
  }
  latencies.sort((a, b) => a - b);
  console.log(
    `${name}: ${FOLLOWERS} followers × ${SLIDES} slide changes: p50 ${fmt(percentile(latencies, 50))}, p95 ${fmt(percentile(latencies, 95))}, max ${fmt(latencies.at(-1)!)}` +
      (missing ? `, ${missing} not delivered` : ""),
  );

  // Typing: 10 code updates a second for 20 s, each the whole 30-line example.
  const cpuBefore = servers.map((s) => s.cpuSeconds());
  const t0 = performance.now();
  const lines = Array.from({ length: 30 }, (_, i) => `    printf("line ${i}\\n");`);
  let sent = 0;
  while (performance.now() - t0 < 20_000) {
    lines[sent % 30] = `    printf("edited ${sent}\\n");`;
    const text = `#include <stdio.h>\nint main(void) {\n${lines.join("\n")}\n    return 0;\n}\n`;
    lecturer.ws.send(JSON.stringify({ type: "live-code", deck: DECK, block: "hello", files: [{ name: "main.c", text, hidden: null }] }));
    sent++;
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 1000));
  const wall = (performance.now() - t0) / 1000;
  const cores = servers.map((s, i) => (s.cpuSeconds() - cpuBefore[i]) / wall);
  const received = codeCounts.reduce((a, b) => a + b, 0);
  console.log(
    `${name}: typing mirrored, ${sent} updates to ${FOLLOWERS} followers (${received} of ${sent * FOLLOWERS} delivered): server CPU ${cores.map((c) => `${(c * 100).toFixed(0)} %`).join(" + ")} of one core`,
  );

  lecturer.ws.send(JSON.stringify({ type: "live-end", deck: DECK }));
  await new Promise((r) => setTimeout(r, 300));
  for (const f of followers) f.ws.terminate();
  lecturer.ws.terminate();
}

async function main(): Promise<void> {
  const one = await startServer(PORT_BASE);
  try {
    await scenario("one instance (memory)", [one]);
  } finally {
    await stopServer(one);
  }

  const redis = await startRedisServer(REDIS_PORT);
  const servers: Server[] = [];
  try {
    servers.push(await startServer(PORT_BASE, { REDIS_URL: redis.url }));
    servers.push(await startServer(PORT_BASE + 1, { REDIS_URL: redis.url }));
    await scenario("two instances (Redis)", servers);
  } finally {
    for (const s of servers) await stopServer(s);
    await redis.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
