/**
 * A real redis-server for tests: its own port (from the test's range), loopback only, its own
 * temp dir, no persistence. stop() ends it and removes the dir; a test process that dies
 * kills it too.
 *
 *   const redis = await startRedisServer(6430);
 *   process.env.REDIS_URL = redis.url;
 *   ...
 *   await redis.stop();
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export interface RedisServer {
  port: number;
  /** redis://127.0.0.1:<port> */
  url: string;
  dir: string;
  pid: number;
  /** What the server printed so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

export async function startRedisServer(port: number, options: { readyTimeoutMs?: number } = {}): Promise<RedisServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `osbe-redis-${port}-`));
  const child = spawn(
    "redis-server",
    [
      "--port", String(port),
      "--bind", "127.0.0.1",
      "--dir", dir,
      "--save", "",
      "--appendonly", "no",
      "--daemonize", "no",
      "--logfile", "",
      "--databases", "1",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout!.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr!.on("data", (d: Buffer) => {
    output += d.toString();
  });
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  const stop = async () => {
    process.removeListener("exit", killOnExit);
    await stopChild(child);
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitForReady(child, () => output, options.readyTimeoutMs ?? 30_000);
  } catch (err) {
    await stop();
    throw new Error(`redis-server on port ${port} did not start: ${(err as Error).message}\n${output}`);
  }
  return { port, url: `redis://127.0.0.1:${port}`, dir, pid: child.pid!, log: () => output, stop };
}

function waitForReady(child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`not ready after ${timeoutMs} ms`)), timeoutMs);
    const check = () => {
      if (/Ready to accept connections/.test(output())) done();
    };
    const onExit = (code: number | null, signal: string | null) => done(new Error(`exited (${code ?? signal})`));
    const onError = (err: Error) => done(err);
    function done(err?: Error) {
      clearTimeout(timer);
      child.stdout!.off("data", check);
      child.off("exit", onExit);
      child.off("error", onError);
      if (err) reject(err);
      else resolve();
    }
    child.stdout!.on("data", check);
    child.once("exit", onExit);
    child.once("error", onError);
    check();
  });
}

/** SIGTERM, then SIGKILL if it has not exited within 10 s; resolves once it is gone. */
export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}
