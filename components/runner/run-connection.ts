/**
 * The page's one WebSocket to /ws, shared by every runner on the page.
 *
 * It connects lazily, reconnects by itself with backoff after the server goes away, and ends every
 * run that the loss cut off with an `error` event ("connection lost"), so no console waits forever.
 * A run that cannot be sent yet is told why in words (refused and why, offline, server restarting,
 * server unreachable) and goes out by itself as soon as a connection is accepted.
 * A run the server ends with `restarting` (it drains for a restart) is sent once more, on the next
 * connection, which the proxy gives to another replica; the runner is told so it can start afresh.
 * Browser code, but free of the DOM apart from WebSocket (and `online` events when there is a
 * window), so Node tests can drive it with `ws`.
 */
import {
  ServerMessageSchema,
  WS_CLOSE,
  isLiveServerMessage,
  type ClientMessageInput,
  type LiveClientMessage,
  type LiveRunTag,
  type LiveServerMessage,
  type RunEvent,
  type RunRequest,
} from "../../lib/protocol";

export type ConnectionState = "connecting" | "open" | "closed";

export interface RunSession {
  readonly id: string;
  writeStdin(data: string): void;
  closeStdin(): void;
  kill(): void;
}

/** Told while a run waits for a connection: why, in words; null once the run is sent. */
export type WaitingListener = (why: string | null) => void;

type WebSocketLike = Pick<WebSocket, "readyState" | "send" | "close"> & {
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code?: number; reason?: string | Buffer }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
};

export interface RunConnectionOptions {
  url: string;
  /** Defaults to the browser's WebSocket; tests pass the `ws` package's. */
  WebSocketImpl?: new (url: string) => WebSocketLike;
  /** First reconnect delay; doubles up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

const OPEN = 1;

export class RunConnection {
  private socket: WebSocketLike | null = null;
  private readonly runs = new Map<string, (event: RunEvent) => void>();
  private readonly waiting = new Map<string, WaitingListener>();
  /** What it takes to send a run again when its server restarts, until it was retried once. */
  private readonly retries = new Map<string, { message: string; onRetry?: () => void; started: boolean; moves: number }>();
  /** The server of this socket drains: send nothing more on it, the next connection takes it. */
  private serverRestarting = false;
  /** Messages written while (re)connecting, sent on open; runs are only queued if they started then. */
  private outbox: string[] = [];
  /** What the current socket carried: the server read none of it if it refused the connection. */
  private sentOnSocket: string[] = [];
  /** Why runs wait, while they do. */
  private waitReason = "connecting to the server…";
  private retryAt = 0;
  private countdown: ReturnType<typeof setInterval> | null = null;
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private readonly liveListeners = new Set<(message: LiveServerMessage) => void>();
  private backoff: number;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;
  private counter = 0;
  state: ConnectionState = "closed";

  constructor(private readonly options: RunConnectionOptions) {
    this.backoff = options.backoffMs ?? 500;
    if (typeof window !== "undefined") window.addEventListener("online", this.onOnline);
  }

  /**
   * Starts a run; every event of it, ending with one `exit` or `error`, goes to onEvent.
   * onRetry is called when the run starts over on another server after a restart: what it
   * printed so far belongs to the abandoned attempt. With `live`, a signed-in lecturer's run is
   * also shown to the deck's room at that block.
   */
  run(
    request: RunRequest,
    onEvent: (event: RunEvent) => void,
    onWaiting?: WaitingListener,
    onRetry?: () => void,
    live?: LiveRunTag,
  ): RunSession {
    const id = `run-${Date.now().toString(36)}-${(this.counter++).toString(36)}`;
    this.runs.set(id, (event) => {
      // The run's first event answers it: it waits for the connection no more.
      const waiter = this.waiting.get(id);
      this.waiting.delete(id);
      waiter?.(null);
      if (event.type === "exit" || event.type === "error") {
        this.runs.delete(id);
        this.retries.delete(id);
      }
      onEvent(event);
    });
    if (onWaiting) this.waiting.set(id, onWaiting);
    const message: ClientMessageInput = { type: "run", id, ...request, ...(live ? { live } : {}) };
    this.retries.set(id, { message: JSON.stringify(message), onRetry, started: false, moves: 0 });
    this.send(message);
    this.tellWaiting();
    return {
      id,
      writeStdin: (data) => this.runs.has(id) && this.send({ type: "stdin", id, data }),
      closeStdin: () => this.runs.has(id) && this.send({ type: "stdin-close", id }),
      kill: () => {
        if (!this.runs.has(id)) return;
        if (this.unsentRuns().has(id)) {
          // Never sent: take it back instead of sending it and its kill later.
          this.outbox = this.outbox.filter((text) => messageId(text) !== id);
          this.runs.get(id)!({ type: "error", code: "killed", message: "stopped before it reached the server" });
          return;
        }
        this.send({ type: "kill", id });
      },
    };
  }

