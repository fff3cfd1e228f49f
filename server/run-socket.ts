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
  type LiveRunTag,
  isLiveClientMessage,
} from "../lib/protocol";
import type { Engine, RunHandle } from "../sandbox/api";
import { clientAddress, type ClientLimiter } from "./client-limits";
import type { LiveHub } from "./live/hub";
import { log } from "./log";
import type { Metrics } from "./metrics";
import { defaultRunAccounting, type RunAccounting } from "./run-accounting";

export interface RunSocketOptions {
  /** Runs one connection may have going at once (queued ones included). */
  maxRunsPerConnection: number;
  /** A client that reads slower than its runs write is cut off (terminated) past this many unsent bytes. */
  maxBufferedBytes: number;
  /** Unsent bytes of all connections together; past it the connection holding most is cut off. */
  maxBufferedBytesTotal: number;
  /** Ping interval; a connection that misses a pong is closed and its runs killed. */
  heartbeatMs: number;
  /** Live lectures on the same socket (messages `live-*`, runs tagged `live`); none when absent. */
  live?: LiveHub;
  /**
   * Whom a connection's runs are charged to (run rate, CPU quota, flags): a signed-in lecturer
   * has a budget of their own, not the lecture hall's address. Default: the address.
   */
  runClient?: (req: http.IncomingMessage) => Promise<string>;
}

export const defaultRunSocketOptions: RunSocketOptions = {
  maxRunsPerConnection: 8,
  maxBufferedBytes: 16 * 1024 * 1024,
  maxBufferedBytesTotal: 128 * 1024 * 1024,
  heartbeatMs: 30_000,
};

export interface RunSocket {
  /** Takes the upgrade if it is for /ws; returns false to let someone else have it. */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /**
   * Drain before a restart: refuses new connections and new runs ("restarting"), ends queued runs
   * with "restarting" so the page sends them to another replica, lets started runs finish for up
   * to graceMs (then ends them the same way), and closes each connection once it has no run left,
   * telling the page to reconnect (1001). Resolves when every connection is closed.
   */
  drain(graceMs: number): Promise<void>;
  /** Closes every connection (their runs are killed) and waits until their runs are cleaned up. */
  close(): Promise<void>;
  readonly connectionCount: number;
}

