import { fileResponse, resolveCourseFile } from "@/lib/deck/server";

export const dynamic = "force-dynamic";

/** A file of the course folder (CONTENT_DIR) that decks share: images, CSS, themes; nothing outside it. */
export async function GET(_req: Request, { params }: { params: Promise<{ path: string[] }> }) {
  const { path } = await params;
  let segments: string[];
  try {
    segments = path.map((s) => decodeURIComponent(s));
  } catch {
    segments = []; // malformed escape: not a file of ours
  }
  return fileResponse(await resolveCourseFile(segments));
}
