import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  reactStrictMode: true,
  // Next type-checks only what the browser and the pages see; `npm run typecheck` covers the rest.
  typescript: { tsconfigPath: "tsconfig.next.json" },
  // Asciidoctor.js is a large CommonJS bundle: load it from node_modules at run time instead of bundling it.
  serverExternalPackages: ["@asciidoctor/core", "@asciidoctor/reveal.js"],
};

export default nextConfig;
