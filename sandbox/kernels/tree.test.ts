/**
 * What a run tree costs: it copies only what a run can change. A checkout with a big vendored
 * folder (as eduOS-rs is when its crates are vendored inside it) makes a run tree that copies
 * exactly as many bytes as the same checkout without it: the unchanged folders are mounted.
 * Files on disk only (a fake kernel checkout and warm tree); nothing is built.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { externalProfile, type KernelProfile } from "./profile";
import { mountedDirBinds, prepareRunTree, removeRunTree } from "./tree";

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await removeRunTree(dir);
});

function write(file: string, bytes: number | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof bytes === "string" ? bytes : Buffer.alloc(bytes, 0x61));
}

/** A kernel checkout with a warm target dir; with `vendoredMiB`, crates vendored inside it. */
function checkout(vendoredMiB: number): KernelProfile {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "kernel-tree-test-"));
  dirs.push(base);
  const src = path.join(base, "kernel");
  write(path.join(src, "Cargo.toml"), '[package]\nname = "kernel"\n');
  write(path.join(src, "Cargo.lock"), "# lock\n");
  write(path.join(src, ".cargo/config.toml"), "[build]\n");
  write(path.join(src, "src/main.rs"), "fn main() {}\n");
  write(path.join(src, "src/lib.rs"), "pub mod scheduler;\n");
  write(path.join(src, "src/scheduler/mod.rs"), "// the scheduler lesson\n");
  write(path.join(src, "src/arch/x86/kernel/start.rs"), "// plumbing\n");
  write(path.join(src, "src/mm/buddy.rs"), Buffer.alloc(3 * 1024 * 1024, 0x62).toString()); // 3 MB of sources
  // The warm tree: small fingerprints (copied) and a big libcore (linked).
  write(path.join(src, "target/x86/debug/.fingerprint/kernel-1/output"), 100);
  write(path.join(src, "target/x86/debug/deps/libcore-1.rlib"), 2 * 1024 * 1024);
  write(path.join(src, "target/x86/debug/kernel"), 1000);
  // The kernel crate's own big rlib and the big files of its incremental cache (shared: a rebuild
  // writes new files), the small ones copied.
  write(path.join(src, "target/x86/debug/deps/libkernel-1.rlib"), 1024 * 1024);
  const incremental = path.join(src, "target/x86/debug/incremental/kernel-1");
  write(path.join(incremental, "s-hoqcyul1no-1j6pzyl-ao8umiy41wd39kt9slsv4fawt/query-cache.bin"), 1024 * 1024);
  write(path.join(incremental, "s-hoqcyul1no-1j6pzyl-ao8umiy41wd39kt9slsv4fawt/work-products.bin"), 100);
  write(path.join(incremental, "s-hoqcyul1no-1j6pzyl.lock"), "");
  // An older session (rustc reads only the newest) and an unfinished one: left out of run trees.
  write(path.join(incremental, "s-hoqcimd5xv-1hj4ipc-ao8umiy41wd39kt9slsv4fawt/query-cache.bin"), 1024 * 1024);
  write(path.join(incremental, "s-hoqcimd5xv-1hj4ipc.lock"), "");
  write(path.join(incremental, "s-hoqczzzzzz-1abcdef-working/query-cache.bin"), 1024 * 1024);
  // bootimage's build of the bootloader: read by no run (the profile says so), mounted, not copied.
  for (let file = 0; file < 40; file++) write(path.join(src, `target/bootimage/bootloader/x86_64-bootloader/release/deps/f${file}.d`), 2000);
  // Vendored crates: many files, as `cargo vendor` writes them.
  for (let crate = 0; crate < 20 && vendoredMiB > 0; crate++) {
    for (let file = 0; file < 10; file++) {
      write(path.join(src, `vendor/crate-${crate}/src/m${file}.rs`), Math.round((vendoredMiB * 1024 * 1024) / 200));
    }
  }
  return externalProfile({
    name: "tree-test",
    sourceDir: src,
    buildCommand: ["/usr/bin/true"],
    imagePath: "target/x86/debug/kernel",
    editableCrates: ["kernel"],
    sharedTargetDirs: ["bootimage"],
    replaceableFiles: [
      { path: "src/main.rs", lesson: "the tasks" },
      { path: "src/scheduler/mod.rs", lesson: "the scheduler" },
    ],
  });
}

