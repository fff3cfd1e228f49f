/**
 * The web layer's first look at a request or an upgrade, before anything else sees it:
 * paths that cannot be decoded are answered 400 here (Next.js would answer them 500), and an
 * upgrade nobody takes is answered and closed at once instead of being left open forever.
 */
import type http from "node:http";
import type { Duplex } from "node:stream";

/** The request target's path, or null when its percent-encoding is malformed (`/decks/%E0%A4%A`). */
export function decodablePath(url: string | undefined): string | null {
  const target = url ?? "/";
  const end = target.search(/[?#]/);
  const rawPath = end === -1 ? target : target.slice(0, end);
  try {
    return decodeURIComponent(rawPath);
  } catch {
    return null;
  }
}

/** Answers a plain-text error and closes the connection (a malformed path may be followed by more of the same). */
export function answerMalformedPath(res: http.ServerResponse): void {
  res.writeHead(400, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store", Connection: "close" });
  res.end("Bad request: the path's percent-encoding is malformed\n");
}

/** How long a refused upgrade's answer may take to go out before the socket is destroyed anyway. */
const REFUSED_UPGRADE_FLUSH_MS = 2_000;

/**
 * Answers an upgrade request with a plain HTTP status and closes the socket at once: the
 * descriptor is released as soon as the few bytes are written, whatever the client does.
 */
export function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  socket.on("error", () => socket.destroy());
  if (socket.destroyed) return;
  const reason = status === 400 ? "Bad Request" : status === 404 ? "Not Found" : "Error";
  const body = `${message}\n`;
  const answer =
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const timer = setTimeout(() => socket.destroy(), REFUSED_UPGRADE_FLUSH_MS);
  timer.unref();
  socket.write(answer, () => {
    clearTimeout(timer);
    socket.destroy();
  });
}
