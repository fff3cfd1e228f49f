/**
 * Starts bench/server.ts in its own process, as `npm start` would run the server: a bench's own
 * blocking work (the bare toolchain, run with spawnSync) must not stall the engine's event loop,
 * which prepares the next sandboxes between runs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import readline from "node:readline";

export async function startBenchServer(): Promise<{ base: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "server.ts")], {
    env: { ...process.env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`bench server exited with ${code}`)));
    readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        resolve(JSON.parse(line).port);
      } catch {
        // not the port line
      }
    });
  });
  await new Promise((r) => setTimeout(r, 1000)); // its prepared sandboxes are ready
  return { base: `127.0.0.1:${port}`, child };
}
