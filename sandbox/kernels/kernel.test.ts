/**
 * The kernel lab's own kernel, for real: build the warm tree with Debian's toolchain, boot it in
 * QEMU (software emulation), and run edited copies the way the engine will (a run tree per run,
 * never the warm tree). On the host for now; the sandbox integration runs the same argv.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootKernel, buildKernel } from "./host";
import {
  checkReplaceable,
  externalProfile,
  interpretQemuExit,
  loadKernelProfiles,
  osbeProfile,
  qemuArgv,
} from "./profile";
import { prepareRunTree, removeRunTree } from "./tree";
import { EXPECTED_SERIAL } from "./osbe-serial";

const profile = osbeProfile();
const warmTarget = path.join(profile.sourceDir, profile.targetDir);
const original = (file: string) => fs.readFileSync(path.join(profile.sourceDir, file), "utf8");

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "osbe-kernel-test-"));
  tempDirs.push(dir);
  return dir;
}

/** Path, size and mtime of every file in the warm target dir: a run must change none of them. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const s = fs.lstatSync(p);
        out.push(`${path.relative(dir, p)} ${s.size} ${s.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out.sort();
}

/** Makes a run tree with `files` replaced, builds it and boots it if the build succeeded. */
async function run(files: Record<string, string>, bootTimeoutMs?: number) {
  const runDir = path.join(tempDir(), "osbe");
  const tree = await prepareRunTree({ profile, runDir, files });
  const build = await buildKernel(profile, tree.sourceDir);
  const boot = build.ok ? await bootKernel(profile, tree.imagePath, bootTimeoutMs) : undefined;
  return { tree, build, boot };
}


let warmSnapshot: string[];

beforeAll(async () => {
  // Prepares (or just checks) the warm tree, as scripts/build-kernels.ts does at set-up.
  const build = await buildKernel(profile, profile.sourceDir, 15 * 60 * 1000);
  expect(build.ok, build.stderr).toBe(true);
  warmSnapshot = snapshot(warmTarget);
}, 15 * 60 * 1000);

afterAll(async () => {
  for (const dir of tempDirs) await removeRunTree(dir);
});

describe("kernel profiles", () => {
  it("describes the project's kernel and its lesson files", () => {
    expect(profile.name).toBe("osbe");
    expect(profile.replaceableFiles.map((f) => f.path)).toEqual(["src/hello.rs", "src/syscall.rs", "src/scheduler.rs", "src/tasks.rs"]);
    for (const f of profile.replaceableFiles) expect(fs.existsSync(path.join(profile.sourceDir, f.path))).toBe(true);
    const argv = qemuArgv(profile, "/kernel/osbe/target/i686-osbe/debug/osbe-kernel");
    expect(argv).toContain("-no-reboot");
    expect(argv.slice(argv.indexOf("-kernel"), argv.indexOf("-kernel") + 2)).toEqual(["-kernel", "/kernel/osbe/target/i686-osbe/debug/osbe-kernel"]);
  });

  it("refuses files that are not lesson files", () => {
    expect(checkReplaceable(profile, "src/scheduler.rs").lesson).toMatch(/scheduler/);
    for (const bad of ["Cargo.toml", "../../etc/passwd", "src/../.cargo/config.toml", "/etc/passwd"]) {
      expect(() => checkReplaceable(profile, bad)).toThrow(/not a replaceable file/);
    }
  });

  it("loads an external checkout (eduOS-rs style) from JSON configuration", () => {
    const config = [
      {
        name: "eduos",
        sourceDir: "/srv/eduos-rs",
        buildCommand: ["cargo", "build", "--offline", "--target", "i686-eduos.json", "--message-format=json"],
        imagePath: "target/i686-eduos/debug/eduos-rs",
        editableCrates: ["eduos-rs"],
        successExitCode: 5,
        replaceableFiles: [{ path: "src/scheduler/mod.rs", lesson: "the scheduler" }],
      },
    ];
    const profiles = loadKernelProfiles({ OSBE_KERNELS: JSON.stringify(config) });
    expect(profiles.map((p) => p.name)).toEqual(["osbe", "eduos"]);
    const eduos = profiles[1];
    expect(eduos.successExitCode).toBe(5);
    expect(eduos.mountPath).toBe("/srv/eduos-rs");
    expect(eduos.diagnostics).toBe("cargo-json");
    expect(eduos.env.RUSTC_BOOTSTRAP).toBe("1");
    expect(qemuArgv(eduos, "/kernel/eduos/img")).toContain("/kernel/eduos/img");
    expect(interpretQemuExit(eduos, { exitCode: 5, signal: null, timedOut: false }).kind).toBe("success");
    // Status 1 is QEMU's own failure, unless the profile names it (eduOS-rs's panic writes 0: status 1).
    expect(interpretQemuExit(eduos, { exitCode: 1, signal: null, timedOut: false }).kind).toBe("qemu-error");
    const named = externalProfile({ ...config[0], exitMeanings: { 1: "eduOS-rs panicked or failed" } });
    expect(interpretQemuExit(named, { exitCode: 1, signal: null, timedOut: false })).toMatchObject({ kind: "failure", message: expect.stringMatching(/^eduOS-rs panicked or failed \(isa-debug-exit value 0x0, QEMU status 1\)/) });

    const file = path.join(tempDir(), "kernels.json");
    fs.writeFileSync(file, JSON.stringify(config));
    expect(loadKernelProfiles({ OSBE_KERNELS_FILE: file }).map((p) => p.name)).toEqual(["osbe", "eduos"]);

    expect(() => externalProfile({ ...config[0], sourceDir: "relative/path" })).toThrow(/absolute/);
    expect(() => externalProfile({ ...config[0], imagePath: "../outside" })).toThrow(/inside sourceDir/);
    expect(() => loadKernelProfiles({ OSBE_KERNELS: JSON.stringify([{ ...config[0], name: "osbe" }]) })).toThrow(/twice/);
  });

  it("puts QEMU's exit status into words", () => {
    const words = (exitCode: number | null, timedOut = false) => interpretQemuExit(profile, { exitCode, signal: null, timedOut });
    expect(words(33).kind).toBe("success");
    expect(words(35)).toMatchObject({ kind: "failure", message: expect.stringMatching(/panicked/) });
    expect(words(0)).toMatchObject({ kind: "triple-fault", message: expect.stringMatching(/triple fault/) });
    expect(words(null, true).kind).toBe("timeout");
    expect(words(1).kind).toBe("qemu-error");
  });
});

