/**
 * The server the benchmark measures, in its own process (so its memory is its own): the engine,
 * the client limits, POST /api/run and /ws exactly as `npm start` wires them, without Next.js.
 * Behind a proxy as a lecture hall's would be (TRUST_PROXY: each student's X-Forwarded-For is
 * their address). Each answer carries `Server-Timing: total;dur=…` (request in → answer out).
 *
 *   BENCH_PORT=3401 npx tsx bench/server.ts   → prints {"port": …} once listening
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createEngine } from "../sandbox";
import { createClientLimiter, readClientLimits } from "../server/client-limits";
import { createRunApi } from "../server/run-api";
import { createRunSocket } from "../server/run-socket";

process.env.TRUST_PROXY = "1";

async function main(): Promise<void> {
  const engine = createEngine();
  await engine.health(); // prepared: the driver, the toolchains, the first sandboxes
  const limiter = createClientLimiter(readClientLimits());
  const api = createRunApi(engine, limiter);
  const socket = createRunSocket(engine, limiter);
  const server = http.createServer((req, res) => {
    const started = performance.now();
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => http.ServerResponse;
    (res as unknown as { writeHead: (...args: unknown[]) => http.ServerResponse }).writeHead = (...args: unknown[]) => {
      res.setHeader("Server-Timing", `total;dur=${(performance.now() - started).toFixed(2)}`);
      return writeHead(...args);
    };
    if (!api(req, res)) res.writeHead(404).end();
  });
  server.on("upgrade", (req, s, head) => {
    if (!socket.handleUpgrade(req, s, head)) s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(Number(process.env.BENCH_PORT ?? 0), "127.0.0.1", resolve));
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }));
  const stop = async () => {
    await socket.close();
    await engine.shutdown();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
