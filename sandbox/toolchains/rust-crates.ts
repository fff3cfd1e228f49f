/**
 * The curated crates Rust examples may use (libc, nix, rand, …): listed in rust-crates/Cargo.toml,
 * built once by scripts/build-crates.ts (run by scripts/bootstrap.sh) into rust-crates/target, and
 * linked into every Rust run with `--extern NAME=RLIB`. A run never compiles a crate and never
 * needs the network.
 *
 * The build leaves a manifest (target/crates.json) naming each direct dependency's rlib; the
 * compile sandbox sees the build's deps folder read-only at /crates. rustc loads an --extern
 * crate's metadata only when the program names it, so offering all of them costs nothing.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const CRATES_SOURCE_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "rust-crates");
/** Where the crates are built; OSBE_RUST_CRATES_TARGET moves it (it must be traversable by the sandbox users). */
export const CRATES_TARGET_DIR = process.env.OSBE_RUST_CRATES_TARGET ?? path.join(CRATES_SOURCE_DIR, "target");
export const CRATES_MANIFEST = "crates.json";
/** Where the compile sandbox sees the built crates (the deps folder of the release profile). */
export const CRATES_SANDBOX_DIR = "/crates";

export interface CrateInfo {
  /** The name in code (`use serde_json::…`): the library target's name, '-' as '_'. */
  name: string;
  version: string;
  /** The rlib, relative to the deps folder. */
  rlib: string;
}

export interface CratesManifest {
  /** Identifies what the build was made from: Cargo.toml, Cargo.lock and the rustc version. */
  stamp: string;
  rustc: string;
  /** The deps folder on the host (absolute). */
  depsDir: string;
  crates: CrateInfo[];
}

/** The stamp a build must carry to be current: any change of the list, the lock or rustc rebuilds. */
export function cratesStamp(rustcVersion: string, sourceDir = CRATES_SOURCE_DIR): string {
  const hash = createHash("sha256");
  for (const file of ["Cargo.toml", "Cargo.lock"]) {
    const p = path.join(sourceDir, file);
    hash.update(`${file}\0${fs.existsSync(p) ? fs.readFileSync(p) : ""}\0`);
  }
  hash.update(rustcVersion);
  return hash.digest("hex").slice(0, 16);
}

export function readCratesManifest(targetDir = CRATES_TARGET_DIR): CratesManifest | null {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(targetDir, CRATES_MANIFEST), "utf8")) as CratesManifest;
    if (!Array.isArray(manifest.crates) || typeof manifest.depsDir !== "string") return null;
    return manifest;
  } catch {
    return null;
  }
}

/**
 * The crates as a Rust toolchain uses them: present, the rlibs exist, and built by this rustc.
 * Returns the reason otherwise (health shows it; Rust without crates still works).
 */
export function loadCrates(rustcVersion: string, targetDir = CRATES_TARGET_DIR): { manifest: CratesManifest } | { problem: string } {
  const manifest = readCratesManifest(targetDir);
  if (!manifest) return { problem: `the Rust crates are not built (run scripts/bootstrap.sh or npx tsx scripts/build-crates.ts)` };
  if (manifest.rustc !== rustcVersion) {
    return { problem: `the Rust crates were built by rustc ${manifest.rustc}, not ${rustcVersion}: run npx tsx scripts/build-crates.ts` };
  }
  for (const c of manifest.crates) {
    if (!fs.existsSync(path.join(manifest.depsDir, c.rlib))) return { problem: `the Rust crate ${c.name} is missing (${c.rlib}): run npx tsx scripts/build-crates.ts` };
  }
  return { manifest };
}

/** rustc arguments that make the crates available: `-L dependency=/crates --extern name=/crates/lib….rlib`. */
export function externArgs(manifest: CratesManifest): string[] {
  return [
    "-L",
    `dependency=${CRATES_SANDBOX_DIR}`,
    ...manifest.crates.flatMap((c) => ["--extern", `${c.name}=${CRATES_SANDBOX_DIR}/${c.rlib}`]),
  ];
}

/** "anyhow 1.0.98, crossbeam 0.8.4, …": for messages. */
export function describeCrates(crates: CrateInfo[]): string {
  return crates.map((c) => `${c.name} ${c.version}`).join(", ");
}
