import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  reactStrictMode: true,
  // Asciidoctor.js is a large CommonJS bundle: load it from node_modules at run time instead of bundling it.
  serverExternalPackages: ["@asciidoctor/core", "@asciidoctor/reveal.js"],
};

export default nextConfig;
