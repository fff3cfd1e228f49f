/**
 * The one Node process: Next.js pages, the JSON API and the WebSocket endpoint on one port.
 * `tsx server/index.ts` serves the production build; `--dev` runs Next in development mode.
 */
import http from "node:http";
import { parse } from "node:url";
import next from "next";
import { readServerConfig } from "./config";

async function main(): Promise<void> {
  const config = readServerConfig();
  // Next reads CONTENT_DIR itself (lib/deck); make the resolved folder the one it sees.
  process.env.CONTENT_DIR = config.contentDir;

  const app = next({ dev: config.dev, hostname: config.host, port: config.port, dir: process.cwd() });
  const handleNext = app.getRequestHandler();
  await app.prepare();
  const upgradeNext = app.getUpgradeHandler();

  const server = http.createServer((req, res) => {
    handleNext(req, res, parse(req.url ?? "/", true)).catch((err) => {
      console.error("request failed", err);
      if (!res.headersSent) res.writeHead(500).end("internal error");
    });
  });

  server.on("upgrade", (req, socket, head) => {
    // Next's own upgrades (hot reload in dev) go to Next.
    upgradeNext(req, socket, head);
  });

  server.listen(config.port, config.host, () => {
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : config.port;
    console.log(`OSByExample ready on http://${config.host}:${port} (${config.dev ? "development" : "production"}, content ${config.contentDir})`);
  });

  const shutdown = (signal: string) => {
    console.log(`${signal}: shutting down`);
    server.close();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once("SIGINT", () => shutdown("SIGINT"));
  process.once("SIGTERM", () => shutdown("SIGTERM"));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