describe("the osbe kernel in QEMU", () => {
  it("boots the warm build: each lesson's serial output, then success", async () => {
    const boot = await bootKernel(profile, path.join(profile.sourceDir, profile.imagePath));
    expect(boot.outcome.kind, boot.stdout + boot.stderr).toBe("success");
    expect(boot.exitCode).toBe(33);
    expect(boot.stdout.split("\n").filter(Boolean)).toEqual(EXPECTED_SERIAL);
    console.log(`boot of the warm image: first serial line after ${boot.firstLineMs?.toFixed(0)} ms, QEMU done in ${boot.ms.toFixed(0)} ms`);
  });

  it("rebuilds only the edited lesson file in a run tree, and never writes into the warm tree", async () => {
    const hello = original("src/hello.rs").replace("Hello from the OSByExample kernel!", "Hello, students of operating systems!");
    const { tree, build, boot } = await run({ "src/hello.rs": hello });
    expect(build.ok, build.stderr).toBe(true);
    // Only the kernel crate was compiled: core, alloc and compiler_builtins stayed fresh.
    expect(build.stdout).toMatch(/"reason":"compiler-artifact".*"name":"osbe-kernel".*"fresh":false/);
    expect(build.stdout).not.toMatch(/"name":"core".*"fresh":false/);
    expect(boot?.outcome.kind).toBe("success");
    expect(boot?.stdout.split("\n")[0]).toBe("Hello, students of operating systems!");
    expect(tree.linkedBytes).toBeGreaterThan(50 * 1024 * 1024); // libcore is shared, not copied
    expect(tree.copiedBytes).toBeLessThan(20 * 1024 * 1024);
    expect(snapshot(warmTarget)).toEqual(warmSnapshot);
    console.log(
      `run tree: copied ${(tree.copiedBytes / 1e6).toFixed(1)} MB, linked ${(tree.linkedBytes / 1e6).toFixed(0)} MB; ` +
        `one-file rebuild ${build.ms.toFixed(0)} ms; boot to first serial line ${boot?.firstLineMs?.toFixed(0)} ms`,
    );
  });

  it.runIf(process.getuid?.() === 0)("gives the run's files to the sandbox user, never the shared artifacts", async () => {
    const runDir = path.join(tempDir(), "osbe");
    const nobody = { uid: 65534, gid: 65534 };
    await prepareRunTree({ profile, runDir, files: { "src/hello.rs": original("src/hello.rs") }, owner: nobody });
    const deps = path.join(runDir, "target/i686-osbe/debug/deps");
    const core = fs.readdirSync(deps).find((f) => f.startsWith("libcore-") && f.endsWith(".rlib"))!;
    expect(fs.statSync(path.join(deps, core)).uid).toBe(fs.statSync(path.join(warmTarget, "i686-osbe/debug/deps", core)).uid);
    expect(fs.statSync(path.join(deps, core)).ino).toBe(fs.statSync(path.join(warmTarget, "i686-osbe/debug/deps", core)).ino);
    expect(fs.statSync(path.join(runDir, "src/hello.rs")).uid).toBe(nobody.uid);
    expect(fs.statSync(deps).uid).toBe(nobody.uid);
    expect(snapshot(warmTarget)).toEqual(warmSnapshot);
  });

  it("runs an edited scheduler and edited tasks", async () => {
    // Two tasks that each print twice, and a syscall lesson untouched: interleaving must show.
    const tasks = original("src/tasks.rs")
      .replace(/scheduler::spawn\("C", task_c\);\n/, "")
      .replace("for step in 1..=3 {\n        sys_println!(\"task A", "for step in 1..=2 {\n        sys_println!(\"task A");
    const { build, boot } = await run({ "src/tasks.rs": tasks });
    expect(build.ok, build.stderr + build.diagnostics.map((d) => d.rendered).join("\n")).toBe(true);
    expect(boot?.stdout).toContain("[sched] round robin over 2 tasks\ntask A: step 1\ntask B: step 1\ntask A: step 2\ntask B: step 2\n");
    expect(boot?.outcome.kind).toBe("success");
  });

  it("reports a compile error in the edited file with rustc's diagnostic on the right line", async () => {
    const lines = original("src/scheduler.rs").split("\n");
    const target = lines.findIndex((l) => l.includes("CURRENT = id;"));
    expect(target).toBeGreaterThan(0);
    lines[target] = lines[target].replace("CURRENT = id;", "CURRENT = id + undefined_variable;");
    const { build, boot } = await run({ "src/scheduler.rs": lines.join("\n") });
    expect(build.ok).toBe(false);
    expect(boot).toBeUndefined();
    const error = build.diagnostics.find((d) => d.level === "error");
    expect(error).toMatchObject({ file: "src/scheduler.rs", line: target + 1, message: expect.stringMatching(/undefined_variable/) });
    expect(snapshot(warmTarget)).toEqual(warmSnapshot);
  });

  it("stops a kernel stuck in an endless loop at the wall limit", async () => {
    const hello = original("src/hello.rs").replace(/kprintln!\("Hello from the OSByExample kernel!"\);/, '$&\n    loop {}');
    const started = Date.now();
    const { build, boot } = await run({ "src/hello.rs": hello }, 1500);
    expect(build.ok, build.stderr).toBe(true);
    expect(boot?.outcome.kind).toBe("timeout");
    expect(boot?.stdout).toContain("Hello from the OSByExample kernel!");
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("names a triple fault (a broken IDT), a kernel panic and a CPU exception", async () => {
    const tripleFault = [
      "pub fn hello() {",
      '    crate::kprintln!("loading an empty IDT");',
      "    let empty: [u16; 3] = [0; 3]; // limit 0: no vector is valid",
      '    unsafe { core::arch::asm!("lidt [{}]", "int3", in(reg) &empty) };',
      "}",
    ].join("\n");
    const panic = 'pub fn hello() {\n    let v = [1, 2];\n    let i = v.len() + 1;\n    crate::kprintln!("{}", v[i % 4]);\n}\n';
    // (in tasks.rs: hello() runs before the IDT is loaded, where int3 would triple-fault)
    const exception = 'pub fn spawn_all() {\n    unsafe { core::arch::asm!("int3") };\n    unsafe { core::arch::asm!("ud2") };\n}\n';
    const [fault, panicked] = await Promise.all([run({ "src/hello.rs": tripleFault }), run({ "src/hello.rs": panic })]);
    // A CPU exception goes through the IDT: int3 returns, ud2 (invalid opcode) panics.
    const trapped = await run({ "src/tasks.rs": exception });
    expect(trapped.boot?.stdout).toMatch(/\n\[int\] breakpoint at eip=0x[0-9a-f]+\nKERNEL PANIC: panicked at src\/interrupts.rs:\d+:\d+:\nCPU exception 6 \(invalid opcode\)/);
    expect(trapped.boot?.outcome).toMatchObject({ kind: "failure", exitCode: 35 });
    expect(fault.build.ok, fault.build.stderr).toBe(true);
    expect(fault.boot?.outcome.kind).toBe("triple-fault");
    expect(panicked.build.ok, panicked.build.stderr).toBe(true);
    expect(panicked.boot?.outcome).toMatchObject({ kind: "failure", exitCode: 35 });
    expect(panicked.boot?.stdout).toMatch(/KERNEL PANIC: panicked at src\/hello.rs:4:\d+:\nindex out of bounds/);
  });

  it("keeps two runs at once apart", async () => {
    const say = (words: string) => original("src/hello.rs").replace("Hello from the OSByExample kernel!", words);
    const [one, two] = await Promise.all([run({ "src/hello.rs": say("first run") }), run({ "src/hello.rs": say("second run") })]);
    expect(one.boot?.stdout.split("\n")[0]).toBe("first run");
    expect(two.boot?.stdout.split("\n")[0]).toBe("second run");
    expect(one.boot?.outcome.kind).toBe("success");
    expect(two.boot?.outcome.kind).toBe("success");
    expect(snapshot(warmTarget)).toEqual(warmSnapshot);
  });
});