/** One connection's output not yet written out. */
interface Backlog {
  ws: WebSocket;
  client: string;
  bytes: number;
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
  accounting: RunAccounting = defaultRunAccounting(limiter),
  metrics: Metrics | null = null,
): RunSocket {
  const opts = { ...defaultRunSocketOptions, ...options };
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE_BYTES });
  const pendingCleanups = new Set<Promise<void>>();
  /** Each connection's part in a drain: called when the drain starts and when it runs out of time. */
  const drainHooks = new Set<{ start(): void; timeUp(): void }>();
  let draining = false;
  const restartingMessage = "server restarting, run again";
  let connectionCounter = 0;
  /**
   * Output handed to a socket and not yet written out to the network, per connection and in all:
   * what slow readers make this process hold. Counted from send() to its write callback.
   */
  const backlogs = new Set<Backlog>();
  let backlogTotal = 0;
  const forget = (backlog: Backlog) => {
    if (!backlogs.delete(backlog)) return;
    backlogTotal -= backlog.bytes;
    backlog.bytes = 0;
  };
  /** Ends a connection whose reader is too slow at once: a close handshake would wait behind its backlog. */
  const cutOff = (backlog: Backlog, why: string) => {
    forget(backlog);
    log.warn({ event: "slow-reader", client: backlog.client, why }, "WebSocket terminated: client is not reading its output");
    backlog.ws.terminate();
  };

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

  wss.on("connection", (ws: WebSocket & { isAlive?: boolean }, req: http.IncomingMessage, releaseConnection: () => void, runClient: string) => {
    const address = clientAddress(req);
    const connectionId = `${address}#${++connectionCounter}`;
    const runs = new Map<string, RunHandle>();
    /** Runs that got a sandbox slot (compiling or running): a drain lets these finish. */
    const started = new Set<string>();
    /** Runs this replica ends because it restarts: their final event says so. */
    const endedByDrain = new Set<string>();
    metrics?.wsConnections.inc();
    ws.isAlive = true;
    ws.on("pong", () => (ws.isAlive = true));

    const backlog: Backlog = { ws, client: address, bytes: 0 };
    backlogs.add(backlog);
    const sendText = (text: string) => {
      if (ws.readyState !== ws.OPEN || !backlogs.has(backlog)) return;
      const bytes = Buffer.byteLength(text);
      // A reader this slow would make us hold unbounded output: cut it off, which kills its runs.
      if (backlog.bytes + bytes > opts.maxBufferedBytes) return cutOff(backlog, "connection backlog");
      while (backlogTotal + bytes > opts.maxBufferedBytesTotal) {
        let largest = backlog;
        for (const b of backlogs) if (b.bytes > largest.bytes) largest = b;
        cutOff(largest, "server-wide backlog");
        if (largest === backlog) return;
      }
      backlog.bytes += bytes;
      backlogTotal += bytes;
      ws.send(text, () => {
        if (!backlogs.has(backlog)) return;
        backlog.bytes -= bytes;
        backlogTotal -= bytes;
      });
    };
    const send = (message: ServerMessage) => sendText(JSON.stringify(message));
    const live = opts.live?.connect(req, sendText);
    const protocolError = (id: string | null, message: string) => send({ type: "protocol-error", id, message });

    /** Closes a draining connection once its last run ended. */
    const closeIfDrained = () => {
      if (draining && runs.size === 0 && ws.readyState === ws.OPEN) ws.close(WS_CLOSE.shuttingDown, restartingMessage);
    };

    const startRun = async (id: string, request: RunRequest, liveTag?: LiveRunTag) => {
      if (runs.has(id)) return protocolError(id, `a run with id '${id}' is already going on this connection`);
      if (runs.size >= opts.maxRunsPerConnection) {
        return protocolError(id, `too many runs on this connection (at most ${opts.maxRunsPerConnection} at once)`);
      }
      if (draining) return send({ type: "error", id, code: "restarting", message: restartingMessage });
      // Hold the id while admission asks the (possibly shared) store, so a duplicate id is refused.
      let killedWhileAdmitted = false;
      const placeholder: RunHandle = {
        writeStdin() {},
        closeStdin() {},
        kill: () => {
          killedWhileAdmitted = true;
        },
        done: Promise.resolve(),
      };
      runs.set(id, placeholder);
      let admission: Awaited<ReturnType<RunAccounting["admit"]>>;
      try {
        admission = await accounting.admit(runClient, request, "ws");
      } catch (err) {
        runs.delete(id);
        return send({ type: "error", id, code: "internal", message: `could not check this client's limits: ${(err as Error).message}` });
      }
      if (admission.refusal) {
        runs.delete(id);
        return send({ type: "error", id, code: "busy", message: admission.refusal.message });
      }
      // Let in: its place among the client's runs going is held until the run's cleanup is done.
      const release = admission.release;
      if (draining || ws.readyState !== ws.OPEN) {
        release();
        runs.delete(id);
        send({ type: "error", id, code: "restarting", message: restartingMessage });
        return closeIfDrained();
      }
      if (killedWhileAdmitted) {
        release();
        runs.delete(id);
        return send({ type: "error", id, code: "killed", message: "stopped before the program started" });
      }
      const sink = accounting.observe(runClient, request, "ws", (event) => {
        if (event.type !== "queued") started.add(id);
        if (event.type === "error" && endedByDrain.has(id)) {
          return send({ id, type: "error", code: "restarting", message: restartingMessage });
        }
        send({ id, ...event });
      });
      const mirror = liveTag && live?.mirrorRun(liveTag, id);
      // Round-robin goes by address; replacing a waiting run by a newer one by connection (a tab).
      const handle = engine.run(
        request,
        (event) => {
          sink(event);
          mirror?.(event);
        },
        { client: address, session: connectionId },
      );
      runs.set(id, handle);
      const cleanup = handle.done.finally(() => {
        release();
        runs.delete(id);
        started.delete(id);
        endedByDrain.delete(id);
        pendingCleanups.delete(cleanup);
        closeIfDrained();
      });
      pendingCleanups.add(cleanup);
    };

    const drainHook = {
      start() {
        // Queued runs have not begun: another replica can start them at once.
        for (const [id, handle] of runs) {
          if (!started.has(id)) {
            endedByDrain.add(id);
            handle.kill();
          }
        }
        closeIfDrained();
      },
      timeUp() {
        for (const [id, handle] of runs) {
          endedByDrain.add(id);
          handle.kill();
        }
      },
    };
    drainHooks.add(drainHook);

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
        const { type: _type, id, live: liveTag, ...request } = message;
        void startRun(id, request, liveTag);
        return;
      }
      if (isLiveClientMessage(message)) {
        if (!live) return protocolError(null, "live lectures are not served here");
        return live.handle(message);
      }
      const handle = runs.get(message.id);
      if (!handle) return protocolError(message.id, `no run with id '${message.id}' is going on this connection`);
      if (message.type === "stdin") handle.writeStdin(message.data);
      else if (message.type === "stdin-close") handle.closeStdin();
      else handle.kill();
    });

    ws.on("error", () => ws.terminate());
    ws.on("close", () => {
      forget(backlog);
      releaseConnection();
      live?.close();
      drainHooks.delete(drainHook);
      metrics?.wsConnections.dec();
      for (const handle of runs.values()) handle.kill();
    });
  });

  async function acceptUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const address = clientAddress(req);
    let release: () => void;
    try {
      const refusal = await limiter.connectionRefusal(address);
      if (refusal) {
        accounting.connectionRefused(address, refusal);
        // Accepted and closed at once, so the page can read why (a 429 upgrade answer reaches a
        // browser as a bare network error). The connection is never counted against the client.
        wss.handleUpgrade(req, socket, head, (ws) => ws.close(WS_CLOSE.refused, closeReason(refusal)));
        return;
      }
      release = await limiter.openConnection(address);
    } catch (err) {
      // The store (Redis) is away: let the page connect, uncounted, rather than lock a lecture out.
      metrics?.storeErrors.inc();
      console.error(`client limits unavailable, connection admitted unchecked: ${(err as Error).message}`);
      release = () => {};
    }
    const runClient = opts.runClient ? await opts.runClient(req).catch(() => address) : address;
    if (socket.destroyed || draining) {
      release();
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req, release, runClient));
  }

  return {
    handleUpgrade(req, socket, head) {
      const { pathname } = new URL(req.url ?? "/", "http://localhost");
      if (pathname !== "/ws") return false;
      if (draining) {
        // Accepted and closed at once, as a refusal is: the page reconnects, through the proxy elsewhere.
        wss.handleUpgrade(req, socket, head, (ws) => ws.close(WS_CLOSE.shuttingDown, restartingMessage));
        return true;
      }
      void acceptUpgrade(req, socket, head);
      return true;
    },
    async drain(graceMs) {
      draining = true;
      for (const hook of drainHooks) hook.start();
      const deadline = setTimeout(() => {
        for (const hook of drainHooks) hook.timeUp();
      }, graceMs);
      try {
        while (wss.clients.size > 0) await new Promise((resolve) => setTimeout(resolve, 50));
      } finally {
        clearTimeout(deadline);
      }
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
