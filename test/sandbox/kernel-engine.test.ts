/**
 * The kernel lab through the real engine: `language: "kernel"` requests built with cargo in bwrap
 * from a run tree of the warm build tree, booted in QEMU in bwrap, the serial console streamed as
 * stdout. Real sandbox, real toolchain, real QEMU (software emulation).
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { KernelRunRequestInput, RunEvent } from "../../lib/protocol";
import { buildKernel } from "../../sandbox/kernels/host";
import { externalProfile, osbeProfile } from "../../sandbox/kernels/profile";
import { runToEnd, start, startTestEngine, type TestEngine } from "./helpers";
import { EXPECTED_SERIAL } from "../../sandbox/kernels/osbe-serial";

const profile = osbeProfile();
const original = (file: string) => fs.readFileSync(path.join(profile.sourceDir, file), "utf8");
const kernel = (files: Record<string, string>, extra: Partial<KernelRunRequestInput> = {}): KernelRunRequestInput => ({
  language: "kernel",
  kernel: "osbe",
  files: Object.entries(files).map(([name, content]) => ({ name, content })),
  ...extra,
});
const hello = (words: string) => original("src/hello.rs").replace("Hello from the OSByExample kernel!", words);

/** Path, size, mtime and inode of every file of the warm tree (source and target): no run may change one. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const s = fs.lstatSync(p);
      if (e.isDirectory()) walk(p);
      else out.push(`${path.relative(dir, p)} ${s.size} ${s.mtimeMs} ${s.ino} ${s.mode} ${s.uid}`);
    }
  };
  walk(dir);
  return out.sort();
}

/** Everything the unchanged kernel prints after its boot message. */
const EXPECTED_AFTER_HELLO = EXPECTED_SERIAL.slice(1);

let t: TestEngine;
let warm: string[];

beforeAll(async () => {
  // The warm tree, as scripts/build-kernels.ts prepares it at set-up (a no-op when up to date).
  const build = await buildKernel(profile, profile.sourceDir, 15 * 60 * 1000);
  expect(build.ok, build.stderr).toBe(true);
  warm = snapshot(profile.sourceDir);
  t = startTestEngine(240_000, { concurrency: 2, statsIntervalMs: 300 });
}, 15 * 60 * 1000);

afterEach(async () => {
  await t.expectNothingLeft();
});

afterAll(async () => {
  await t?.dispose();
  // No run wrote into the warm tree: not a file added, changed, touched or replaced.
  expect(snapshot(profile.sourceDir)).toEqual(warm);
});

const types = (events: RunEvent[]) => [...new Set(events.map((e) => e.type))];

