/**
 * The lecture hall, end to end over the wire with the real sandbox: 200 students, each from their
 * own address (behind the university's proxy: TRUST_PROXY and X-Forwarded-For), press Run on the
 * same example at the same moment. Everyone gets the output, the example compiles once, waiting
 * students hear their position and an estimated wait; and a run beyond the wait bound is refused
 * with the estimate (WebSocket and HTTP). Behaviour only: no durations are asserted.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { RunEventMessage, ServerMessage } from "../../lib/protocol";
import { createClientLimiter } from "../../server/client-limits";
import { createRunApi } from "../../server/run-api";
import { createRunSocket } from "../../server/run-socket";
import { startTestEngine, type TestEngine } from "../sandbox/helpers";

const HELLO = '#include <stdio.h>\nint main(void) { puts("hello, hall"); return 0; }\n';
const SLEEPER = "#include <unistd.h>\nint main(void) { sleep(2); return 0; }\n";

interface Served {
  t: TestEngine;
  base: string;
  close(): Promise<void>;
}

async function serve(uidBase: number, options: Parameters<typeof startTestEngine>[1]): Promise<Served> {
  const t = startTestEngine(uidBase, options);
  const limiter = createClientLimiter();
  const api = createRunApi(t.engine, limiter);
  const runSocket = createRunSocket(t.engine, limiter);
  const server = http.createServer((req, res) => {
    if (!api(req, res)) res.writeHead(404).end();
  });
  server.on("upgrade", (req, socket, head) => {
    if (!runSocket.handleUpgrade(req, socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    t,
    base: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await runSocket.close();
      await new Promise((resolve) => server.close(resolve));
      await t.dispose();
    },
  };
}

/** One student: connects from `address`, runs `code` once, and collects the run's events to its end. */
function student(base: string, address: string, code: string): Promise<RunEventMessage[]> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${base}/ws`, { headers: { "X-Forwarded-For": address } });
    const events: RunEventMessage[] = [];
    ws.once("error", reject);
    ws.once("open", () => ws.send(JSON.stringify({ type: "run", id: "r", language: "c", files: [{ name: "main.c", content: code }] })));
    ws.on("message", (data) => {
      const message = JSON.parse(data.toString()) as ServerMessage;
      if (message.type === "protocol-error") return reject(new Error(message.message));
      if (!("id" in message) || message.id !== "r") return;
      events.push(message as RunEventMessage);
      if (message.type === "exit" || message.type === "error") {
        ws.close();
        resolve(events);
      }
    });
  });
}

const previousTrustProxy = process.env.TRUST_PROXY;
beforeAll(() => {
  process.env.TRUST_PROXY = "1";
});
afterAll(() => {
  if (previousTrustProxy === undefined) delete process.env.TRUST_PROXY;
  else process.env.TRUST_PROXY = previousTrustProxy;
});

describe("a lecture hall", () => {
  it("200 students from 200 addresses press Run on the same example at once: all get the output, it compiles once", async () => {
    // The bound is generous here: this test is about who is served, not how fast this machine is.
    const hall = await serve(274_000, { concurrency: 2, maxWaitSeconds: 600 });
    try {
      const runs = await Promise.all(Array.from({ length: 200 }, (_, i) => student(hall.base, `10.8.${i >> 8}.${i & 255}`, HELLO)));
      for (const events of runs) {
        const end = events.at(-1)!;
        expect(end, JSON.stringify(end)).toMatchObject({ type: "exit", phase: "run", exitCode: 0 });
        const stdout = events.map((e) => (e.type === "stdout" ? e.data : "")).join("");
        expect(stdout).toBe("hello, hall\n");
      }
      const compiles = runs.map((events) => events.find((e) => e.type === "compiled")).filter((e) => e?.type === "compiled" && !e.cached);
      expect(compiles, "compiles that were not shared").toHaveLength(1);
      // Most of the hall waited, and was told where it stood and for about how long.
      const queued = runs.flatMap((events) => events.filter((e) => e.type === "queued"));
      expect(queued.length).toBeGreaterThan(100);
      for (const q of queued) expect(q).toMatchObject({ position: expect.any(Number), estimatedWaitMs: expect.any(Number) });
      expect(await hall.t.engine.health()).toMatchObject({ running: 0, queued: 0 });
      await hall.t.expectNothingLeft();
    } finally {
      await hall.close();
    }
  }, 240_000);

  it("a run beyond the wait bound is refused with the estimate: WebSocket error and HTTP 503 with Retry-After", async () => {
    const full = await serve(275_000, { concurrency: 1, maxWaitSeconds: 0 });
    try {
      const sleeping = student(full.base, "10.9.0.1", SLEEPER);
      const deadline = Date.now() + 60_000;
      while ((await full.t.engine.health()).running === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect((await full.t.engine.health()).running, "the sleeper holds the only slot").toBe(1);
      const refused = await student(full.base, "10.9.0.2", HELLO);
      expect(refused.at(-1)).toMatchObject({ type: "error", code: "busy", retryAfterSeconds: expect.any(Number) });
      expect((refused.at(-1) as { message: string }).message).toMatch(/estimated [\d.]+ s for this one/);
      const res = await fetch(`http://${full.base}/api/run`, {
        method: "POST",
        headers: { "X-Forwarded-For": "10.9.0.3", "Content-Type": "application/json" },
        body: JSON.stringify({ language: "c", code: HELLO }),
      });
      expect(res.status).toBe(503);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect((await res.json()).error).toMatch(/estimated/);
      expect((await sleeping).at(-1)).toMatchObject({ type: "exit", exitCode: 0 });
    } finally {
      await full.close();
    }
  }, 120_000);
});
