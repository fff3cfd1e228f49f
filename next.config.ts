import type { NextConfig } from "next";
import { COMMON_HEADERS } from "./lib/web/security-headers";

const nextConfig: NextConfig = {
  reactStrictMode: true,
  // Next type-checks only what the browser and the pages see; `npm run typecheck` covers the rest.
  typescript: { tsconfigPath: "tsconfig.next.json" },
  // Asciidoctor.js is a large CommonJS bundle: load it from node_modules at run time instead of bundling it.
  serverExternalPackages: ["@asciidoctor/core", "@asciidoctor/reveal.js"],
  // No `X-Powered-By: Next.js`.
  poweredByHeader: false,
  // nosniff, Referrer-Policy and no framing by other sites on every answer; pages' CSP comes from proxy.ts,
  // files' `sandbox` from their routes (lib/web/security-headers.ts).
  async headers() {
    return [{ source: "/:path*", headers: [...COMMON_HEADERS] }];
  },
};

export default nextConfig;
