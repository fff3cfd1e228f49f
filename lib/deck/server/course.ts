/**
 * NODE ONLY. A course's own settings, in one small file beside its decks: `<content>/course.json`.
 *
 *   { "images": { "c": "rwth-os/c-env:2025", "rust": "rwth-os/rust-env:2025", "kernel": "…" } }
 *   (languages: c, cpp, asm, rust, kernel)
 *
 * `images` names the container image each language's examples compile and run in (the docker
 * sandbox driver; see docs/authoring.md). Missing file: no settings. A broken file is an error
 * naming it.
 */
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";

export const COURSE_FILE = "course.json";

const ImageName = z.string().regex(/^[a-z0-9][a-z0-9._\/:@-]{0,254}$/, "must be an image name such as my-course/c-env:2025");

export const CourseConfigSchema = z
  .object({
    images: z.object({ c: ImageName, cpp: ImageName, asm: ImageName, rust: ImageName, kernel: ImageName }).partial().strict().default({}),
  })
  .strict();
export type CourseConfig = z.infer<typeof CourseConfigSchema>;

export class CourseConfigError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

/** The course settings of a content folder; throws CourseConfigError for a file that is there but wrong. */
export function readCourseConfig(contentDir: string): CourseConfig {
  const file = path.join(contentDir, COURSE_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { images: {} };
    throw new CourseConfigError(file, (error as Error).message);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CourseConfigError(file, `not valid JSON: ${(error as Error).message}`);
  }
  const parsed = CourseConfigSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CourseConfigError(file, `${issue.path.join(".") || "(top level)"}: ${issue.message}`);
  }
  return parsed.data;
}
