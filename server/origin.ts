/**
 * Which web pages may use this server's endpoints that act: the WebSocket (/ws: runs, the live
 * lecture) and every request that changes something (POST /api/run, the lecturer's sign-in and
 * sign-out). Browsers name the page a request comes from in `Origin`; a page of another site
 * (or of no site: a sandboxed frame, a file, an SVG opened directly, `Origin: null`) is refused,
 * so no other site can spend its visitors' run budget here or drive a lecture.
 *
 * Allowed: the site's own origin, whatever name the browser reached it by (the request's `Host`, or
 * the `X-Forwarded-Host` a proxy sets), and the origins an operator lists in ALLOWED_ORIGINS.
 * Requests without an Origin (curl, scripts, the benches, Node's `ws`) are not a browser's
 * cross-site request and pass.
 *
 * X-Forwarded-Host is honoured without TRUST_PROXY: a page cannot set it on a cross-site request (a
 * fetch with that header needs a CORS preflight this server never grants, a WebSocket has no
 * custom headers), so it cannot help another site past this check.
 */
import type http from "node:http";
import type { Duplex } from "node:stream";

export interface OriginPolicy {
  /** The operator's extra origins (ALLOWED_ORIGINS), normalised (`https://course.example`). */
  readonly allowed: readonly string[];
  /** Why a browser request from this page is refused, or null when it may go on. */
  refusal(req: http.IncomingMessage): string | null;
}

/**
 * ALLOWED_ORIGINS: origins (scheme, host, port; comma- or space-separated) besides the site's
 * own, e.g. `https://osbyexample.com,https://os.example.edu`. Anything that is not an origin
 * stops the server with its name.
 */
export function readAllowedOrigins(env: Record<string, string | undefined> = process.env): string[] {
  const raw = env.ALLOWED_ORIGINS?.trim();
  if (!raw) return [];
  return raw.split(/[\s,]+/).filter(Boolean).map((entry) => {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new Error(`ALLOWED_ORIGINS: '${entry}' is not an origin; write it as scheme://host[:port], e.g. https://course.example`);
    }
    if ((url.protocol !== "http:" && url.protocol !== "https:") || url.origin === "null" || `${url.pathname}${url.search}${url.hash}` !== "/" || url.username || url.password) {
      throw new Error(`ALLOWED_ORIGINS: '${entry}' is not an origin; write it as scheme://host[:port] with nothing after it, e.g. https://course.example`);
    }
    if (!/^https?:\/\/[^/]+\/?$/i.test(entry)) {
      throw new Error(`ALLOWED_ORIGINS: '${entry}' is not an origin; write it as scheme://host[:port], e.g. https://course.example`);
    }
    return url.origin;
  });
}

/** The first value of a header a proxy may have sent as a list (`a, b`). */
function firstValue(value: string | string[] | undefined): string | null {
  const text = Array.isArray(value) ? value[0] : value;
  const first = text?.split(",")[0]?.trim();
  return first ? first.toLowerCase() : null;
}

/** `host[:port]` of an origin as a browser writes it, with the scheme's default port left out. */
function originHost(url: URL): string {
  return url.host.toLowerCase();
}

/** A request's Host as the browser wrote it, with a scheme's default port dropped, for comparing with an origin. */
function hostWithoutDefaultPort(host: string, scheme: string): string {
  if (scheme === "https:" && host.endsWith(":443")) return host.slice(0, -4);
  if (scheme === "http:" && host.endsWith(":80")) return host.slice(0, -3);
  return host;
}

export function createOriginPolicy(allowed: readonly string[] = []): OriginPolicy {
  const extra = new Set(allowed);
  return {
    allowed,
    refusal(req) {
      const header = req.headers.origin;
      if (header === undefined) return null; // not a browser's cross-site request: browsers send Origin on those
      if (extra.has(header.trim().toLowerCase())) return null;
      let origin: URL;
      try {
        origin = new URL(header);
      } catch {
        return `requests from pages of other sites are refused (Origin: ${header.slice(0, 100)})`;
      }
      if (origin.origin === "null" || (origin.protocol !== "http:" && origin.protocol !== "https:")) {
        return "requests from pages without an origin (a sandboxed frame, a file, an opened image) are refused";
      }
      if (extra.has(origin.origin)) return null;
      // The site's own origin: the name the browser used, as it reaches us directly or through a proxy.
      const names = [firstValue(req.headers.host), firstValue(req.headers["x-forwarded-host"])];
      const own = originHost(origin);
      for (const name of names) {
        if (name && hostWithoutDefaultPort(name, origin.protocol) === own) return null;
      }
      return `requests from pages of other sites are refused (Origin: ${origin.origin}); an operator can allow it with ALLOWED_ORIGINS`;
    },
  };
}

const ownOriginPolicy = createOriginPolicy();

/** Whether a browser request comes from one of the site's own pages (or from no page at all). */
export function isOwnOrigin(req: http.IncomingMessage): boolean {
  return ownOriginPolicy.refusal(req) === null;
}

/** Methods that only read: a page of any site may send these (it cannot read the answer). */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Answers a refused browser request with 403 and says so (true); false lets it go on. Only requests
 * that act are checked: anything but GET/HEAD/OPTIONS.
 */
export function refuseForeignRequest(policy: OriginPolicy, req: http.IncomingMessage, res: http.ServerResponse, onRefused?: (why: string) => void): boolean {
  if (SAFE_METHODS.has(req.method ?? "GET")) return false;
  const why = policy.refusal(req);
  if (!why) return false;
  onRefused?.(why);
  // The body is dropped; the connection closes after the answer.
  req.resume();
  res.writeHead(403, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", Connection: "close" });
  res.end(JSON.stringify({ error: why }));
  return true;
}

/** Answers a refused WebSocket upgrade with 403 and closes the socket (true); false lets it go on. */
export function refuseForeignUpgrade(policy: OriginPolicy, req: http.IncomingMessage, socket: Duplex, onRefused?: (why: string) => void): boolean {
  const why = policy.refusal(req);
  if (!why) return false;
  onRefused?.(why);
  const body = `${why}\n`;
  socket.end(
    `HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  // A client that never reads the answer must not hold the socket.
  setTimeout(() => socket.destroy(), 1_000).unref();
  return true;
}