  /** Live-lecture messages go out on the same socket (components/live). */
  sendLive(message: LiveClientMessage): void {
    this.send(message);
  }

  onLiveMessage(listener: (message: LiveServerMessage) => void): () => void {
    this.liveListeners.add(listener);
    return () => this.liveListeners.delete(listener);
  }

  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  dispose(): void {
    this.disposed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stopCountdown();
    if (typeof window !== "undefined") window.removeEventListener("online", this.onOnline);
    this.socket?.close();
    this.failRuns("the page closed its connection");
  }

  private send(message: ClientMessageInput): void {
    const text = JSON.stringify(message);
    if (this.socket?.readyState === OPEN && !this.serverRestarting) this.transmit(this.socket, text);
    else {
      this.outbox.push(text);
      this.connect();
    }
  }

  private transmit(socket: WebSocketLike, text: string): void {
    socket.send(text);
    this.sentOnSocket.push(text);
    // Only until the server has shown it accepted the connection; then nothing needs resending.
    if (this.sentOnSocket.length > 1000) this.sentOnSocket = [];
  }

  private unsentRuns(): Set<string> {
    return new Set(this.outbox.filter((t) => (JSON.parse(t) as { type: string }).type === "run").map(messageId));
  }

  /** Tells each run still in the outbox why it waits. */
  private tellWaiting(): void {
    const unsent = this.unsentRuns();
    let why = this.waitReason;
    if (this.retryAt > 0) {
      const seconds = Math.max(1, Math.ceil((this.retryAt - Date.now()) / 1000));
      why = `${why} Retrying in ${seconds} s…`;
    }
    for (const [id, listener] of this.waiting) if (unsent.has(id)) listener(why);
  }

  private readonly onOnline = () => {
    // The network is back: try now instead of waiting out the backoff.
    if (this.reconnectTimer) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
    this.backoff = this.options.backoffMs ?? 500;
    if (this.outbox.length > 0) this.connect();
  };

  private stopCountdown(): void {
    if (this.countdown) clearInterval(this.countdown);
    this.countdown = null;
    this.retryAt = 0;
  }

  private setState(state: ConnectionState): void {
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }

