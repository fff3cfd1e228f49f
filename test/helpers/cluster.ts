/**
 * A real small deployment on loopback for tests and benches: redis-server, N replicas of the
 * production server (`node --import tsx server/index.ts`, each with REDIS_URL and TRUST_PROXY),
 * and HAProxy in front with deploy/haproxy/haproxy.cfg. Everything started here is stopped by
 * stop(), also when a start fails half-way. Needs a Next.js build (.next) like `npm start`.
 *
 *   const cluster = await startCluster({ proxyPort: 3433, replicaPorts: [3431, 3432], redisPort: 6433 });
 *   ... fetch(`${cluster.proxyUrl}/api/health`) ...
 *   await cluster.stop();
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type RedisServer, startRedisServer, stopChild } from "./redis-server";

export interface Replica {
  name: string;
  port: number;
  /** http://127.0.0.1:<port>: the replica itself, not through the proxy. */
  url: string;
  process: ChildProcess;
  /** Settles with the exit code (or signal) once the process ended. */
  exited: Promise<number | string>;
  log(): string;
}

export interface Cluster {
  proxyUrl: string;
  replicas: Replica[];
  redis: RedisServer;
  /** Starts the replica of that name again (after it exited), and waits until it is ready. */
  restart(name: string): Promise<Replica>;
  /** Waits until the proxy's health check sees the replica up (or down). */
  waitForProxyState(name: string, state: "UP" | "DOWN", timeoutMs?: number): Promise<void>;
  haproxyLog(): string;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  proxyPort: number;
  replicaPorts: number[];
  redisPort: number;
  /** Extra environment for the replicas (CLIENT_LIMITS, QUOTAS, DRAIN_GRACE_MS …). */
  env?: Record<string, string>;
  contentDir?: string;
  /** How long a replica may take to be ready. */
  readyTimeoutMs?: number;
}

const ROOT = path.resolve(import.meta.dirname, "../..");

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
  };
  try {
    const redis = await startRedisServer(options.redisPort);
    stops.push(() => redis.stop());

    const replicas = new Map<string, Replica>();
    const startReplica = async (name: string, port: number): Promise<Replica> => {
      const replica = spawnReplica(name, port, redis.url, options);
      replicas.set(name, replica);
      stops.push(async () => {
        await stopChild(replica.process, 15_000);
      });
      await waitForReady(replica, options.readyTimeoutMs ?? 180_000);
      return replica;
    };
    const names = options.replicaPorts.map((_, i) => `app${i + 1}`);
    // One after the other: two Next.js start-ups at once on a loaded 2-core machine only take longer.
    for (const [i, name] of names.entries()) await startReplica(name, options.replicaPorts[i]);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "osbe-haproxy-"));
    stops.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const statsSocket = path.join(dir, "stats.sock");
    // The deploy config, plus a stats socket so tests can read each server's state.
    const config = fs
      .readFileSync(path.join(ROOT, "deploy/haproxy/haproxy.cfg"), "utf8")
      .replace(/^global\n/m, `global\n  stats socket ${statsSocket} mode 600 level admin\n`);
    const configFile = path.join(dir, "haproxy.cfg");
    fs.writeFileSync(configFile, config);
    const env: Record<string, string> = { ...(process.env as Record<string, string>), OSBE_PROXY_BIND: `127.0.0.1:${options.proxyPort}` };
    for (const [i, port] of options.replicaPorts.entries()) env[`OSBE_REPLICA_${i + 1}`] = `127.0.0.1:${port}`;
    if (options.replicaPorts.length !== 2) throw new Error("deploy/haproxy/haproxy.cfg names two replicas");
    const haproxy = spawn("haproxy", ["-db", "-f", configFile], { env: env as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"] });
    let haproxyOutput = "";
    haproxy.stdout!.on("data", (d: Buffer) => (haproxyOutput += d.toString()));
    haproxy.stderr!.on("data", (d: Buffer) => (haproxyOutput += d.toString()));
    stops.push(() => stopChild(haproxy, 5_000));
    const proxyUrl = `http://127.0.0.1:${options.proxyPort}`;

    const serverState = async (name: string): Promise<string> => {
      const out = await haproxyCommand(statsSocket, "show stat\n");
      const header = out.split("\n")[0].replace(/^# /, "").split(",");
      const row = out.split("\n").find((line) => line.startsWith(`replicas,${name},`));
      return row ? row.split(",")[header.indexOf("status")] : "missing";
    };
    const waitForProxyState = async (name: string, state: "UP" | "DOWN", timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      let last = "";
      while (Date.now() < deadline) {
        last = await serverState(name).catch((err) => String(err));
        if (last.startsWith(state)) return;
        if (haproxy.exitCode !== null) break;
        await sleep(200);
      }
      throw new Error(`haproxy: ${name} is ${last}, not ${state}, after ${timeoutMs} ms\n${haproxyOutput}`);
    };
    for (const name of names) await waitForProxyState(name, "UP");

    return {
      proxyUrl,
      get replicas() {
        return names.map((n) => replicas.get(n)!);
      },
      redis,
      async restart(name) {
        const i = names.indexOf(name);
        const old = replicas.get(name)!;
        await old.exited;
        const replica = await startReplica(name, options.replicaPorts[i]);
        return replica;
      },
      waitForProxyState,
      haproxyLog: () => haproxyOutput,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function spawnReplica(name: string, port: number, redisUrl: string, options: ClusterOptions): Replica {
  const child = spawn(process.execPath, ["--import", "tsx", "server/index.ts"], {
    cwd: ROOT,
    env: {
      ...(process.env as Record<string, string>),
      PORT: String(port),
      HOST: "127.0.0.1",
      NODE_ENV: "production",
      NEXT_TELEMETRY_DISABLED: "1",
      REDIS_URL: redisUrl,
      TRUST_PROXY: "1",
      REPLICA_NAME: name,
      CONTENT_DIR: options.contentDir ?? path.join(ROOT, "test/fixtures/e2e-content"),
      DRAIN_READY_DELAY_MS: "1500",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  // Keep the end of the log only: a long bench writes a line per run.
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-200_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "?")));
  return { name, port, url: `http://127.0.0.1:${port}`, process: child, exited, log: () => output };
}

async function waitForReady(replica: Replica, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void replica.exited.then(() => (gone = true));
  while (Date.now() < deadline && !gone) {
    try {
      const res = await fetch(`${replica.url}/api/health`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`replica ${replica.name} on port ${replica.port} ${gone ? "exited" : "was not ready"}:\n${replica.log().slice(-4000)}`);
}

function haproxyCommand(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    import("node:net").then(({ createConnection }) => {
      const socket = createConnection(socketPath);
      let out = "";
      socket.on("data", (d) => (out += d.toString()));
      socket.on("end", () => resolve(out));
      socket.on("error", reject);
      socket.write(command);
    }, reject);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sums a metric's samples in Prometheus text, optionally only those whose labels include `labels`. */
export function metricSum(text: string, name: string, labels = ""): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith("{") || rest.startsWith(" "))) continue;
    if (labels && !rest.includes(labels)) continue;
    sum += Number(line.split(" ").at(-1));
  }
  return sum;
}
