/**
 * The site's security headers, in one place (pure: the proxy and the tests use it).
 *
 * Pages get a nonce-based Content-Security-Policy (proxy.ts makes a fresh nonce per request; Next.js
 * puts it on its own scripts, the deck's scripts get it in components/deck/deck-look.ts):
 *   - scripts: only those carrying the nonce, and what they load ('strict-dynamic': reveal.js's
 *     plugins, MathJax and its components); no inline handlers, no eval (except in development,
 *     where React needs it);
 *   - styles inline and from anywhere https: ACE, reveal.js and React set style attributes, and a
 *     deck may name a theme by URL;
 *   - images, media and frames also from https: (slides show pictures, videos and pages of other
 *     sites: `image::https://…`, `data-background-iframe`);
 *   - no plugins (object-src), no <base>, forms only to this site, and only this site may frame its
 *     pages (the speaker view frames the deck).
 * Files (deck assets, course files, vendor files) get `sandbox`: an SVG or HTML file opened directly
 * runs no script and has no origin, so it cannot act as the site.
 */

/** CSP of a page; `nonce` is the request's, `dev` allows what Next's development mode needs. */
export function pageCsp(nonce: string, dev = false): string {
  const directives: Record<string, string> = {
    "default-src": "'self'",
    "script-src": `'self' 'nonce-${nonce}' 'strict-dynamic'${dev ? " 'unsafe-eval'" : ""}`,
    "style-src": "'self' 'unsafe-inline' https:",
    "img-src": "'self' data: blob: https:",
    "media-src": "'self' data: blob: https:",
    "font-src": "'self' data: https:",
    "frame-src": "'self' https:",
    "connect-src": "'self'",
    "worker-src": "'self' blob:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'self'",
  };
  return Object.entries(directives)
    .map(([name, value]) => `${name} ${value}`)
    .join("; ");
}

/** The CSP of every file the site serves as it is (not a page). */
export const FILE_CSP = "sandbox";

/** A fresh nonce: 16 random bytes, base64 (Web Crypto: the proxy's runtime has no Buffer guarantee). */
export function newNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes));
}

/** Headers on every answer of the site (next.config.ts): no type sniffing, the origin only as referrer to other sites, no framing by others. */
export const COMMON_HEADERS: ReadonlyArray<{ key: string; value: string }> = [
  { key: "X-Content-Type-Options", value: "nosniff" },
  { key: "Referrer-Policy", value: "strict-origin-when-cross-origin" },
  // For browsers without CSP frame-ancestors.
  { key: "X-Frame-Options", value: "SAMEORIGIN" },
];