  private connect(): void {
    if (this.disposed || this.socket || this.reconnectTimer) return;
    if (typeof navigator !== "undefined" && navigator.onLine === false) {
      // No network: say so and wait for the browser's `online` event (and keep trying slowly).
      this.waitReason = "offline: this computer has no network connection. The run starts when it is back.";
      this.scheduleReconnect();
      return;
    }
    const Impl = this.options.WebSocketImpl ?? (globalThis.WebSocket as unknown as new (url: string) => WebSocketLike);
    const socket = new Impl(this.options.url);
    this.socket = socket;
    this.sentOnSocket = [];
    let opened = false;
    this.setState("connecting");
    this.stopCountdown();
    this.tellWaiting();
    socket.onopen = () => {
      opened = true;
      this.serverRestarting = false;
      this.setState("open");
      for (const text of this.outbox.splice(0)) this.transmit(socket, text);
      this.tellWaiting();
    };
    socket.onmessage = (ev) => {
      // The server accepted this connection: reset the backoff, nothing sent needs resending.
      this.backoff = this.options.backoffMs ?? 500;
      this.sentOnSocket = [];
      this.receive(String(ev.data));
    };
    socket.onerror = () => {
      /* onclose follows and handles it */
    };
    socket.onclose = (ev) => {
      this.socket = null;
      this.setState("closed");
      const code = ev?.code;
      const reason = typeof ev?.reason === "string" ? ev.reason : (ev?.reason?.toString() ?? "");
      if (code === WS_CLOSE.refused) {
        // The server refused this connection before reading anything: what went out on it goes again.
        const resend = this.sentOnSocket.filter((text) => this.runs.has(messageId(text)));
        this.outbox = [...resend, ...this.outbox];
        this.waitReason = `connection refused by the server: ${reason || "too many connections"}.`;
      } else if (code === WS_CLOSE.shuttingDown) {
        this.waitReason = "the server is restarting; reconnecting when it is back.";
      } else if (!opened) {
        this.waitReason =
          typeof navigator !== "undefined" && navigator.onLine === false
            ? "offline: this computer has no network connection. The run starts when it is back."
            : "cannot reach the server (it may be restarting or the network is down).";
      } else {
        this.waitReason = "the connection to the server was lost; reconnecting.";
      }
      this.sentOnSocket = [];
      // Runs already sent are gone with the server's side of the socket; runs still in the
      // outbox were never sent and will go out on the next connection.
      const unsent = this.unsentRuns();
      const lost =
        code === WS_CLOSE.shuttingDown
          ? "connection lost: the server is restarting; run it again in a moment"
          : "connection lost: the server went away during the run";
      this.failRuns(lost, unsent);
      if (this.disposed) return;
      if (this.outbox.length > 0 || this.stateListeners.size > 0) this.scheduleReconnect();
      this.tellWaiting();
    };
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.disposed) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.options.maxBackoffMs ?? 8000);
    this.retryAt = Date.now() + delay;
    // Count the seconds down in the waiting runs' status.
    if (!this.countdown && this.waiting.size > 0) this.countdown = setInterval(() => this.tellWaiting(), 1000);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.stopCountdown();
      this.connect();
    }, delay);
  }

  private failRuns(message: string, except: Set<string> = new Set()): void {
    for (const [id, deliver] of [...this.runs]) {
      if (except.has(id)) continue;
      deliver({ type: "error", code: "connection-lost", message });
    }
  }

  private receive(text: string): void {
    let parsed: ReturnType<typeof ServerMessageSchema.safeParse>;
    try {
      parsed = ServerMessageSchema.safeParse(JSON.parse(text));
    } catch {
      return;
    }
    if (!parsed.success) return;
    const message = parsed.data;
    if (isLiveServerMessage(message)) {
      for (const listener of this.liveListeners) listener(message);
      return;
    }
    if (message.type === "protocol-error") {
      // A refused run must still end in its console.
      if (message.id && this.runs.has(message.id)) {
        this.runs.get(message.id)!({ type: "error", code: "invalid", message: message.message });
      } else console.warn("server refused a message:", message.message);
      return;
    }
    const { id, ...event } = message;
    if (event.type === "error" && event.code === "restarting" && this.retryElsewhere(id)) return;
    // A run that got past the queue is retried once at most; one still waiting may move again.
    if (event.type !== "queued" && event.type !== "error") {
      const retry = this.retries.get(id);
      if (retry) retry.started = true;
    }
    this.runs.get(id)?.(event as RunEvent);
  }

  /**
   * Queues the run for the next connection. A run that had started (compiling, running) is run
   * again once; one that only waited in a queue moves on as often as a rolling restart takes
   * (bounded), since nothing of it ran yet. False when it may not be retried.
   */
  private retryElsewhere(id: string): boolean {
    const retry = this.retries.get(id);
    if (!retry || !this.runs.has(id)) return false;
    const startedBefore = retry.started;
    retry.moves += 1;
    retry.started = false;
    // Once a started run was retried it may not be retried again; a queued one up to 5 times.
    if (startedBefore || retry.moves >= 5) this.retries.delete(id);
    this.serverRestarting = true;
    this.outbox.push(retry.message);
    retry.onRetry?.();
    // Runs still going on this socket finish first (the server lets them); with none left the
    // socket is closed now, so the reconnect (to another replica) happens at once.
    const unsent = this.unsentRuns();
    const going = [...this.runs.keys()].some((runId) => !unsent.has(runId));
    if (!going) this.socket?.close();
    return true;
  }
}

function messageId(text: string): string {
  return (JSON.parse(text) as { id: string }).id;
}

let shared: RunConnection | null = null;

/** The page's connection, to the same host the page came from. */
export function pageConnection(): RunConnection {
  if (!shared) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    shared = new RunConnection({ url: `${scheme}//${location.host}/ws` });
  }
  return shared;
}
