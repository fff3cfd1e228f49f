/**
 * Operators tune the server with JSON in environment variables (CLIENT_LIMITS, WEB_LIMITS,
 * QUOTAS): the defaults, overridden by the keys the variable names. A bad value throws an error
 * that names the variable, the key and the keys there are, so the server stops with it at start.
 */
import type { z } from "zod";

export function readJsonSettings<T extends object>(name: string, value: string | undefined, defaults: T, schema: z.ZodType<Partial<T>>): T {
  if (!value) return { ...defaults };
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch (error) {
    throw new Error(`${name} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`).join("; ");
    throw new Error(`${name}: ${issues} (keys: ${Object.keys(defaults).join(", ")})`);
  }
  return { ...defaults, ...parsed.data };
}
