/**
 * Bounds of the web layer itself, whoever the client is: how long a connection may take to send
 * its request or sit idle, and how much of their output the server holds for clients that do
 * not read it. Defaults below; WEB_LIMITS (JSON) overrides any of them, e.g.
 * `WEB_LIMITS='{"headersTimeoutSeconds":5}'`. A bad value stops the server with its name.
 */
import { z } from "zod";
import { readJsonSettings } from "./json-settings";

export interface WebLimits {
  /** The request line and headers must arrive within this (Node's headersTimeout). */
  headersTimeoutSeconds: number;
  /** The whole request, body included, must arrive within this (Node's requestTimeout). */
  requestTimeoutSeconds: number;
  /**
   * A connection with nothing received or sent for this long is closed: one that never sends a
   * request, and an answer the client does not read (a run's wait for its sandbox does not count).
   */
  idleTimeoutSeconds: number;
  /** A kept-alive connection between two requests is closed after this. */
  keepAliveTimeoutSeconds: number;
  /** Bytes of stdout and of stderr (each) a `POST /api/run` answer carries; the rest is cut (`truncated`). */
  answerOutputBytes: number;
  /** Output one WebSocket may have waiting for its reader; past it the connection is terminated. */
  wsBufferedBytesPerConnection: number;
  /** Output all WebSockets together may have waiting; past it the one holding most is terminated. */
  wsBufferedBytesTotal: number;
}

const MiB = 1024 * 1024;

export const defaultWebLimits: WebLimits = {
  headersTimeoutSeconds: 10,
  requestTimeoutSeconds: 30,
  idleTimeoutSeconds: 30,
  keepAliveTimeoutSeconds: 5,
  answerOutputBytes: 256 * 1024,
  wsBufferedBytesPerConnection: 16 * MiB,
  wsBufferedBytesTotal: 128 * MiB,
};

const seconds = z.number().positive().max(3600);
const bytes = z.number().int().positive();

const WebLimitsSchema = z
  .object({
    headersTimeoutSeconds: seconds,
    requestTimeoutSeconds: seconds,
    idleTimeoutSeconds: seconds,
    keepAliveTimeoutSeconds: seconds,
    answerOutputBytes: bytes,
    wsBufferedBytesPerConnection: bytes,
    wsBufferedBytesTotal: bytes,
  })
  .partial()
  .strict();

/** Defaults, then WEB_LIMITS from the environment; throws with a readable message on a bad value. */
export function readWebLimits(env: Record<string, string | undefined> = process.env): WebLimits {
  const limits = readJsonSettings("WEB_LIMITS", env.WEB_LIMITS, defaultWebLimits, WebLimitsSchema);
  // Node refuses a request timeout shorter than the headers timeout.
  if (limits.requestTimeoutSeconds < limits.headersTimeoutSeconds) {
    throw new Error(
      `WEB_LIMITS: requestTimeoutSeconds (${limits.requestTimeoutSeconds}) must not be shorter than headersTimeoutSeconds (${limits.headersTimeoutSeconds})`,
    );
  }
  if (limits.wsBufferedBytesTotal < limits.wsBufferedBytesPerConnection) {
    throw new Error(
      `WEB_LIMITS: wsBufferedBytesTotal (${limits.wsBufferedBytesTotal}) must not be smaller than wsBufferedBytesPerConnection (${limits.wsBufferedBytesPerConnection})`,
    );
  }
  return limits;
}

/**
 * Node's own options for these bounds. Node checks headers and request timeouts every
 * connectionsCheckingInterval (30 s by default, which is what let slow headers last 71 s):
 * here a fraction of the shorter one.
 */
export function httpServerOptions(limits: WebLimits): {
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  connectionsCheckingInterval: number;
} {
  const headersTimeout = limits.headersTimeoutSeconds * 1000;
  return {
    headersTimeout,
    requestTimeout: limits.requestTimeoutSeconds * 1000,
    keepAliveTimeout: limits.keepAliveTimeoutSeconds * 1000,
    connectionsCheckingInterval: Math.max(250, Math.min(2_000, Math.floor(headersTimeout / 4))),
  };
}