describe("kernel runs through the engine", () => {
  it("lists the kernel profiles in health()", async () => {
    const health = await t.engine.health();
    expect(health.ready).toBe(true);
    const osbe = health.kernels.find((k) => k.name === "osbe");
    expect(osbe).toMatchObject({ available: true, description: expect.stringMatching(/teaching kernel/) });
    expect(osbe!.replaceableFiles.map((f) => f.path)).toEqual(["src/hello.rs", "src/syscall.rs", "src/scheduler.rs", "src/tasks.rs"]);
    expect(health.toolchains.map((tc) => tc.language)).toEqual(expect.arrayContaining(["c", "rust"]));
  });

  it("runs a lesson block: the edited boot message, then every lesson's serial output, then success", async () => {
    const run = await runToEnd(t.engine, kernel({ "src/hello.rs": hello("Hello from a slide!") }));
    expect(run.error).toBeUndefined();
    // (periodic stats may come between the serial output; one always comes right before exit)
    expect(types(run.events.filter((e) => e.type !== "stats"))).toEqual(["compiling", "compiled", "running", "stdout", "exit"]);
    expect(run.events.slice(-2).map((e) => e.type)).toEqual(["stats", "exit"]);
    expect(run.compiled).toMatchObject({ ok: true, exitCode: 0, cached: false });
    expect(run.stdout.split("\n").filter(Boolean)).toEqual(["Hello from a slide!", ...EXPECTED_AFTER_HELLO]);
    expect(run.exit).toMatchObject({ phase: "run", exitCode: 33, limit: null, message: "kernel exited: success" });
  });

  it("builds the same files once: a second run boots the cached image", async () => {
    const request = kernel({ "src/hello.rs": hello("asked twice") });
    const first = await runToEnd(t.engine, request);
    const second = await runToEnd(t.engine, request);
    expect(first.compiled).toMatchObject({ ok: true, cached: false });
    expect(second.compiled).toMatchObject({ ok: true, cached: true });
    expect(second.stdout).toBe(first.stdout);
    expect(second.stdout.split("\n")[0]).toBe("asked twice");
    expect(second.exit?.message).toBe("kernel exited: success");
    // Another file, or the same file changed, is another build.
    const other = await runToEnd(t.engine, kernel({ "src/hello.rs": hello("asked twice!") }));
    expect(other.compiled?.cached).toBe(false);
  });

  it("boots the kernel unchanged when no file is replaced", async () => {
    const run = await runToEnd(t.engine, { language: "kernel", kernel: "osbe" });
    expect(run.stdout.split("\n")[0]).toBe("Hello from the OSByExample kernel!");
    expect(run.exit?.message).toBe("kernel exited: success");
  });

  it("reports a compile error in the edited file on its line, relative to the kernel, and boots nothing", async () => {
    const lines = original("src/scheduler.rs").split("\n");
    const target = lines.findIndex((l) => l.includes("CURRENT = id;"));
    expect(target).toBeGreaterThan(0);
    lines[target] = lines[target]!.replace("CURRENT = id;", "CURRENT = id + undefined_variable;");
    const run = await runToEnd(t.engine, kernel({ "src/scheduler.rs": lines.join("\n") }));
    expect(run.events.some((e) => e.type === "running")).toBe(false);
    const error = run.diagnostics?.items.find((d) => d.severity === "error");
    expect(error).toMatchObject({ file: "src/scheduler.rs", line: target + 1, message: expect.stringMatching(/undefined_variable/) });
    expect(run.diagnostics?.rendered).toMatch(new RegExp(`src/scheduler\\.rs:${target + 1}:\\d+`));
    expect(run.diagnostics?.rendered).not.toContain(profile.mountPath);
    expect(run.compiled).toMatchObject({ ok: false, limit: null });
    expect(run.exit).toMatchObject({ phase: "compile", message: "compilation failed: 1 error" });
  });

  it("passes a warning in the edited file on and still boots", async () => {
    const source = "use crate::kprintln;\n\npub fn hello() {\n    let unused = 42;\n    kprintln!(\"warned but running\");\n}\n";
    const run = await runToEnd(t.engine, kernel({ "src/hello.rs": source }));
    expect(run.diagnostics?.items).toContainEqual(expect.objectContaining({ file: "src/hello.rs", line: 4, severity: "warning", message: expect.stringMatching(/unused/) }));
    expect(run.compiled?.ok).toBe(true);
    expect(run.stdout.split("\n")[0]).toBe("warned but running");
    expect(run.exit?.message).toBe("kernel exited: success");
  });

  it("stops a kernel in an endless loop at the (lowered) wall limit, after streaming what it printed", async () => {
    const tasks = original("src/tasks.rs").replace(/pub fn spawn_all\(\) \{/, '$&\n    crate::kprintln!("about to loop forever");\n    loop {}');
    expect(tasks).toContain("loop {}");
    const started = Date.now();
    const run = start(t.engine, kernel({ "src/tasks.rs": tasks }, { limits: { wallSeconds: 2 } }));
    // The serial console streams while the kernel still runs.
    await run.waitFor((e) => e.type === "stdout" && run.collected.stdout.includes("about to loop forever"));
    expect(run.collected.exit).toBeUndefined();
    const done = await run.finished;
    expect(done.exit).toMatchObject({
      phase: "run",
      limit: "wall",
      message: "stopped: wall-clock limit of 2 s exceeded — the kernel hung or looped",
    });
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it("names a kernel panic and a triple fault", async () => {
    const panic = 'pub fn hello() {\n    let v = [1, 2];\n    let i = v.len() + 1;\n    crate::kprintln!("{}", v[i % 4]);\n}\n';
    const tripleFault = [
      "pub fn hello() {",
      '    crate::kprintln!("loading an empty IDT");',
      "    let empty: [u16; 3] = [0; 3];",
      '    unsafe { core::arch::asm!("lidt [{}]", "int3", in(reg) &empty) };',
      "}",
    ].join("\n");
    const [panicked, fault] = await Promise.all([
      runToEnd(t.engine, kernel({ "src/hello.rs": panic })),
      runToEnd(t.engine, kernel({ "src/hello.rs": tripleFault })),
    ]);
    expect(panicked.stdout).toMatch(/KERNEL PANIC: panicked at src\/hello.rs:4:\d+:\nindex out of bounds/);
    expect(panicked.exit).toMatchObject({ exitCode: 35, message: "kernel panicked (status 35)" });
    expect(fault.stdout).toContain("loading an empty IDT");
    expect(fault.exit).toMatchObject({ exitCode: 0, message: "triple fault: the CPU reset (QEMU -no-reboot)" });
  });

  it("keeps two kernel runs at once apart", async () => {
    const [one, two] = await Promise.all([
      runToEnd(t.engine, kernel({ "src/hello.rs": hello("first run") })),
      runToEnd(t.engine, kernel({ "src/hello.rs": hello("second run") })),
    ]);
    expect(one.stdout.split("\n").filter(Boolean)).toEqual(["first run", ...EXPECTED_AFTER_HELLO]);
    expect(two.stdout.split("\n").filter(Boolean)).toEqual(["second run", ...EXPECTED_AFTER_HELLO]);
    expect(one.exit?.message).toBe("kernel exited: success");
    expect(two.exit?.message).toBe("kernel exited: success");
  });

  it("refuses a file outside the profile's lesson files, and an unknown kernel, naming what is allowed", async () => {
    for (const name of ["Cargo.toml", "src/main.rs", ".cargo/config.toml"]) {
      const run = await runToEnd(t.engine, kernel({ [name]: "" }));
      expect(run.error?.code, name).toBe("invalid");
      expect(run.error?.message).toMatch(/not a replaceable file \(allowed: src\/hello\.rs, src\/syscall\.rs, src\/scheduler\.rs, src\/tasks\.rs\)/);
      expect(run.events).toHaveLength(1);
    }
    const unknown = await runToEnd(t.engine, { language: "kernel", kernel: "linux" });
    expect(unknown.error).toMatchObject({ code: "invalid", message: expect.stringMatching(/unknown kernel "linux" \(available: osbe\)/) });
  });

  it("builds without access to the host: include_str! of a host file fails to compile", async () => {
    const source = 'pub fn hello() {\n    crate::kprintln!("{}", include_str!("/etc/hostname"));\n}\n';
    const run = await runToEnd(t.engine, kernel({ "src/hello.rs": source }));
    expect(run.exit?.phase).toBe("compile");
    expect(run.diagnostics?.items.find((d) => d.severity === "error")).toMatchObject({ file: "src/hello.rs", line: 2 });
  });

  it("the build and QEMU run as the slot's unprivileged uid: nothing in the run's sandboxes is root", async () => {
    const tasks = original("src/tasks.rs").replace(/pub fn spawn_all\(\) \{/, '$&\n    crate::kprintln!("spinning as a sandbox uid");\n    loop {}');
    const run = start(t.engine, kernel({ "src/tasks.rs": tasks }, { limits: { wallSeconds: 30 } }));
    await run.waitFor((e) => e.type === "compiling");
    // Every process seen in this engine's sandboxes from the build's start until QEMU boots, by name.
    const seen = new Map<string, Set<number>>();
    const look = () => {
      // Not the launcher: root joins the cgroups (sh "sandbox-start") and drops to the slot's uid
      // (setpriv) as it execs bwrap (sandbox/drivers/bwrap.ts); everything the sandbox runs is below it.
      for (const p of processesInSandboxesOf(t.prefix)) {
        if (p.cmdline.includes("sandbox-start") || p.cmdline.startsWith("/usr/bin/setpriv")) continue;
        seen.set(p.name, (seen.get(p.name) ?? new Set()).add(p.uid));
      }
    };
    const deadline = Date.now() + 120_000;
    while (!run.collected.stdout.includes("spinning") && !run.collected.exit && Date.now() < deadline) {
      look();
      await new Promise((r) => setTimeout(r, 10));
    }
    look();
    expect(run.collected.stdout).toContain("spinning as a sandbox uid");
    const names = [...seen.keys()];
    expect(names, "the build's processes").toEqual(expect.arrayContaining(["cargo"]));
    expect(names.some((n) => n.startsWith("qemu-system")), `QEMU among ${names.join(", ")}`).toBe(true);
    for (const [name, uids] of seen) {
      for (const uid of uids) {
        expect(uid, `${name} runs as a slot's uid`).toBeGreaterThanOrEqual(t.uidBase);
        expect(uid, `${name} runs as a slot's uid`).toBeLessThan(t.uidBase + t.concurrency);
      }
    }
    run.handle.kill();
    const done = await run.finished;
    expect(done.exit).toMatchObject({ phase: "run", message: "stopped: killed on request" });
  });

  it("names a failure the kernel reports itself, with its status", async () => {
    // isa-debug-exit turns 0x12 into QEMU's exit status (0x12 << 1) | 1 = 37: neither success (33) nor a panic (35).
    const giveUp = 'pub fn hello() {\n    crate::kprintln!("giving up");\n    crate::x86::outl(0xf4, 0x12);\n}\n';
    const run = await runToEnd(t.engine, kernel({ "src/hello.rs": giveUp }));
    expect(run.stdout).toBe("giving up\n");
    expect(run.exit).toMatchObject({ phase: "run", exitCode: 37, limit: null, message: "kernel reported failure (status 37)" });
  });

  it("a kill while building ends the run; shutdown() ends kernel runs too, leaving nothing behind", async () => {
    const building = start(t.engine, kernel({ "src/hello.rs": hello("never booted") }));
    await building.waitFor((e) => e.type === "compiling");
    building.handle.kill();
    const killed = await building.finished;
    expect(killed.error?.code ?? killed.exit?.message).toMatch(/killed|stopped/);
    expect(killed.events.some((e) => e.type === "running")).toBe(false);

    const own = startTestEngine(245_000, { concurrency: 1 });
    try {
      const tasks = original("src/tasks.rs").replace(/pub fn spawn_all\(\) \{/, "$&\n    loop {}");
      const run = start(own.engine, kernel({ "src/tasks.rs": tasks }));
      await run.waitFor((e) => e.type === "running");
      await own.engine.shutdown();
      const done = await run.finished;
      expect(done.exit?.message ?? done.error?.message).toMatch(/killed|stopped/);
      await own.expectNothingLeft();
    } finally {
      await own.dispose();
    }
  });

  it("runs an external profile (configured as a lecturer would, here over the osbe checkout) through the same code", async () => {
    const external = externalProfile({
      name: "lab-ext",
      description: "an external checkout",
      sourceDir: profile.sourceDir,
      buildCommand: profile.buildCommand,
      imagePath: profile.imagePath,
      editableCrates: ["osbe-kernel"],
      replaceableFiles: [{ path: "src/tasks.rs", lesson: "the tasks" }],
      exitMeanings: { 35: "the kernel panicked" },
      limits: { boot: { wallSeconds: 4 } },
    });
    const own = startTestEngine(246_000, { concurrency: 1, kernels: [external] });
    try {
      expect((await own.engine.health()).kernels).toEqual([
        expect.objectContaining({ name: "lab-ext", available: true, replaceableFiles: [{ path: "src/tasks.rs", lesson: "the tasks" }] }),
      ]);
      const refused = await runToEnd(own.engine, { language: "kernel", kernel: "lab-ext", files: [{ name: "src/hello.rs", content: "" }] });
      expect(refused.error).toMatchObject({ code: "invalid", message: expect.stringMatching(/allowed: src\/tasks\.rs\)/) });
      const tasks = original("src/tasks.rs").replace(/pub fn spawn_all\(\) \{/, '$&\n    crate::kprintln!("external tasks");\n    loop {}');
      const run = await runToEnd(own.engine, { language: "kernel", kernel: "lab-ext", files: [{ name: "src/tasks.rs", content: tasks }] });
      expect(run.stdout).toContain("external tasks");
      // The profile's own boot limit (4 s), not osbe's.
      expect(run.exit).toMatchObject({ limit: "wall", message: "stopped: wall-clock limit of 4 s exceeded — the kernel hung or looped" });
      await own.expectNothingLeft();
    } finally {
      await own.dispose();
    }
  });
});

/** Processes in the cgroups of an engine's sandboxes (names start with its prefix): name, real uid, command line. */
function processesInSandboxesOf(prefix: string): Array<{ name: string; uid: number; cmdline: string }> {
  const found: Array<{ name: string; uid: number; cmdline: string }> = [];
  for (const pid of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!fs.readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(`/${prefix}-`)) continue;
      const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      found.push({ name: /^Name:\s+(.*)$/m.exec(status)?.[1] ?? "?", uid: Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]), cmdline });
    } catch {
      // exited meanwhile
    }
  }
  return found;
}
