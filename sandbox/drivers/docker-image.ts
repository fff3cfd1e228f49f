/**
 * The toolchain image the docker driver runs in by default: its name carries a hash of its recipe
 * (deploy/images/), so a changed recipe is a new image and an Engine that holds this recipe's image
 * is never asked to build it again. When the Engine lacks it, `buildToolchainImage` builds it
 * offline from Debian packages with deploy/images/build-offline.sh (a few minutes, once).
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const IMAGES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../deploy/images");
/** The files whose content names the image, in the order build-offline.sh hashes them. */
const RECIPE = ["toolchain/packages.txt", "toolchain/layout.sh", "build-offline.sh"];

export function toolchainImageName(): string {
  const hash = createHash("sha256");
  for (const file of RECIPE) hash.update(fs.readFileSync(path.join(IMAGES_DIR, file)));
  return `osbyexample-toolchain:${hash.digest("hex").slice(0, 12)}`;
}

/** Builds `name` with build-offline.sh against the Engine at `dockerHost`; its progress goes to `log`. */
export function buildToolchainImage(name: string, dockerHost: string | undefined, log: (line: string) => void = console.log): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [path.join(IMAGES_DIR, "build-offline.sh"), "--if-missing", name], {
      env: { ...process.env, ...(dockerHost ? { DOCKER_HOST: dockerHost } : {}) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let tail = "";
    const collect = (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) if (line.trim()) log(`image: ${line}`);
      tail = (tail + chunk.toString()).slice(-2000);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`building the toolchain image ${name} failed (exit ${code}): ${tail.trim().split("\n").slice(-3).join(" | ")}`));
    });
  });
}
