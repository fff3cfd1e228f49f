/**
 * Next.js proxy (formerly middleware): each page's Content-Security-Policy with a nonce made for the
 * request. Next.js reads the nonce from the request's CSP header and puts it on its own scripts
 * (docs: "Content Security Policy", nonces with Proxy). Files served as they are (deck assets,
 * course files, vendor files, Next's static chunks) are not pages: they carry `sandbox` instead.
 */
import { type NextRequest, NextResponse } from "next/server";
import { newNonce, pageCsp } from "@/lib/web/security-headers";

export function proxy(request: NextRequest) {
  const nonce = newNonce();
  const csp = pageCsp(nonce, process.env.NODE_ENV === "development");
  const headers = new Headers(request.headers);
  headers.set("x-nonce", nonce);
  headers.set("Content-Security-Policy", csp);
  const response = NextResponse.next({ request: { headers } });
  response.headers.set("Content-Security-Policy", csp);
  return response;
}

export const config = {
  matcher: [
    {
      // Not: Next's static files, the file routes (app/vendor, app/course-files, app/deck-css, a deck's assets), the icons.
      source: "/((?!_next/static|_next/image|vendor/|course-files/|deck-css/|decks/[^/]+/assets/|favicon\\.ico|icon\\.svg).*)",
      missing: [
        { type: "header", key: "next-router-prefetch" },
        { type: "header", key: "purpose", value: "prefetch" },
      ],
    },
  ],
};
