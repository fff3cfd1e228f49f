/**
 * JSON API: POST /api/run answers when the run ends; GET /api/health reports readiness
 * (GET /api/health?probe=live only liveness).
 * Anything else under /api is left to Next.js route handlers.
 */
import type http from "node:http";
import {
  ApiRunRequestSchema,
  KERNEL_LANGUAGE,
  MAIN_FILE,
  MAX_SOURCE_BYTES,
  RunRequestSchema,
  describeZodError,
  utf8Length,
  type ApiRunResponse,
  type RunEvent,
  type RunRequest,
} from "../lib/protocol";
import type { Engine } from "../sandbox/api";
import { clientAddress, type ClientLimiter } from "./client-limits";
import { defaultRunAccounting, type RunAccounting } from "./run-accounting";

/** Sources up to 256 KiB, encoded as JSON, stay well under this; larger bodies are refused. */
const MAX_BODY_BYTES = 4 * MAX_SOURCE_BYTES + 2 * 1024 * 1024;
/**
 * A refused body is still read (and dropped) up to this size, so the client is done sending when
 * the 413 arrives and can read it; closing on a client still writing resets the connection
 * before the answer is read. Beyond it the answer goes out and the connection closes.
 */
const MAX_DISCARD_BYTES = 64 * 1024 * 1024;
/** A body must arrive within this time. */
const BODY_TIMEOUT_MS = 30_000;
const BUSY_RETRY_AFTER_S = 5;
const DEFAULT_ANSWER_OUTPUT_BYTES = 256 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface RunApiOptions {
  accounting?: RunAccounting;
  /** True while the server drains for a restart: health is not ready, new runs are refused. */
  isDraining?: () => boolean;
  /** A request body must arrive within this time (default 30 s), or it gets a 408. */
  bodyTimeoutMs?: number;
  /** Whom a run is charged to (run rate, CPU quota, flags); default the client's address. */
  runClient?: (req: http.IncomingMessage) => Promise<string>;
  /**
   * Bytes of stdout and of stderr (each) an answer carries (default 256 KiB, below the sandbox's
   * stream caps): the answer is built in one piece, and escaped output can grow six-fold in JSON.
   */
  answerOutputBytes?: number;
}

