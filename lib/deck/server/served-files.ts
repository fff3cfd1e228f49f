/**
 * Which files of a deck or course folder the author keeps private or marks for serving (pure path rules;
 * lib/deck/server/assets.ts serves by them, the loader collects the marks).
 */

/** A private file: a name beginning with `.` or `_`, or anything inside a folder named `private`. Never served. */
export function isPrivatePath(segments: readonly string[]): boolean {
  return segments.some((s, i) => s.startsWith(".") || s.startsWith("_") || (s.toLowerCase() === "private" && i < segments.length - 1));
}

/** Path segments of a relative path as written (either slash), without empty and `.` segments. */
export function pathSegments(relative: string): string[] {
  return relative.split(/[\\/]+/).filter((s) => s && s !== ".");
}

/**
 * Is `file` (relative to the course folder, `/`-separated) one of the author's marks? A mark is a file, a folder
 * ending in `/` (everything in it), or a name with `*` (any characters but `/`; `**` also `/`).
 */
export function isMarked(file: string, marks: readonly string[]): boolean {
  return marks.some((mark) => {
    if (mark.endsWith("/")) return file.startsWith(mark);
    if (!mark.includes("*")) return file === mark;
    const pattern = mark
      .split(/(\*\*|\*)/)
      .map((part) => (part === "**" ? ".*" : part === "*" ? "[^/]*" : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")))
      .join("");
    return new RegExp(`^${pattern}$`).test(file);
  });
}
