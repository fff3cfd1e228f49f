/**
 * A lecture against two replicas behind HAProxy with Redis, with a rolling restart in the middle.
 *
 *   npm run bench:replicas          (STUDENTS=1000 SPREAD_S=90 by default)
 *
 * Each simulated student is the page's own connection class (components/runner/run-connection.ts,
 * so it reconnects and retries a "server restarting" run exactly as the browser does), from its
 * own loopback address (127.1.x.y, so per-client limits apply per student as in a lecture hall).
 * It opens the deck's socket, waits a random moment within SPREAD_S, runs the example (one in
 * five edited it, so its compile misses the cache) and reads the output to the end. A third of
 * the way in, app1 gets SIGTERM, drains, exits and is started again; once it is back, app2 the
 * same. Prints runs served, runs lost, latency percentiles, refusals by reason, restart times
 * and each replica's peak memory. Starts and stops Redis, HAProxy and the replicas itself;
 * all traffic stays on loopback.
 */
import fs from "node:fs";
import WebSocket from "ws";
import { RunConnection } from "../components/runner/run-connection";
import type { RunEvent, RunRequest } from "../lib/protocol";
import { type Replica, startCluster } from "../test/helpers/cluster";

const STUDENTS = Number(process.env.STUDENTS ?? 1000);
const SPREAD_S = Number(process.env.SPREAD_S ?? 90);
const PROXY_PORT = 3437;
const REPLICA_PORTS = [3435, 3436];
const REDIS_PORT = 6434;

const example = (edited: number | null): RunRequest => ({
  language: "c",
  files: [
    {
      name: "main.c",
      content: `#include <stdio.h>\n#include <unistd.h>\nint main(void) {\n  printf("parent %d\\n", (int)getpid());${edited === null ? "" : `\n  printf("my edit ${edited}\\n");`}\n  return 0;\n}\n`,
    },
  ],
  flags: [],
  args: [],
});

interface Outcome {
  student: number;
  kind: "served" | "lost" | "refused";
  reason: string;
  latencyMs: number;
  retried: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const percentile = (values: number[], p: number) => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};

