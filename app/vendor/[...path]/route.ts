import { fileResponse, resolveVendorFile, withoutRemoteImports } from "@/lib/deck/server";

export const dynamic = "force-dynamic";

/** reveal.js themes and fonts, MathJax, highlight.js styles, Font Awesome: served by the site, never a CDN. */
export async function GET(_req: Request, { params }: { params: Promise<{ path: string[] }> }) {
  const { path } = await params;
  const asset = await resolveVendorFile(path);
  const css = asset?.contentType.startsWith("text/css");
  return fileResponse(asset, { immutable: true, ...(css ? { transform: withoutRemoteImports } : {}) });
}
