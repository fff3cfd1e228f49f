/**
 * The browser's connection class against the real server: streaming, a server restart cutting a
 * run off ("connection lost"), and reconnecting by itself afterwards; a draining server lets its
 * running run finish and the page sends a refused run once more to the next server.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { RunEvent, RunRequest } from "../../lib/protocol";
import { RunConnection } from "../../components/runner/run-connection";
import type { Engine } from "../../sandbox/api";
import { createClientLimiter } from "../../server/client-limits";
import { createRunSocket, type RunSocket } from "../../server/run-socket";
import { startTestEngine, type TestEngine } from "../sandbox/helpers";

let t: TestEngine;
let engine: Engine;

beforeAll(() => {
  t = startTestEngine(252_000);
  engine = t.engine;
});
afterAll(async () => {
  await t.dispose();
});

async function startServer(port = 0, limits: Parameters<typeof createClientLimiter>[0] = {}): Promise<{ server: http.Server; socket: RunSocket; port: number }> {
  const socket = createRunSocket(engine, createClientLimiter(limits));
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on("upgrade", (req, s, head) => {
    if (!socket.handleUpgrade(req, s, head)) s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { server, socket, port: (server.address() as AddressInfo).port };
}

async function stopServer({ server, socket }: { server: http.Server; socket: RunSocket }): Promise<void> {
  server.closeAllConnections();
  await socket.close();
  await new Promise((resolve) => server.close(resolve));
}

function runToEnd(connection: RunConnection, request: RunRequest): Promise<RunEvent[]> {
  return new Promise((resolve) => {
    const events: RunEvent[] = [];
    connection.run(request, (event) => {
      events.push(event);
      if (event.type === "exit" || event.type === "error") resolve(events);
    });
  });
}

const c = (content: string): RunRequest => ({ language: "c", files: [{ name: "main.c", content }], flags: [], args: [] });

describe("RunConnection", () => {
  it("ends a cut-off run with 'connection lost' and reconnects after a server restart", async () => {
    const first = await startServer();
    const connection = new RunConnection({
      url: `ws://127.0.0.1:${first.port}/ws`,
      WebSocketImpl: WebSocket as never,
      backoffMs: 100,
    });
    try {
      const hello = await runToEnd(connection, c('#include <stdio.h>\nint main(void){puts("one");}\n'));
      expect(hello.filter((e) => e.type === "stdout").map((e) => (e as { data: string }).data).join("")).toBe("one\n");

      // A run in flight when the server goes away.
      let stopped: Promise<void> = Promise.resolve();
      const cutOff = new Promise<RunEvent[]>((resolve) => {
        const events: RunEvent[] = [];
        connection.run(c("int main(void){for(;;){}}\n"), (event) => {
          events.push(event);
          if (event.type === "running") stopped = stopServer(first);
          if (event.type === "exit" || event.type === "error") resolve(events);
        });
      });
      const ended = (await cutOff).at(-1)!;
      expect(ended).toMatchObject({ type: "error", code: "connection-lost" });
      expect((ended as { message: string }).message).toMatch(/connection lost/);

      // The server comes back on the same port; the next run goes through without any help.
      await stopped;
      const second = await startServer(first.port);
      try {
        const again = await runToEnd(connection, c('#include <stdio.h>\nint main(void){puts("two");}\n'));
        expect(again.at(-1)).toMatchObject({ type: "exit", exitCode: 0 });
      } finally {
        connection.dispose();
        await stopServer(second);
      }
    } finally {
      connection.dispose();
    }
  });

  it("a run refused a connection says why, waits, and goes out by itself when a connection is free", async () => {
    const server = await startServer(0, { maxConnectionsPerClient: 1 });
    const url = `ws://127.0.0.1:${server.port}/ws`;
    const holder = new WebSocket(url);
    await new Promise((resolve) => holder.once("open", resolve));
    const connection = new RunConnection({ url, WebSocketImpl: WebSocket as never, backoffMs: 100, maxBackoffMs: 400 });
    try {
      const waits: Array<string | null> = [];
      const events: RunEvent[] = [];
      const ended = new Promise<void>((resolve) => {
        connection.run(
          c('#include <stdio.h>\nint main(void){puts("through");}\n'),
          (event) => {
            events.push(event);
            if (event.type === "exit" || event.type === "error") resolve();
          },
          (why) => waits.push(why),
        );
      });
      // Refused while the other connection holds the address's only slot: the reason in words.
      for (let i = 0; i < 400 && !waits.some((w) => w?.includes("refused")); i++) await new Promise((r) => setTimeout(r, 25));
      expect(waits.find((w) => w?.includes("refused"))).toMatch(
        /connection refused by the server: too many open connections from your address \(at most 1\).*Retrying in \d+ s/,
      );
      expect(events).toEqual([]);
      holder.close();
      await ended;
      expect(waits.at(-1)).toBeNull();
      expect(events.at(-1)).toMatchObject({ type: "exit", exitCode: 0 });
      expect(events.filter((e) => e.type === "stdout").map((e) => (e as { data: string }).data).join("")).toBe("through\n");
    } finally {
      connection.dispose();
      holder.close();
      await stopServer(server);
    }
  }, 60_000);

  it("drain: the running run finishes, a run sent meanwhile goes to the next server by itself", async () => {
    const first = await startServer();
    const connection = new RunConnection({ url: `ws://127.0.0.1:${first.port}/ws`, WebSocketImpl: WebSocket as never, backoffMs: 100 });
    try {
      // A run that is busy when the drain starts: it prints, waits a moment, prints again.
      const slow = c('#include <stdio.h>\n#include <unistd.h>\nint main(void){puts("begin");fflush(stdout);usleep(1500000);puts("end");}\n');
      let drained: Promise<void> | null = null;
      let retriedAfter: Promise<RunEvent[]> | null = null;
      let retries = 0;
      const running = new Promise<RunEvent[]>((resolve) => {
        const events: RunEvent[] = [];
        connection.run(slow, (event) => {
          events.push(event);
          if (event.type === "stdout" && event.data.includes("begin") && !drained) {
            drained = first.socket.drain(60_000);
            // Sent while the server drains: refused with "restarting", retried on the next connection.
            retriedAfter = new Promise((done) => {
              const later: RunEvent[] = [];
              connection.run(
                c('#include <stdio.h>\nint main(void){puts("elsewhere");}\n'),
                (e) => {
                  later.push(e);
                  if (e.type === "exit" || e.type === "error") done(later);
                },
                undefined,
                () => retries++,
              );
            });
          }
          if (event.type === "exit" || event.type === "error") resolve(events);
        });
      });
      const slowEvents = await running;
      expect(slowEvents.at(-1)).toMatchObject({ type: "exit", exitCode: 0 });
      expect(slowEvents.filter((e) => e.type === "stdout").map((e) => (e as { data: string }).data).join("")).toBe("begin\nend\n");
      // The drained server closed the connection once its run ended.
      await drained;
      expect(first.socket.connectionCount).toBe(0);
      await stopServer(first);
      // The next server (the proxy's other replica) takes the retried run.
      const second = await startServer(first.port);
      try {
        const later = await retriedAfter!;
        expect(retries).toBe(1);
        expect(later.some((e) => e.type === "error")).toBe(false);
        expect(later.at(-1)).toMatchObject({ type: "exit", exitCode: 0 });
        expect(later.filter((e) => e.type === "stdout").map((e) => (e as { data: string }).data).join("")).toBe("elsewhere\n");
      } finally {
        connection.dispose();
        await stopServer(second);
      }
    } finally {
      connection.dispose();
    }
  });
});
