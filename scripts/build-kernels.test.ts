/**
 * scripts/build-kernels.ts proves a profile the way slides use it: a profile whose build works on
 * the host but whose crates the sandbox cannot see fails loudly, with cargo's own words; the same
 * profile with the crates among its extra read-only paths passes and prints the first serial line.
 *
 * The profile is made from the project's own kernel: a copy of kernels/osbe (with its warm tree)
 * outside the checkout, whose standard-library crates come from a vendored folder beside it
 * (`--config source.rust-src-vendor.directory=…`), as a lecturer vendors eduOS-rs's crates.
 * Real engine, real sandbox, real cargo and QEMU.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildKernel } from "../sandbox/kernels/host";
import { osbeProfile } from "../sandbox/kernels/profile";

const osbe = osbeProfile();
const ROOT = path.resolve(import.meta.dirname, "..");
const STD_VENDOR = "/usr/lib/rustlib/src/rust/library/vendor";
let base: string;

/** Runs scripts/build-kernels.ts with these profiles; its status and what it printed. */
function buildKernels(profiles: unknown[], args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(ROOT, "node_modules/.bin/tsx"), ["scripts/build-kernels.ts", ...args], {
      cwd: ROOT,
      env: { ...process.env, OSBE_KERNELS: JSON.stringify(profiles), OSBE_KERNELS_FILE: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/** The copied kernel as a lecturer would configure it; `crates`: the vendored folder listed or not. */
function profile(name: string, listCrates: boolean) {
  return {
    name,
    sourceDir: path.join(base, "osbe"),
    buildCommand: [...osbe.buildCommand, "--config", `source.rust-src-vendor.directory="${path.join(base, "vendor")}"`],
    imagePath: osbe.imagePath,
    editableCrates: osbe.editableCrates,
    successExitCode: 33,
    replaceableFiles: [{ path: "src/hello.rs", lesson: "the boot message" }],
    ...(listCrates ? { extraReadOnlyPaths: [path.join(base, "vendor")] } : {}),
  };
}

beforeAll(async () => {
  // The project's warm tree (a no-op when up to date), then a copy of it beside its vendored crates.
  const warm = await buildKernel(osbe, osbe.sourceDir, 15 * 60 * 1000);
  expect(warm.ok, warm.stderr).toBe(true);
  // Not under /tmp: the sandbox has its own /tmp, and an extra path may not lie there.
  base = fs.mkdtempSync("/var/tmp/osbe-build-kernels-test-");
  fs.chmodSync(base, 0o755);
  fs.cpSync(osbe.sourceDir, path.join(base, "osbe"), { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  fs.rmSync(path.join(base, "osbe/target/.osbe-proof.json"), { force: true });
  fs.mkdirSync(path.join(base, "vendor"), { mode: 0o755 });
  for (const crate of fs.readdirSync(STD_VENDOR)) fs.symlinkSync(path.join(STD_VENDOR, crate), path.join(base, "vendor", crate));
}, 15 * 60 * 1000);

afterAll(() => {
  if (base) fs.rmSync(base, { recursive: true, force: true });
});

describe("scripts/build-kernels.ts", () => {
  it("fails loudly for a profile whose crates the build sandbox cannot see, though its host build works", async () => {
    const result = await buildKernels([profile("hidden-crates", false)], ["hidden-crates", "--prove"]);
    expect(result.status, result.stdout + result.stderr).toBe(1);
    // The warm tree itself built (on the host, where the crates are visible)...
    expect(result.stdout).toMatch(/kernels: hidden-crates: warm tree ready/);
    // ...and the run a slide makes failed, with cargo's exact words and what to do.
    expect(result.stderr).toMatch(/kernels: hidden-crates: PROOF RUN FAILED in the sandbox \(unchanged src\/hello\.rs\), as a slide's run would: compilation failed/);
    expect(result.stderr).toMatch(/failed to load source for dependency/);
    expect(result.stderr).toContain(`failed to read root of directory source: ${path.join(base, "vendor")}`);
    expect(result.stderr).toMatch(/anything else the build needs goes into the profile's extraReadOnlyPaths/);
    expect(fs.existsSync(path.join(base, "osbe/target/.osbe-proof.json"))).toBe(false);
  }, 300_000);

  it("passes the same profile with its crates among the extra read-only paths, and remembers the proof", async () => {
    const result = await buildKernels([profile("listed-crates", true)], ["listed-crates"]);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      /kernels: listed-crates: proof run in the sandbox \(unchanged src\/hello\.rs\): first serial line after [\d.]+ s: "Hello from the OSByExample kernel!"; kernel exited: success/,
    );
    // Once proven, the same warm tree and profile are not proven again at every start.
    const again = await buildKernels([profile("listed-crates", true)], ["listed-crates"]);
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toMatch(/kernels: listed-crates: proof run passed on this warm tree at .* \(first serial line "Hello from the OSByExample kernel!"\)/);
  }, 300_000);

  it("names an extra path the sandbox user cannot reach before building anything", async () => {
    const hidden = fs.mkdtempSync(path.join(base, "private-")); // mode 0700, like /root
    const result = await buildKernels([{ ...profile("unreachable", false), extraReadOnlyPaths: [hidden] }], ["unreachable", "--no-proof"]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`kernels: unreachable: extraReadOnlyPaths: ${hidden} is not readable by the sandbox user (mode 700)`);
    expect(result.stdout).not.toMatch(/warm tree ready/);
  }, 120_000);
});
