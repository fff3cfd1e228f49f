/**
 * The one Node process: Next.js pages, the JSON API and the WebSocket endpoint on one port.
 * `tsx server/index.ts` serves the production build; `--dev` runs Next in development mode.
 */
import http from "node:http";
import { parse } from "node:url";
import next from "next";
import { createEngine } from "../sandbox";
import { readServerConfig } from "./config";
import { createClientLimiter, readClientLimits } from "./client-limits";
import { createRunApi } from "./run-api";
import { createRunSocket } from "./run-socket";
import { closeRedis, connectRedisFromEnv } from "./redis";

async function main(): Promise<void> {
  const config = readServerConfig();
  // Next reads CONTENT_DIR itself (lib/deck); make the resolved folder the one it sees.
  process.env.CONTENT_DIR = config.contentDir;

  // Shared state of replicas lives in Redis when REDIS_URL is set; null means in memory.
  const redis = await connectRedisFromEnv(process.env, { name: `osbe-${config.port}` });
  const engine = createEngine();
  const limiter = createClientLimiter(readClientLimits());
  const runApi = createRunApi(engine, limiter);
  const runSocket = createRunSocket(engine, limiter);

  const app = next({ dev: config.dev, hostname: config.host, port: config.port, dir: process.cwd() });
  const handleNext = app.getRequestHandler();
  await app.prepare();
  const upgradeNext = app.getUpgradeHandler();

  const server = http.createServer((req, res) => {
    if (runApi(req, res)) return;
    handleNext(req, res, parse(req.url ?? "/", true)).catch((err) => {
      console.error("request failed", err);
      if (!res.headersSent) res.writeHead(500).end("internal error");
    });
  });

  server.on("upgrade", (req, socket, head) => {
    if (runSocket.handleUpgrade(req, socket, head)) return;
    // Next's own upgrades (hot reload in dev) go to Next.
    upgradeNext(req, socket, head);
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

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping runs and closing connections`);
    // Give cleanup a bound: a stuck close must not keep the process alive forever.
    const forceExit = setTimeout(() => process.exit(1), 10_000);
    forceExit.unref();
    server.close();
    server.closeAllConnections();
    await runSocket.close();
    await engine.shutdown();
    if (redis) await closeRedis(redis);
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
