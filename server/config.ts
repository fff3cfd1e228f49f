/** Server settings from the environment, read once. */
import path from "node:path";

export interface ServerConfig {
  port: number;
  host: string;
  dev: boolean;
  /** The course: one folder per deck. */
  contentDir: string;
}

export function readServerConfig(argv: string[] = process.argv, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT is not a port number: ${env.PORT}`);
  return {
    port,
    host: env.HOST ?? "localhost",
    dev: argv.includes("--dev") || env.NODE_ENV === "development",
    contentDir: path.resolve(env.CONTENT_DIR ?? "content"),
  };
}