async function runTree(profile: KernelProfile, unchangedDirs: "copy" | "mount") {
  const runDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "kernel-tree-run-")), profile.name);
  dirs.push(path.dirname(runDir));
  const started = performance.now();
  const tree = await prepareRunTree({ profile, runDir, files: { "src/scheduler/mod.rs": "// edited\n" }, unchangedDirs });
  return { runDir, tree, ms: performance.now() - started };
}

describe("run trees", () => {
  it("copy the same bytes whether or not the checkout holds 44 MB of vendored crates", async () => {
    const small = checkout(0);
    const big = checkout(44);
    const withoutCrates = await runTree(small, "mount");
    const withCrates = await runTree(big, "mount");
    // The cost of the run tree does not grow with the vendored crates: not one byte more is copied.
    expect(withCrates.tree.copiedBytes).toBe(withoutCrates.tree.copiedBytes);
    expect(withCrates.tree.copiedFiles).toBe(withoutCrates.tree.copiedFiles);
    // The files beside lesson files, the fingerprints and the incremental cache's small files;
    // libcore, the kernel's rlib and the incremental cache's big file are linked.
    expect(withCrates.tree.copiedBytes).toBeLessThan(64 * 1024);
    expect(withCrates.tree.linkedBytes).toBe(4 * 1024 * 1024);
    expect(fs.statSync(path.join(withCrates.runDir, "target/x86/debug/deps/libkernel-1.rlib")).ino).toBe(
      fs.statSync(path.join(big.sourceDir, "target/x86/debug/deps/libkernel-1.rlib")).ino,
    );
    const session = "target/x86/debug/incremental/kernel-1/s-hoqcyul1no-1j6pzyl-ao8umiy41wd39kt9slsv4fawt/query-cache.bin";
    expect(fs.statSync(path.join(withCrates.runDir, session)).ino).toBe(fs.statSync(path.join(big.sourceDir, session)).ino);
    // One small file of the session is the run's own (rustc warns if it can hard-link none of them).
    const ownFile = session.replace("query-cache.bin", "work-products.bin");
    expect(fs.statSync(path.join(withCrates.runDir, ownFile)).ino).not.toBe(fs.statSync(path.join(big.sourceDir, ownFile)).ino);
    expect(fs.readdirSync(path.join(withCrates.runDir, "target/x86/debug/incremental/kernel-1")).sort()).toEqual([
      "s-hoqcyul1no-1j6pzyl-ao8umiy41wd39kt9slsv4fawt",
      "s-hoqcyul1no-1j6pzyl.lock",
    ]);
    // What is mounted instead: every folder without a lesson file, each from the warm tree, read-only.
    expect(withCrates.tree.mountedDirs).toEqual([".cargo", "src/arch", "src/mm", "target/bootimage", "vendor"]);
    expect(withoutCrates.tree.mountedDirs).toEqual([".cargo", "src/arch", "src/mm", "target/bootimage"]);
    expect(mountedDirBinds(big, withCrates.tree)).toContainEqual({ host: path.join(big.sourceDir, "vendor"), sandbox: path.join(big.mountPath, "vendor") });
    expect(fs.readdirSync(path.join(withCrates.runDir, "vendor"))).toEqual([]); // a mount point
    // The folders on the way to a lesson file are the run's: copied, the slide's file written over.
    expect(fs.readFileSync(path.join(withCrates.runDir, "src/scheduler/mod.rs"), "utf8")).toBe("// edited\n");
    expect(fs.readFileSync(path.join(withCrates.runDir, "src/lib.rs"), "utf8")).toBe("pub mod scheduler;\n");
    expect(fs.readFileSync(path.join(withCrates.runDir, "Cargo.toml"), "utf8")).toMatch(/kernel/);

    // Copied instead, the crates are what a run tree costs.
    const copied = await runTree(big, "copy");
    expect(copied.tree.mountedDirs).toEqual([]);
    expect(copied.tree.copiedBytes - withCrates.tree.copiedBytes).toBeGreaterThan(44 * 1024 * 1024 + 3 * 1024 * 1024 - 1024);
    expect(fs.readdirSync(path.join(copied.runDir, "vendor")).length).toBe(20);
    console.log(
      `run tree of a checkout with 44 MB of vendored crates: copies ${withCrates.tree.copiedBytes} bytes in ${withCrates.tree.copiedFiles} files, ` +
        `${withCrates.ms.toFixed(0)} ms (without the crates: ${withoutCrates.tree.copiedBytes} bytes, ${withoutCrates.ms.toFixed(0)} ms; ` +
        `copying everything: ${copied.tree.copiedBytes} bytes, ${copied.ms.toFixed(0)} ms)`,
    );
  });
});
