/**
 * The sandbox's small C helpers (sandbox-init, sandbox-mount) are compiled from source at start,
 * once per source version: a binary named by the source's hash, written under a unique temporary
 * name and renamed into place, so servers starting at once never run a half-written file.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);

/** Builds `source` as `dir/<name>-<hash>` with `mode` (once per source version); returns its path. */
export async function buildHelperBinary(dir: string, name: string, source: string, mode: number): Promise<string> {
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 16);
  const binary = path.join(dir, `${name}-${hash}`);
  if (fs.existsSync(binary)) return binary;
  await fsp.mkdir(dir, { recursive: true, mode: 0o711 });
  const unique = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  const sourceFile = path.join(dir, `${name}-${hash}-${unique}.c`);
  const temp = `${binary}.${unique}.tmp`;
  await fsp.writeFile(sourceFile, source);
  try {
    await exec("/usr/bin/gcc", ["-O2", "-Wall", "-o", temp, sourceFile], { env: { PATH: "/usr/bin:/bin" } as unknown as NodeJS.ProcessEnv });
    await fsp.chmod(temp, mode);
    await fsp.rename(temp, binary);
  } finally {
    await fsp.rm(sourceFile, { force: true });
    await fsp.rm(temp, { force: true });
  }
  return binary;
}
