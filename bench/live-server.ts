/**
 * One server instance for the live-lecture bench, in its own process (so its CPU is its own):
 * the WebSocket endpoint with live sessions and the lecturer's sign-in exactly as `npm start`
 * wires them, without Next.js and without a sandbox engine (the bench runs no code).
 * Sessions go through Redis when REDIS_URL is set.
 *
 *   BENCH_PORT=3418 LECTURER_TOKEN=t npx tsx bench/live-server.ts   → prints {"port": …} once listening
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Engine } from "../sandbox/api";
import { createClientLimiter } from "../server/client-limits";
import { createLive } from "../server/live";
import { closeRedis, connectRedisFromEnv } from "../server/redis";
import { createRunSocket } from "../server/run-socket";

async function main(): Promise<void> {
  const redis = await connectRedisFromEnv();
  const live = await createLive({ contentDir: path.resolve("test/fixtures/e2e-content"), redis, log: () => {} });
  // The bench sends no runs: an engine that would say so if it were asked.
  const engine = {
    run() {
      throw new Error("the live bench runs no code");
    },
  } as unknown as Engine;
  const socket = createRunSocket(engine, createClientLimiter({ maxConnectionsPerClient: 100_000 }), { live: live.hub });
  const server = http.createServer((req, res) => {
    if (!live.handleHttp(req, res)) res.writeHead(404).end();
  });
  server.on("upgrade", (req, s, head) => {
    if (!socket.handleUpgrade(req, s, head)) s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(Number(process.env.BENCH_PORT ?? 0), "127.0.0.1", resolve));
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }));
  const stop = async () => {
    server.closeAllConnections();
    await socket.close();
    await live.close();
    if (redis) await closeRedis(redis);
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
