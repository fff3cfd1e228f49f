/**
 * The production server (`node --import tsx server/index.ts`, as `npm start` runs it) in a process
 * of its own, on a port the system picks: tests that need their own settings, or the process's
 * pid (descriptors, RSS). Needs a Next.js build (.next) like `npm start`; `npm run test:e2e` makes it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "..");

export interface ServerProcess {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  pid: number;
  child: ChildProcess;
  /** Everything the server wrote so far (stdout and stderr, the end of it). */
  log(): string;
  /** Settles with the exit code (or signal) once the process ended. */
  exited: Promise<number | string>;
  stop(): Promise<void>;
}

export function spawnServer(env: Record<string, string>): { child: ChildProcess; log(): string; exited: Promise<number | string> } {
  const child = spawn(process.execPath, ["--import", "tsx", "server/index.ts"], {
    cwd: ROOT,
    env: {
      ...(process.env as Record<string, string>),
      PORT: "0",
      HOST: "127.0.0.1",
      NODE_ENV: "production",
      NEXT_TELEMETRY_DISABLED: "1",
      PREWARM: "0",
      CONTENT_DIR: path.join(ROOT, "test/fixtures/e2e-content"),
      LECTURER_TOKEN: "server-process-token",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-400_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "?")));
  return { child, log: () => output, exited };
}

/** Starts a server and waits until it answers; throws with its log if it exits or takes too long. */
export async function startServer(env: Record<string, string> = {}, readyTimeoutMs = 180_000): Promise<ServerProcess> {
  const { child, log, exited } = spawnServer(env);
  let gone = false;
  void exited.then(() => (gone = true));
  const stop = async () => {
    if (gone) return;
    child.kill("SIGINT");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + readyTimeoutMs;
  try {
    let port = 0;
    while (Date.now() < deadline && !gone) {
      const ready = /OSByExample ready on http:\/\/[^:]+:(\d+)/.exec(log());
      if (ready) {
        port = Number(ready[1]);
        break;
      }
      await sleep(100);
    }
    if (!port) throw new Error(gone ? "exited" : "not ready");
    while (Date.now() < deadline && !gone) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/api/health?probe=live`)).ok) {
          return { url: `http://127.0.0.1:${port}`, port, pid: child.pid!, child, log, exited, stop };
        }
      } catch {
        // not answering yet
      }
      await sleep(200);
    }
    throw new Error(gone ? "exited" : "not answering");
  } catch (err) {
    await stop();
    throw new Error(`server did not start (${(err as Error).message}):\n${log().slice(-4000)}`);
  }
}

/** Open file descriptors of a process (Linux). */
export function openDescriptors(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident memory of a process in bytes (Linux). */
export function residentBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = /VmRSS:\s+(\d+) kB/.exec(status);
  return kib ? Number(kib[1]) * 1024 : 0;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
