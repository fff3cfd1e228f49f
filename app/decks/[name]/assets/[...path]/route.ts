import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { resolveDeckAsset } from "@/lib/deck/server";

export const dynamic = "force-dynamic";

/** A file of a deck folder (images, media, downloads); anything outside the folder is a 404. */
export async function GET(_req: Request, { params }: { params: Promise<{ name: string; path: string[] }> }) {
  const { name, path } = await params;
  let segments: string[];
  try {
    segments = path.map((s) => decodeURIComponent(s));
  } catch {
    segments = []; // malformed escape: not a file of ours
  }
  const asset = await resolveDeckAsset(name, segments);
  if (!asset) return new Response("Not found", { status: 404, headers: { "content-type": "text/plain" } });
  const body = Readable.toWeb(createReadStream(asset.file)) as unknown as ReadableStream<Uint8Array>;
  return new Response(body, {
    headers: {
      "content-type": asset.contentType,
      "content-length": String(asset.size),
      "last-modified": new Date(asset.mtimeMs).toUTCString(),
      "cache-control": "public, max-age=60",
      "x-content-type-options": "nosniff",
    },
  });
}