export function createRunApi(engine: Engine, limiter: ClientLimiter, options: RunApiOptions = {}) {
  const accounting = options.accounting ?? defaultRunAccounting(limiter);
  const isDraining = options.isDraining ?? (() => false);
  const bodyTimeoutMs = options.bodyTimeoutMs ?? BODY_TIMEOUT_MS;
  const answerOutputBytes = options.answerOutputBytes ?? DEFAULT_ANSWER_OUTPUT_BYTES;
  /** Handles the request if it is ours; returns false to pass it on. */
  return function handle(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const { pathname } = new URL(req.url ?? "/", "http://localhost");
    if (pathname === "/api/run") {
      if (req.method !== "POST") {
        sendJson(res, 405, { error: "use POST with a JSON body" }, { Allow: "POST" });
      } else {
        postRun(req, res).catch((err) => {
          if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message }, err.headers);
          console.error("POST /api/run failed", err);
          sendJson(res, 500, { error: "internal error" });
        });
      }
      return true;
    }
    if (pathname === "/api/health") {
      // Liveness (?probe=live): the process answers, also while it drains; readiness is the rest.
      if (new URL(req.url ?? "/", "http://localhost").searchParams.get("probe") === "live") {
        sendJson(res, 200, { alive: true, draining: isDraining() });
        return true;
      }
      health(req).then(
        (body) => sendJson(res, body.ready ? 200 : 503, body),
        (err) => sendJson(res, 503, { ready: false, error: String(err) }),
      );
      return true;
    }
    return false;
  };

  /**
   * The engine's health, not ready while draining (so the proxy moves new work away first), and
   * the clients flagged for unusual use: their addresses only to a direct request (an operator
   * inside the cluster, the proxy's health check), their number to anyone.
   */
  async function health(req: http.IncomingMessage) {
    const [engineHealth, flags] = await Promise.all([engine.health(), accounting.flags().catch(() => [])]);
    const draining = isDraining();
    const direct = req.headers["x-forwarded-for"] === undefined;
    return {
      ...engineHealth,
      ready: engineHealth.ready && !draining,
      draining,
      flaggedClients: direct ? flags : flags.length,
    };
  }

  async function postRun(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (isDraining()) throw new HttpError(503, "server restarting, run again", { "Retry-After": "1", Connection: "close" });
    // A form or text/plain body is what another site's page can send without asking (no CORS preflight).
    if (!isJson(req.headers["content-type"])) {
      req.resume();
      throw new HttpError(415, "send the run as JSON with Content-Type: application/json", { Accept: "application/json", Connection: "close" });
    }
    const request = parseRunRequest(await readBody(req, bodyTimeoutMs));
    const client = options.runClient ? await options.runClient(req).catch(() => clientAddress(req)) : clientAddress(req);
    const { refusal, release } = await accounting.admit(client, request, "http");
    if (refusal) throw new HttpError(429, refusal.message, { "Retry-After": String(refusal.retryAfterS) });
    try {
      await answerRun(req, res, client, request, release);
    } catch (err) {
      release(); // idempotent: a run that started has released it already, or will
      throw err;
    }
  }

  /**
   * Runs an admitted request and answers with its result. Its place among the client's runs
   * going (`release`) is given back once the run's sandboxes are gone.
   */
  async function answerRun(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    client: string,
    request: RunRequest,
    release: () => void,
  ): Promise<void> {
    const events: RunEvent[] = [];
    // Output past the answer's cap is not even kept while the run goes on.
    const output = { stdout: new OutputCap(answerOutputBytes), stderr: new OutputCap(answerOutputBytes) };
    let finalEvent!: () => void;
    const ended = new Promise<void>((resolve) => (finalEvent = resolve));
    // Waiting for a sandbox and for the run sends nothing: the server's idle timeout (meant for
    // connections that neither send nor read) must not end it. It is back for the answer.
    const idleTimeoutMs = req.socket.timeout;
    req.socket.setTimeout(0);
    const handle = engine.run(
      request,
      accounting.observe(client, request, "http", (event) => {
        if (event.type === "stdout" || event.type === "stderr") {
          const kept = output[event.type].take(event.data);
          if (kept) events.push({ ...event, data: kept });
        } else events.push(event);
        if (event.type === "exit" || event.type === "error") finalEvent();
      }),
      { client },
    );
    void handle.done.finally(release);
    // A client that goes away does not need its run any more.
    const onClose = () => {
      if (!res.writableFinished) handle.kill();
    };
    res.on("close", onClose);
    // The answer goes out with the final event; the sandboxes' removal (handle.done) follows it.
    await Promise.race([ended, handle.done]);
    res.off("close", onClose);
    if (res.destroyed) return;
    if (idleTimeoutMs) req.socket.setTimeout(idleTimeoutMs);

    const error = events.find((e) => e.type === "error");
    if (error?.type === "error") {
      // Refused with the estimated wait: Retry-After says when trying again is worth it.
      if (error.code === "busy") throw new HttpError(503, error.message, { "Retry-After": String(error.retryAfterSeconds ?? BUSY_RETRY_AFTER_S) });
      if (error.code === "replaced") throw new HttpError(409, error.message);
      throw new HttpError(error.code === "invalid" ? 400 : 500, error.message);
    }
    const response = collectResponse(events, answerOutputBytes);
    if (response.run && (output.stdout.cut || output.stderr.cut)) {
      response.run.truncated = { stdout: response.run.truncated.stdout || output.stdout.cut, stderr: response.run.truncated.stderr || output.stderr.cut };
      const note = `output cut to ${answerOutputBytes / 1024} KiB per stream in this answer (the WebSocket /ws streams all of it)`;
      response.run.message = response.run.message ? `${response.run.message}; ${note}` : note;
    }
    sendJson(res, 200, response);
  }
}

/** Keeps the first `cap` bytes of a stream's output, and whether anything was cut. */
class OutputCap {
  private kept = 0;
  cut = false;
  constructor(private readonly cap: number) {}
  /** The part of `data` that still fits ("" when none). */
  take(data: string): string {
    const room = this.cap - this.kept;
    if (room <= 0) {
      if (data) this.cut = true;
      return "";
    }
    const bytes = Buffer.byteLength(data);
    if (bytes <= room) {
      this.kept += bytes;
      return data;
    }
    this.cut = true;
    this.kept = this.cap;
    return Buffer.from(data).subarray(0, room).toString("utf8");
  }
}

/** Cuts a text to at most `cap` bytes of UTF-8. */
function capText(text: string, cap: number): string {
  return Buffer.byteLength(text) <= cap ? text : Buffer.from(text).subarray(0, cap).toString("utf8");
}

/**
 * Validates the body and turns `code` into the language's main file. A kernel request
 * (`language: "kernel"`) is passed on as it is; whether its files may be replaced is the
 * engine's to say (an `invalid` error, answered with 400).
 */
export function parseRunRequest(body: string): RunRequest {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    throw new HttpError(400, `body is not valid JSON: ${(err as Error).message}`);
  }
  const api = ApiRunRequestSchema.safeParse(json);
  if (!api.success) throw new HttpError(400, describeZodError(api.error));
  if (api.data.language === KERNEL_LANGUAGE) {
    // A kernel run is the engine's request as it is: the kernel's name and the replaced files.
    const { code: _code, ...kernelRequest } = api.data;
    checkSourceSize(kernelRequest.files ?? []);
    return parseEngineRequest(kernelRequest);
  }
  const { code, files, ...rest } = api.data;
  const sourceFiles = files ?? [{ name: MAIN_FILE[rest.language], content: code ?? "" }];
  checkSourceSize(sourceFiles);
  // Over HTTP nobody can type into the program: without stdin it reads end-of-file at once.
  return parseEngineRequest({ ...rest, stdin: rest.stdin ?? "", files: sourceFiles });
}

