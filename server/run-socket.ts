/**
 * WebSocket endpoint /ws: runs, their stdin and their events, several runs per connection.
 *
 * Every message is validated with the shared zod schemas; a bad one gets a `protocol-error` naming
 * what is wrong and the connection lives on. Closing the connection kills its runs.
 */
import type http from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket, type RawData } from "ws";
import {
  ClientMessageSchema,
  MAX_WS_MESSAGE_BYTES,
  WS_CLOSE,
  describeZodError,
  type ServerMessage,
  type RunRequest,
} from "../lib/protocol";
import type { Engine, RunHandle } from "../sandbox/api";
import { clientAddress, type ClientLimiter } from "./client-limits";

export interface RunSocketOptions {
  /** Runs one connection may have going at once (queued ones included). */
  maxRunsPerConnection: number;
  /** A client that reads slower than its runs write is cut off past this many buffered bytes. */
  maxBufferedBytes: number;
  /** Ping interval; a connection that misses a pong is closed and its runs killed. */
  heartbeatMs: number;
}

export const defaultRunSocketOptions: RunSocketOptions = {
  maxRunsPerConnection: 8,
  maxBufferedBytes: 16 * 1024 * 1024,
  heartbeatMs: 30_000,
};

export interface RunSocket {
  /** Takes the upgrade if it is for /ws; returns false to let someone else have it. */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Closes every connection (their runs are killed) and waits until their runs are cleaned up. */
  close(): Promise<void>;
  readonly connectionCount: number;
}

/** A close reason may hold at most 123 bytes of UTF-8. */
function closeReason(text: string): string {
  let reason = text;
  while (Buffer.byteLength(reason) > 123) reason = `${reason.slice(0, -2)}…`;
  return reason;
}

export function createRunSocket(
  engine: Engine,
  limiter: ClientLimiter,
  options: Partial<RunSocketOptions> = {},
): RunSocket {
  const opts = { ...defaultRunSocketOptions, ...options };
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE_BYTES });
  const pendingCleanups = new Set<Promise<void>>();

  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      const alive = ws as WebSocket & { isAlive?: boolean };
      if (alive.isAlive === false) {
        ws.terminate();
        continue;
      }
      alive.isAlive = false;
      ws.ping();
    }
  }, opts.heartbeatMs);
  heartbeat.unref();

  wss.on("connection", (ws: WebSocket & { isAlive?: boolean }, req: http.IncomingMessage) => {
    const address = clientAddress(req);
    const releaseConnection = limiter.openConnection(address);
    const runs = new Map<string, RunHandle>();
    ws.isAlive = true;
    ws.on("pong", () => (ws.isAlive = true));

    const send = (message: ServerMessage) => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > opts.maxBufferedBytes) {
        // A reader this slow would make us hold unbounded output: cut it off, which kills its runs.
        ws.close(WS_CLOSE.slowReader, "client is not reading its output");
        return;
      }
      ws.send(JSON.stringify(message));
    };
    const protocolError = (id: string | null, message: string) => send({ type: "protocol-error", id, message });

    const startRun = (id: string, request: RunRequest) => {
      if (runs.has(id)) return protocolError(id, `a run with id '${id}' is already going on this connection`);
      if (runs.size >= opts.maxRunsPerConnection) {
        return protocolError(id, `too many runs on this connection (at most ${opts.maxRunsPerConnection} at once)`);
      }
      const refusal = limiter.takeRun(address);
      if (refusal) return send({ type: "error", id, code: "busy", message: refusal });
      const handle = engine.run(request, (event) => send({ id, ...event }));
      runs.set(id, handle);
      const cleanup = handle.done.finally(() => {
        runs.delete(id);
        pendingCleanups.delete(cleanup);
      });
      pendingCleanups.add(cleanup);
    };

    ws.on("message", (data: RawData, isBinary: boolean) => {
      if (isBinary) return protocolError(null, "binary messages are not accepted; send JSON text");
      let json: unknown;
      try {
        json = JSON.parse(data.toString());
      } catch (err) {
        return protocolError(null, `message is not valid JSON: ${(err as Error).message}`);
      }
      const parsed = ClientMessageSchema.safeParse(json);
      if (!parsed.success) {
        const id = typeof (json as { id?: unknown })?.id === "string" ? (json as { id: string }).id : null;
        return protocolError(id, `invalid message: ${describeZodError(parsed.error)}`);
      }
      const message = parsed.data;
      if (message.type === "run") {
        const { type: _type, id, ...request } = message;
        return startRun(id, request);
      }
      const handle = runs.get(message.id);
      if (!handle) return protocolError(message.id, `no run with id '${message.id}' is going on this connection`);
      if (message.type === "stdin") handle.writeStdin(message.data);
      else if (message.type === "stdin-close") handle.closeStdin();
      else handle.kill();
    });

    ws.on("error", () => ws.terminate());
    ws.on("close", () => {
      releaseConnection();
      for (const handle of runs.values()) handle.kill();
    });
  });

  return {
    handleUpgrade(req, socket, head) {
      const { pathname } = new URL(req.url ?? "/", "http://localhost");
      if (pathname !== "/ws") return false;
      const refusal = limiter.connectionRefusal(clientAddress(req));
      if (refusal) {
        // Accepted and closed at once, so the page can read why (a 429 upgrade answer reaches a
        // browser as a bare network error). The connection is never counted against the client.
        wss.handleUpgrade(req, socket, head, (ws) => ws.close(WS_CLOSE.refused, closeReason(refusal)));
        return true;
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
      return true;
    },
    async close() {
      clearInterval(heartbeat);
      for (const ws of wss.clients) ws.close(WS_CLOSE.shuttingDown, "server is shutting down");
      await Promise.allSettled([...pendingCleanups]);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
    get connectionCount() {
      return wss.clients.size;
    },
  };
}
