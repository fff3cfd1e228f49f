/**
 * The page's CSP nonce (proxy.ts makes one per request; lib/web/security-headers.ts): scripts the
 * deck adds itself (docinfo, passthrough scripts, the speaker view's page) need it to run.
 */

/** The nonce Next.js put on the page's scripts, or undefined (no CSP, e.g. a test page). */
export function pageNonce(): string | undefined {
  // Browsers hide the attribute's value once parsed; the `nonce` property keeps it.
  for (const script of Array.from(document.scripts)) if (script.nonce) return script.nonce;
  return undefined;
}

/** HTML with the nonce on every <script> tag that has none. */
export function withNonce(html: string, nonce: string): string {
  return html.replace(/<script(?![^>]*\snonce=)(?=[\s>])/gi, `<script nonce="${nonce}"`);
}
