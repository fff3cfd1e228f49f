import { fileResponse, resolveDeckAsset } from "@/lib/deck/server";

export const dynamic = "force-dynamic";

/**
 * A file of a deck folder that slides need (images, media, fonts, styles) or that the author marks (linked,
 * `:downloads:`); sources and private files are a 404 (lib/deck/server/assets.ts), as is anything outside the folder.
 */
export async function GET(_req: Request, { params }: { params: Promise<{ name: string; path: string[] }> }) {
  const { name, path } = await params;
  // Next.js hands the segments over decoded: decoding them again would serve `%252D` as `-` and
  // could never serve a file whose name holds a `%`. (A malformed path is a 400 in server/index.ts.)
  return fileResponse(await resolveDeckAsset(name, path));
}
