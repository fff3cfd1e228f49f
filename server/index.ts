/**
 * The one Node process: Next.js pages, the JSON API and the WebSocket endpoint on one port.
 * `tsx server/index.ts` serves the production build; `--dev` runs Next in development mode.
 */
import http from "node:http";
import { parse } from "node:url";
import next from "next";
import { readCourseConfig } from "../lib/deck/server/course";
import { createEngine } from "../sandbox";
import { readServerConfig } from "./config";
import { clientAddress, createClientLimiter, readClientLimits } from "./client-limits";
import { answerMalformedPath, decodablePath, refuseUpgrade } from "./http-guards";
import { log } from "./log";
import { createMetrics } from "./metrics";
import { createQuotas, readQuotaSettings } from "./quotas";
import { closeRedis, connectRedisFromEnv } from "./redis";
import { createRunAccounting } from "./run-accounting";
import { createRunApi } from "./run-api";
import { createRunSocket } from "./run-socket";
import { createUsageStore } from "./usage-store";
import { httpServerOptions, readWebLimits } from "./web-limits";
import { createLive } from "./live";
import { createPrewarmer } from "./prewarm";
import { COMMON_HEADERS } from "../lib/web/security-headers";
import { createOriginPolicy, readAllowedOrigins, refuseForeignRequest, refuseForeignUpgrade } from "./origin";

