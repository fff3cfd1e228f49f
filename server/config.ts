/** Server settings from the environment, read once. */
import path from "node:path";
import { parseTrustProxy, type TrustProxy } from "./trust-proxy";

export interface ServerConfig {
  port: number;
  host: string;
  dev: boolean;
  /** The course: one folder per deck. */
  contentDir: string;
  /**
   * METRICS_PORT: serve /metrics on this port (for Prometheus inside the cluster) and not on the
   * public one, so no proxy or Ingress can hand it out. Unset: /metrics on the main port.
   */
  metricsPort: number | null;
  /** TRUST_PROXY, checked at start: a value that is not a valid setting stops the server. */
  trustProxy: TrustProxy;
}

export function readServerConfig(argv: string[] = process.argv, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT is not a port number: ${env.PORT}`);
  const metricsPort = env.METRICS_PORT ? Number(env.METRICS_PORT) : null;
  if (metricsPort !== null && (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535)) {
    throw new Error(`METRICS_PORT is not a port number: ${env.METRICS_PORT}`);
  }
  return {
    port,
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    metricsPort,
    host: env.HOST ?? "localhost",
    dev: argv.includes("--dev") || env.NODE_ENV === "development",
    contentDir: path.resolve(env.CONTENT_DIR ?? "content"),
  };
}
