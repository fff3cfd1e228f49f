import path from "node:path";
import { fileResponse, resolveInside } from "@/lib/deck/server/assets";

export const dynamic = "force-dynamic";

/**
 * The site's deck stylesheets (components/deck/*.css), served as files rather than bundled so that they
 * cascade after the deck's own theme, as the converter's standalone page orders them (lib/deck/server/look.ts).
 */
const FILES = new Set(["asciidoctor-revealjs.css", "course-theme.css", "course-palette.css", "course-code.css"]);

export async function GET(_req: Request, { params }: { params: Promise<{ file: string }> }) {
  const { file } = await params;
  if (!FILES.has(file)) return fileResponse(null);
  // turbopackIgnore: read at run time from the project, not traced into the build.
  return fileResponse(await resolveInside(path.join(/*turbopackIgnore: true*/ process.cwd(), "components/deck"), [file]));
}