async function main(): Promise<void> {
  // Settings first: a bad one stops the server with its name, before anything starts.
  let config: ReturnType<typeof readServerConfig>;
  let webLimits: ReturnType<typeof readWebLimits>;
  let clientLimits: ReturnType<typeof readClientLimits>;
  let quotaSettings: ReturnType<typeof readQuotaSettings>;
  let allowedOrigins: string[];
  try {
    config = readServerConfig();
    webLimits = readWebLimits();
    clientLimits = readClientLimits();
    quotaSettings = readQuotaSettings();
    allowedOrigins = readAllowedOrigins();
  } catch (err) {
    console.error(`OSByExample cannot start: ${(err as Error).message}`);
    process.exit(1);
  }
  // Next reads CONTENT_DIR itself (lib/deck); make the resolved folder the one it sees.
  process.env.CONTENT_DIR = config.contentDir;
  // No request leaves the machine: Next.js would otherwise send anonymous telemetry.
  process.env.NEXT_TELEMETRY_DISABLED = "1";

  // Shared state of replicas lives in Redis when REDIS_URL is set; null means in memory.
  const redis = await connectRedisFromEnv(process.env, { name: `osbe-${config.port}` });
  // The course may name its own images (content/course.json); a broken file stops the start with its name.
  const course = readCourseConfig(config.contentDir);
  // Pages of other sites may not use /ws or send requests that act (server/origin.ts).
  const origins = createOriginPolicy(allowedOrigins);
  const logForeign = (req: http.IncomingMessage) => (why: string) =>
    log.warn({ event: "refusal", reason: "origin", origin: req.headers.origin, host: req.headers.host, forwardedHost: req.headers["x-forwarded-host"], path: req.url?.slice(0, 200) }, why);
  const engine = createEngine({ environments: course.images });
  const store = createUsageStore(redis);
  const limiter = createClientLimiter(clientLimits, Date.now, store);
  const metrics = createMetrics(engine);
  const quotas = createQuotas(store, quotaSettings);
  const accounting = createRunAccounting({ limiter, quotas, metrics, log });
  let draining = false;
  // Sign-ins and refused control messages: one JSON line each, like runs and refusals.
  const live = await createLive({ contentDir: config.contentDir, redis, log: (entry) => log.warn(entry, String(entry.event)) });
  // A signed-in lecturer's runs count against a budget of their own, not the lecture hall's address.
  const runClient = async (req: http.IncomingMessage) =>
    (await live.auth.isLecturer(live.auth.sessionCookie(req))) ? "lecturer" : clientAddress(req);
  const runApi = createRunApi(engine, limiter, {
    accounting,
    isDraining: () => draining,
    runClient,
    answerOutputBytes: webLimits.answerOutputBytes,
  });
  const runSocket = createRunSocket(
    engine,
    limiter,
    {
      live: live.hub,
      runClient,
      maxBufferedBytes: webLimits.wsBufferedBytesPerConnection,
      maxBufferedBytesTotal: webLimits.wsBufferedBytesTotal,
    },
    accounting,
    metrics,
  );

  const app = next({ dev: config.dev, hostname: config.host, port: config.port, dir: process.cwd() });
  const handleNext = app.getRequestHandler();
  await app.prepare();
  const upgradeNext = app.getUpgradeHandler();

  const serveMetrics = (req: http.IncomingMessage, res: http.ServerResponse) => {
    metrics.handle(req, res).catch((err) => {
      log.error({ err }, "GET /metrics failed");
      if (!res.headersSent) res.writeHead(500).end("internal error");
    });
  };
  // With METRICS_PORT, /metrics lives on its own port, reachable by Prometheus but not the public.
  const metricsServer =
    config.metricsPort === null
      ? null
      : http.createServer(httpServerOptions(webLimits), (req, res) => (isMetricsPath(req.url) ? serveMetrics(req, res) : res.writeHead(404).end("not found\n")));
  if (metricsServer) {
    await new Promise<void>((resolve, reject) => {
      metricsServer.once("error", reject);
      metricsServer.listen(config.metricsPort!, config.host, () => resolve());
    });
  }

  const server = http.createServer(httpServerOptions(webLimits), (req, res) => {
    // The server's own answers (runs, live lecture, refusals) carry the site's common headers too;
    // Next.js sets the same ones on what it answers.
    for (const { key, value } of COMMON_HEADERS) res.setHeader(key, value);
    if (decodablePath(req.url) === null) {
      log.warn({ event: "malformed-path", client: clientAddress(req), method: req.method, url: req.url?.slice(0, 200) }, "malformed path answered 400");
      return answerMalformedPath(res);
    }
    if (refuseForeignRequest(origins, req, res, logForeign(req))) return;
    if (runApi(req, res)) return;
    if (live.handleHttp(req, res)) return;
    if (config.metricsPort === null && isMetricsPath(req.url)) return serveMetrics(req, res);
    handleNext(req, res, parse(req.url ?? "/", true)).catch((err) => {
      console.error("request failed", err);
      if (!res.headersSent) res.writeHead(500).end("internal error");
    });
  });

  // A connection with nothing sent or received for this long is destroyed (Node does so when
  // nobody listens for "timeout"): one that never sends a request, an answer nobody reads. Not
  // under `npm run dev`, where a first page compile or the deck-events stream may sit that long.
  server.setTimeout(config.dev ? 0 : webLimits.idleTimeoutSeconds * 1000);

  server.on("upgrade", (req, socket, head) => {
    if (decodablePath(req.url) === null) {
      log.warn({ event: "malformed-path", client: clientAddress(req), method: req.method, url: req.url?.slice(0, 200) }, "malformed upgrade path answered 400");
      return refuseUpgrade(socket, 400, "Bad request: the path's percent-encoding is malformed");
    }
    if (refuseForeignUpgrade(origins, req, socket, logForeign(req))) return;
    if (runSocket.handleUpgrade(req, socket, head)) return;
    // Next's own upgrade (hot reload) exists in development only; in production its handler
    // takes the socket and does nothing, so any other upgrade is answered and closed here.
    if (config.dev && isNextDevUpgrade(req.url)) return upgradeNext(req, socket, head);
    refuseUpgrade(socket, 404, "Not found: the only WebSocket here is /ws");
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  console.log(
    `OSByExample ready on http://${config.host}:${port} (${config.dev ? "development" : "production"}, content ${config.contentDir})`,
  );
  // The unchanged code of every runnable block into the compile cache, behind real users; again
  // for a deck whose files change under `npm run dev`.
  const prewarmer = createPrewarmer(engine, config.contentDir, (message) => log.info({ event: "prewarm" }, message));
  if (process.env.PREWARM !== "0") {
    void prewarmer.all();
    if (config.dev) prewarmer.watch();
  }
  if (live.token.generated) {
    console.log(`Lecturer sign-in (http://${config.host}:${port}/lecturer) with this token (set LECTURER_TOKEN to choose one): ${live.token.token}`);
  }

  let stopping = false;
  /** SIGINT: stop now (running programs are killed). */
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping runs and closing connections`);
    // Give cleanup a bound: a stuck close must not keep the process alive forever.
    const forceExit = setTimeout(() => process.exit(1), 10_000);
    forceExit.unref();
    prewarmer.stop();
    server.close();
    server.closeAllConnections();
    await runSocket.close();
    await live.close();
    await engine.shutdown();
    store.close();
    if (redis) await closeRedis(redis);
    process.exit(0);
  };

  /**
   * SIGTERM: drain without losing a run. Health turns not ready at once and the replica keeps
   * serving for DRAIN_READY_DELAY_MS while the proxy notices; then it refuses new runs and
   * sockets, lets started runs finish for up to DRAIN_GRACE_MS, tells its pages to reconnect
   * (elsewhere), and exits. A second SIGTERM or a SIGINT stops at once.
   */
  const drain = async () => {
    if (draining || stopping) return shutdown("SIGTERM (again)");
    draining = true;
    prewarmer.stop();
    metrics.draining.set(1);
    const readyDelayMs = Number(process.env.DRAIN_READY_DELAY_MS ?? 2_000);
    const graceMs = Number(process.env.DRAIN_GRACE_MS ?? 30_000);
    const forceExit = setTimeout(() => process.exit(1), readyDelayMs + graceMs + 15_000);
    forceExit.unref();
    log.info({ event: "drain", readyDelayMs, graceMs, connections: runSocket.connectionCount }, "SIGTERM: draining");
    await new Promise((resolve) => setTimeout(resolve, readyDelayMs));
    // No new TCP connections; idle keep-alive ones close, busy ones after their answer.
    server.close();
    server.closeIdleConnections();
    const started = Date.now();
    await runSocket.drain(graceMs);
    // Runs that came over HTTP: wait for them within what is left of the grace.
    while (Date.now() - started < graceMs) {
      const health = await engine.health();
      if (health.running + health.queued === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    log.info({ event: "drain", ms: Date.now() - started }, "drained; exiting");
    stopping = true;
    await engine.shutdown();
    server.closeAllConnections();
    store.close();
    if (redis) await closeRedis(redis);
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void drain());
}

function isNextDevUpgrade(url: string | undefined): boolean {
  return url?.startsWith("/_next/") === true;
}

function isMetricsPath(url: string | undefined): boolean {
  return url === "/metrics" || url?.startsWith("/metrics?") === true;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
