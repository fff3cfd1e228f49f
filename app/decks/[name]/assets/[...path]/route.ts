import { fileResponse, resolveDeckAsset } from "@/lib/deck/server";

export const dynamic = "force-dynamic";

/**
 * A file of a deck folder that slides need (images, media, fonts, styles) or that the author marks (linked,
 * `:downloads:`); sources and private files are a 404 (lib/deck/server/assets.ts), as is anything outside the folder.
 */
export async function GET(_req: Request, { params }: { params: Promise<{ name: string; path: string[] }> }) {
  const { name, path } = await params;
  let segments: string[];
  try {
    segments = path.map((s) => decodeURIComponent(s));
  } catch {
    segments = []; // malformed escape: not a file of ours
  }
  return fileResponse(await resolveDeckAsset(name, segments));
}
