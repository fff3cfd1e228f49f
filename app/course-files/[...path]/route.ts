import { fileResponse, resolveCourseFile } from "@/lib/deck/server";

export const dynamic = "force-dynamic";

/** A file of the course folder (CONTENT_DIR) that decks share: images, CSS, themes; nothing outside it. */
export async function GET(_req: Request, { params }: { params: Promise<{ path: string[] }> }) {
  const { path } = await params;
  // Next.js hands the segments over decoded: decoding them again would serve `%252D` as `-` and
  // could never serve a file whose name holds a `%`. (A malformed path is a 400 in server/index.ts.)
  const segments = path;
  return fileResponse(await resolveCourseFile(segments));
}