function checkSourceSize(sourceFiles: Array<{ content: string }>): void {
  const bytes = sourceFiles.reduce((sum, f) => sum + utf8Length(f.content), 0);
  if (bytes > MAX_SOURCE_BYTES) {
    throw new HttpError(413, `source is ${Math.ceil(bytes / 1024)} KiB; at most ${MAX_SOURCE_BYTES / 1024} KiB is accepted`);
  }
}

function parseEngineRequest(input: unknown): RunRequest {
  const parsed = RunRequestSchema.safeParse(input);
  if (!parsed.success) throw new HttpError(400, describeZodError(parsed.error));
  return parsed.data;
}

/** Folds a finished run's events into the HTTP answer; the compiler's output is cut to `outputCap` bytes per stream. */
export function collectResponse(events: RunEvent[], outputCap = Number.POSITIVE_INFINITY): ApiRunResponse {
  const response: ApiRunResponse = {
    compile: { ok: false, exitCode: null, stdout: "", stderr: "", diagnostics: [], timeMs: 0, cached: false },
    run: null,
    toolchain: { name: "", version: "" },
  };
  let stdout = "";
  let stderr = "";
  for (const event of events) {
    switch (event.type) {
      case "compiling":
        response.toolchain = event.toolchain;
        break;
      case "diagnostics":
        response.compile.diagnostics.push(...event.items);
        response.compile.stderr += event.rendered;
        break;
      case "compiled":
        Object.assign(response.compile, {
          ok: event.ok,
          exitCode: event.exitCode,
          timeMs: event.timeMs,
          cached: event.cached,
          stdout: response.compile.stdout + event.stdout,
          // The rendered diagnostics already hold the compiler's other lines ("compilation terminated.").
          stderr: response.compile.stderr.includes(event.stderr) ? response.compile.stderr : response.compile.stderr + event.stderr,
        });
        break;
      case "stdout":
        stdout += event.data;
        break;
      case "stderr":
        stderr += event.data;
        break;
      case "exit":
        if (event.phase === "compile") {
          // The compiler's own end (a limit, say) explains a failed compile.
          if (!response.compile.stderr.includes(event.message)) response.compile.stderr += `${event.message}\n`;
          break;
        }
        response.run = {
          exitCode: event.exitCode,
          signal: event.signal,
          stdout,
          stderr,
          timeMs: event.wallMs,
          cpuMs: event.cpuMs,
          peakMemoryBytes: event.peakMemoryBytes,
          limit: event.limit,
          truncated: event.truncated,
          message: event.message,
        };
        break;
    }
  }
  if (Number.isFinite(outputCap)) {
    response.compile.stdout = capText(response.compile.stdout, outputCap);
    response.compile.stderr = capText(response.compile.stderr, outputCap);
    response.compile.diagnostics = response.compile.diagnostics.slice(0, 1000);
  }
  return response;
}

const tooLarge = () =>
  new HttpError(413, `body is larger than ${MAX_BODY_BYTES / 1024} KiB`, { Connection: "close" });

/**
 * Reads the body up to MAX_BODY_BYTES. A larger one is read on and dropped (up to
 * MAX_DISCARD_BYTES) before the 413 goes out, so the client sees the answer, not a reset.
 * A body that does not arrive within the timeout gets a 408.
 */
function readBody(req: http.IncomingMessage, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    const timer = setTimeout(() => {
      finish(new HttpError(408, `the request body did not arrive within ${timeoutMs / 1000} s`, { Connection: "close" }));
    }, timeoutMs);
    const finish = (error: Error | null, body?: string) => {
      clearTimeout(timer);
      req.removeListener("data", onData);
      req.removeListener("end", onEnd);
      req.removeListener("error", onError);
      if (error) {
        // Whatever still comes is dropped; the answer closes the connection.
        req.resume();
        reject(error);
      } else resolve(body!);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_DISCARD_BYTES) return finish(tooLarge());
      if (size > MAX_BODY_BYTES) {
        refused = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => (refused ? finish(tooLarge()) : finish(null, Buffer.concat(chunks).toString("utf8")));
    const onError = (err: Error) => finish(err);
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > MAX_DISCARD_BYTES) return finish(tooLarge());
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

/** `application/json`, with or without parameters (`; charset=utf-8`). */
function isJson(contentType: string | undefined): boolean {
  return contentType?.split(";")[0]?.trim().toLowerCase() === "application/json";
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", ...headers });
  res.end(text);
}
