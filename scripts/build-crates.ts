/**
 * Builds the curated Rust crates (sandbox/toolchains/rust-crates/Cargo.toml) once, with the rustc
 * students' runs use, and writes the manifest the Rust toolchain links them from
 * (sandbox/toolchains/rust-crates.ts).
 *
 *   npx tsx scripts/build-crates.ts
 *
 * Idempotent: when the manifest's stamp (Cargo.toml, Cargo.lock, rustc version) is current and the
 * rlibs exist it returns at once. The first build fetches the crates from the registry and compiles
 * them (about 3 minutes on two loaded cores); set-up is the only time the network is needed.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {
  CRATES_MANIFEST,
  CRATES_SOURCE_DIR,
  CRATES_TARGET_DIR,
  cratesStamp,
  describeCrates,
  readCratesManifest,
  type CrateInfo,
  type CratesManifest,
} from "../sandbox/toolchains/rust-crates";
import { RustToolchain } from "../sandbox/toolchains/rust";

const CARGO = "/usr/bin/cargo";
const RUSTC = "/usr/bin/rustc";

interface CargoMessage {
  reason?: string;
  package_id?: string;
  target?: { name: string; kind: string[] };
  filenames?: string[];
  message?: { rendered?: string; level?: string };
}

async function main(): Promise<void> {
  const rustc = await new RustToolchain(RUSTC).detectVersion();
  const depsDir = path.join(CRATES_TARGET_DIR, "release", "deps");
  const current = readCratesManifest();
  if (
    current &&
    current.stamp === cratesStamp(rustc) &&
    current.depsDir === depsDir &&
    current.crates.every((c) => fs.existsSync(path.join(depsDir, c.rlib)))
  ) {
    return; // up to date: nothing to say
  }

  console.log(`crates: building the Rust crates for examples (first time: a few minutes) into ${path.relative(process.cwd(), CRATES_TARGET_DIR) || CRATES_TARGET_DIR}`);
  const started = performance.now();
  const direct = await directDependencies();
  const messages = await cargoBuild();
  const crates: CrateInfo[] = [];
  for (const m of messages) {
    if (m.reason !== "compiler-artifact" || !m.package_id || !m.target?.kind.includes("lib")) continue;
    const { name: pkg, version } = parsePackageId(m.package_id);
    if (!direct.has(pkg)) continue;
    const rlib = m.filenames?.find((f) => f.endsWith(".rlib"));
    if (!rlib) continue;
    crates.push({ name: m.target.name.replace(/-/g, "_"), version, rlib: path.relative(depsDir, rlib) });
  }
  const missing = [...direct].filter((pkg) => !crates.some((c) => c.name === pkg.replace(/-/g, "_")));
  if (missing.length) throw new Error(`cargo built no library for ${missing.join(", ")}`);
  crates.sort((a, b) => a.name.localeCompare(b.name));
  // The sandbox users read the rlibs: make the tree readable whatever the umask was.
  makeWorldReadable(CRATES_TARGET_DIR);
  const manifest: CratesManifest = { stamp: cratesStamp(rustc), rustc, depsDir, crates };
  fs.writeFileSync(path.join(CRATES_TARGET_DIR, CRATES_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`crates: ready in ${((performance.now() - started) / 1000).toFixed(1)} s: ${describeCrates(crates)}`);
}

/** "registry+https://…crates.io-index#rand@0.8.5" → rand, 0.8.5 (also the older "rand 0.8.5 (registry+…)"). */
function parsePackageId(id: string): { name: string; version: string } {
  const modern = /#(?:([^@]+)@)?([^#@]+)$/.exec(id);
  if (modern?.[1]) return { name: modern[1], version: modern[2]! };
  const old = /^(\S+) (\S+) /.exec(id);
  if (old) return { name: old[1]!, version: old[2]! };
  return { name: id, version: "" };
}

/** The package names listed under [dependencies]. */
async function directDependencies(): Promise<Set<string>> {
  const out = await cargo(["metadata", "--format-version", "1", "--no-deps"], false);
  const meta = JSON.parse(out) as { packages: Array<{ name: string; dependencies: Array<{ name: string; kind: string | null }> }> };
  const root = meta.packages.find((p) => p.name === "osbyexample-crates");
  if (!root) throw new Error("rust-crates/Cargo.toml: package osbyexample-crates not found");
  return new Set(root.dependencies.filter((d) => d.kind === null).map((d) => d.name));
}

async function cargoBuild(): Promise<CargoMessage[]> {
  const out = await cargo(["build", "--release", "--message-format=json", "--target-dir", CRATES_TARGET_DIR], true);
  const messages: CargoMessage[] = [];
  for (const line of out.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      messages.push(JSON.parse(line) as CargoMessage);
    } catch {
      // not a message
    }
  }
  return messages;
}

/** Runs cargo in the crates' folder; its progress goes to our stderr, its stdout is returned. */
function cargo(args: string[], showProgress: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(CARGO, args, {
      cwd: CRATES_SOURCE_DIR,
      stdio: ["ignore", "pipe", showProgress ? "inherit" : "pipe"],
      // The rustc of students' runs (Debian's in /usr), never a rustup one found earlier on PATH:
      // rustc refuses crates another version built.
      env: { ...process.env, CARGO_TERM_COLOR: "never", RUSTC: RUSTC, RUSTDOC: "/usr/bin/rustdoc", RUSTC_WRAPPER: "", RUSTFLAGS: "" },
    });
    const chunks: Buffer[] = [];
    let err = "";
    child.stdout?.on("data", (d: Buffer) => chunks.push(d));
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const out = Buffer.concat(chunks).toString("utf8");
      if (code === 0) return resolve(out);
      const rendered = out
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => {
          try {
            return (JSON.parse(l) as CargoMessage).message?.rendered ?? "";
          } catch {
            return "";
          }
        })
        .join("");
      reject(new Error(`cargo ${args[0]} failed (exit code ${code})\n${rendered}${err}`));
    });
  });
}

function makeWorldReadable(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    const mode = fs.statSync(p).mode & 0o777;
    if (entry.isDirectory()) {
      if ((mode & 0o005) !== 0o005) fs.chmodSync(p, mode | 0o005);
      makeWorldReadable(p);
    } else if ((mode & 0o004) === 0) fs.chmodSync(p, mode | 0o004);
  }
  const mode = fs.statSync(dir).mode & 0o777;
  if ((mode & 0o005) !== 0o005) fs.chmodSync(dir, mode | 0o005);
}

main().catch((error) => {
  console.error(`crates: ${error instanceof Error ? error.message : error}`);
  process.exitCode = 1;
});
