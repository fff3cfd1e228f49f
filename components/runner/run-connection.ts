/**
 * The page's one WebSocket to /ws, shared by every runner on the page.
 *
 * It connects lazily, reconnects by itself with backoff after the server goes away, and ends every
 * run that the loss cut off with an `error` event ("connection lost"), so no console waits forever.
 * Browser code, but free of the DOM apart from WebSocket, so Node tests can drive it with `ws`.
 */
import {
  ServerMessageSchema,
  type ClientMessageInput,
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

type WebSocketLike = Pick<WebSocket, "readyState" | "send" | "close"> & {
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: unknown) => void) | null;
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
  /** Messages written while (re)connecting, sent on open; runs are only queued if they started then. */
  private readonly outbox: string[] = [];
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private backoff: number;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;
  private counter = 0;
  state: ConnectionState = "closed";

  constructor(private readonly options: RunConnectionOptions) {
    this.backoff = options.backoffMs ?? 500;
  }

  /** Starts a run; every event of it, ending with one `exit` or `error`, goes to onEvent. */
  run(request: RunRequest, onEvent: (event: RunEvent) => void): RunSession {
    const id = `run-${Date.now().toString(36)}-${(this.counter++).toString(36)}`;
    this.runs.set(id, (event) => {
      if (event.type === "exit" || event.type === "error") this.runs.delete(id);
      onEvent(event);
    });
    this.send({ type: "run", id, ...request });
    return {
      id,
      writeStdin: (data) => this.runs.has(id) && this.send({ type: "stdin", id, data }),
      closeStdin: () => this.runs.has(id) && this.send({ type: "stdin-close", id }),
      kill: () => this.runs.has(id) && this.send({ type: "kill", id }),
    };
  }

  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  dispose(): void {
    this.disposed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.socket?.close();
    this.failRuns("the page closed its connection");
  }

  private send(message: ClientMessageInput): void {
    const text = JSON.stringify(message);
    if (this.socket?.readyState === OPEN) this.socket.send(text);
    else {
      this.outbox.push(text);
      this.connect();
    }
  }

  private setState(state: ConnectionState): void {
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }

  private connect(): void {
    if (this.disposed || this.socket || this.reconnectTimer) return;
    const Impl = this.options.WebSocketImpl ?? (globalThis.WebSocket as unknown as new (url: string) => WebSocketLike);
    const socket = new Impl(this.options.url);
    this.socket = socket;
    this.setState("connecting");
    socket.onopen = () => {
      this.backoff = this.options.backoffMs ?? 500;
      this.setState("open");
      for (const text of this.outbox.splice(0)) socket.send(text);
    };
    socket.onmessage = (ev) => this.receive(String(ev.data));
    socket.onerror = () => {
      /* onclose follows and handles it */
    };
    socket.onclose = () => {
      this.socket = null;
      this.setState("closed");
      // Runs already sent are gone with the server's side of the socket; runs still in the
      // outbox were never sent and will go out on the next connection.
      const unsent = new Set(this.outbox.map((t) => (JSON.parse(t) as { id: string }).id));
      this.failRuns("connection lost: the server went away during the run", unsent);
      if (this.disposed) return;
      if (this.outbox.length > 0 || this.stateListeners.size > 0) this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.disposed) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.options.maxBackoffMs ?? 8000);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
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
    if (message.type === "protocol-error") {
      // A refused run must still end in its console.
      if (message.id && this.runs.has(message.id)) {
        this.runs.get(message.id)!({ type: "error", code: "invalid", message: message.message });
      } else console.warn("server refused a message:", message.message);
      return;
    }
    const { id, ...event } = message;
    this.runs.get(id)?.(event as RunEvent);
  }
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