function rssMiB(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

async function student(i: number, startAt: number): Promise<Outcome> {
  const localAddress = `127.1.${(i >> 8) & 255}.${(i & 255) || 1}`;
  class BoundWebSocket extends WebSocket {
    constructor(url: string) {
      super(url, { localAddress });
    }
  }
  const connection = new RunConnection({
    url: `ws://127.0.0.1:${PROXY_PORT}/ws`,
    WebSocketImpl: BoundWebSocket as never,
    backoffMs: 250,
    maxBackoffMs: 2000,
  });
  try {
    await sleep(Math.max(0, startAt - Date.now()));
    const request = example(i % 5 === 0 ? i : null);
    const sent = Date.now();
    let retried = false;
    const events: RunEvent[] = [];
    const last = await new Promise<RunEvent>((resolve) => {
      const timer = setTimeout(() => resolve({ type: "error", code: "internal", message: "no answer within 300 s" }), 300_000);
      connection.run(
        request,
        (event) => {
          events.push(event);
          if (event.type === "exit" || event.type === "error") {
            clearTimeout(timer);
            resolve(event);
          }
        },
        undefined,
        () => {
          retried = true;
          events.length = 0;
        },
      );
    });
    const latencyMs = Date.now() - sent;
    const stdout = events.map((e) => (e.type === "stdout" ? e.data : "")).join("");
    if (last.type === "exit" && last.exitCode === 0 && stdout.startsWith("parent ")) {
      return { student: i, kind: "served", reason: "ok", latencyMs, retried };
    }
    if (last.type === "error" && last.code === "busy") {
      return { student: i, kind: "refused", reason: last.message.replace(/\d+/g, "N"), latencyMs, retried };
    }
    return {
      student: i,
      kind: "lost",
      reason: last.type === "error" ? `${last.code}: ${last.message}` : last.type === "exit" ? `exit: ${last.message}` : last.type,
      latencyMs,
      retried,
    };
  } finally {
    connection.dispose();
  }
}

async function main(): Promise<void> {
  console.log(`bench:replicas: ${STUDENTS} students over ${SPREAD_S} s, two replicas behind HAProxy with Redis`);
  const cluster = await startCluster({
    proxyPort: PROXY_PORT,
    replicaPorts: REPLICA_PORTS,
    redisPort: REDIS_PORT,
    env: {
      // A lecture queues rather than refuses: everyone pressing Run at once waits their turn.
      SANDBOX_MAX_WAIT_SECONDS: "600",
      SANDBOX_QUEUE_MEMORY_MIB: "512",
      LOG_LEVEL: "warn",
      DRAIN_GRACE_MS: "30000",
    },
  });
  const peakMiB = new Map<string, number>();
  const sampler = setInterval(() => {
    for (const r of cluster.replicas) {
      const key = `${r.name} (pid ${r.process.pid})`;
      peakMiB.set(key, Math.max(peakMiB.get(key) ?? 0, rssMiB(r.process.pid)));
    }
  }, 500);
  const restarts: Array<{ name: string; drainS: number; backS: number }> = [];
  try {
    const t0 = Date.now();
    const students = Array.from({ length: STUDENTS }, (_, i) => student(i, t0 + Math.random() * SPREAD_S * 1000));

    // Rolling restart of both replicas, starting a third of the way in.
    const rolling = (async () => {
      await sleep((SPREAD_S * 1000) / 3);
      for (const name of ["app1", "app2"]) {
        const replica = cluster.replicas.find((r) => r.name === name) as Replica;
        const start = Date.now();
        replica.process.kill("SIGTERM");
        const code = await replica.exited;
        const drainS = (Date.now() - start) / 1000;
        await cluster.restart(name);
        await cluster.waitForProxyState(name, "UP");
        const backS = (Date.now() - start) / 1000;
        restarts.push({ name, drainS, backS });
        console.log(`  ${name}: SIGTERM → exited (code ${code}) in ${drainS.toFixed(1)} s, serving again after ${backS.toFixed(1)} s`);
      }
    })();

    const outcomes = await Promise.all(students);
    await rolling;
    const totalS = (Date.now() - t0) / 1000;

    const served = outcomes.filter((o) => o.kind === "served");
    const lost = outcomes.filter((o) => o.kind === "lost");
    const refused = outcomes.filter((o) => o.kind === "refused");
    const latencies = served.map((o) => o.latencyMs);
    const byReason = (list: Outcome[]) => {
      const counts = new Map<string, number>();
      for (const o of list) counts.set(o.reason, (counts.get(o.reason) ?? 0) + 1);
      return [...counts].map(([reason, n]) => `${n} × ${reason}`).join("; ") || "none";
    };
    console.log("");
    console.log(`students:            ${STUDENTS} (one address each), runs over ${SPREAD_S} s, all done after ${totalS.toFixed(1)} s`);
    console.log(`runs served:         ${served.length} (${served.filter((o) => o.retried).length} of them retried once after "server restarting")`);
    console.log(`runs lost:           ${lost.length}${lost.length ? ` (${byReason(lost)})` : ""}`);
    console.log(`refusals:            ${refused.length}${refused.length ? ` (${byReason(refused)})` : ""}`);
    console.log(
      `latency Run → exit:  p50 ${percentile(latencies, 50)} ms, p95 ${percentile(latencies, 95)} ms, p99 ${percentile(latencies, 99)} ms, max ${Math.max(...latencies)} ms`,
    );
    for (const r of restarts) console.log(`restart ${r.name}:       drained and exited in ${r.drainS.toFixed(1)} s, back in the proxy after ${r.backS.toFixed(1)} s`);
    for (const [key, mib] of peakMiB) console.log(`peak memory ${key}: ${mib.toFixed(0)} MiB RSS`);
  } finally {
    clearInterval(sampler);
    await cluster.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
