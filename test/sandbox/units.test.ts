/**
 * The engine's plain parts, without a sandbox: limits as configuration, the seccomp program's
 * shape, the scheduler's queue, and the diagnostics parsers on recorded compiler output.
 */
import { describe, expect, it } from "vitest";
import { defaultLimits, resolveLimits, runLimitsFor, formatBytes } from "../../sandbox/limits";
import { resolveAdmission } from "../../sandbox/limits";
import { seccompProgram, seccompFilterBytes } from "../../sandbox/seccomp";
import { Scheduler, QueueFullError, CancelledError } from "../../sandbox/scheduler";
import { CToolchain } from "../../sandbox/toolchains/c";
import { RustToolchain } from "../../sandbox/toolchains/rust";
import { ProgramRunRequestSchema } from "../../lib/protocol";

describe("limits", () => {
  it("has the documented defaults", () => {
    expect(defaultLimits.compile).toMatchObject({ memoryMiB: 512, wallSeconds: 10, processes: 64 });
    expect(defaultLimits.run).toMatchObject({ memoryMiB: 256, cpuSeconds: 5, wallSeconds: 10, processes: 64, outputBytes: 1 << 20, fileSizeMiB: 16, workspaceMiB: 64 });
  });

  it("clamps a request's overrides to the maxima, and lets it ask for less", () => {
    const limits = resolveLimits({}, {});
    const run = runLimitsFor(limits, { memoryMiB: 1 << 20, wallSeconds: 2, processes: 100000 });
    expect(run.memoryMiB).toBe(limits.maxima.memoryMiB);
    expect(run.processes).toBe(limits.maxima.processes);
    expect(run.wallSeconds).toBe(2);
    expect(runLimitsFor(limits, { memoryMiB: 32 }).workspaceMiB).toBe(32); // never more disk than memory
  });

  it("takes operator settings from SANDBOX_LIMITS, SANDBOX_CONCURRENCY and SANDBOX_QUEUE", () => {
    const env = { SANDBOX_LIMITS: '{"run":{"memoryMiB":512},"maxima":{"wallSeconds":30}}', SANDBOX_CONCURRENCY: "3", SANDBOX_QUEUE: "5" };
    const limits = resolveLimits(undefined, env);
    expect(limits.run.memoryMiB).toBe(512);
    expect(limits.run.cpuSeconds).toBe(5);
    expect(limits.maxima.wallSeconds).toBe(30);
    expect(resolveAdmission({}, env)).toEqual({ concurrency: 3, queueLength: 5 });
    expect(() => resolveLimits(undefined, { SANDBOX_LIMITS: "{" })).toThrow(/SANDBOX_LIMITS/);
    expect(() => resolveLimits({ run: { memoryMiB: -1 } }, {})).toThrow(/memoryMiB/);
  });

  it("formats sizes for messages", () => {
    expect(formatBytes(256 * 1024 * 1024)).toBe("256 MiB");
    expect(formatBytes(64 * 1024)).toBe("64 KiB");
  });
});

describe("seccomp program", () => {
  it("is well formed: every jump lands inside the program, and it ends by returning", () => {
    const program = seccompProgram();
    program.forEach((ins, i) => {
      if ((ins.code & 0x07) === 0x05) {
        expect(i + 1 + ins.jt).toBeLessThan(program.length);
        expect(i + 1 + ins.jf).toBeLessThan(program.length);
      }
    });
    expect(program.at(-1)).toMatchObject({ code: 0x06, k: 0x7fff0000 });
    expect(program.length).toBeLessThan(4096); // the kernel's BPF_MAXINSNS
    expect(seccompFilterBytes().length).toBe(program.length * 8);
  });
});

describe("scheduler", () => {
  it("admits up to the concurrency, queues FIFO with positions, refuses beyond the queue", async () => {
    const s = new Scheduler(1, 2);
    const positions: number[][] = [[], [], []];
    const a = s.admit((p) => positions[0]!.push(p));
    const b = s.admit((p) => positions[1]!.push(p));
    const c = s.admit((p) => positions[2]!.push(p));
    expect(() => s.admit(() => undefined)).toThrow(QueueFullError);
    expect(await a.slot).toBe(0);
    expect(positions).toEqual([[], [1], [2]]);
    a.release();
    expect(await b.slot).toBe(0);
    expect(positions[2]).toEqual([2, 1]);
    b.release();
    expect(await c.slot).toBe(0);
    c.release();
    expect({ running: s.running, queued: s.queued }).toEqual({ running: 0, queued: 0 });
  });

  it("lets a waiting run leave the queue and moves the others up", async () => {
    const s = new Scheduler(1, 3);
    const a = s.admit(() => undefined);
    const b = s.admit(() => undefined);
    const seen: number[] = [];
    const c = s.admit((p) => seen.push(p));
    b.release();
    await expect(b.slot).rejects.toBeInstanceOf(CancelledError);
    expect(seen).toEqual([2, 1]);
    a.release();
    expect(await c.slot).toBe(0);
    c.release();
    c.release(); // twice is harmless
    expect(s.running).toBe(0);
  });
});

describe("diagnostics parsers", () => {
  it("reads gcc's JSON and rebuilds its text, keeping linker lines without sandbox paths", () => {
    const stderr =
      '[{"kind": "error", "children": [], "locations": [{"caret": {"file": "util.c", "line": 4, "column": 9}, "finish": {"file": "util.c", "line": 4, "column": 11}}], "message": "‘x’ undeclared"}]\n' +
      "/usr/bin/ld: /tmp/ccAbC123.o: in function `main':\nmain.c:(.text+0x5): undefined reference to `f'\ncollect2: error: ld returned 1 exit status\n";
    const parsed = new CToolchain().parseDiagnostics("", stderr);
    expect(parsed.items).toEqual([{ file: "util.c", line: 4, column: 9, endLine: 4, endColumn: 12, severity: "error", message: "‘x’ undeclared" }]);
    expect(parsed.rendered).toContain("util.c:4:9: error: ‘x’ undeclared");
    expect(parsed.rendered).toContain("(object file): in function `main'");
    expect(parsed.rendered).not.toContain("/tmp/");
  });

  it("reads rustc's JSON lines and keeps its rendered text", () => {
    const line = JSON.stringify({
      $message_type: "diagnostic",
      message: "unused variable: `x`",
      code: { code: "unused_variables", explanation: null },
      level: "warning",
      spans: [{ file_name: "m/mod.rs", line_start: 2, line_end: 2, column_start: 9, column_end: 10, is_primary: true }],
      children: [],
      rendered: "warning: unused variable: `x`\n --> m/mod.rs:2:9\n",
    });
    const parsed = new RustToolchain().parseDiagnostics("", `${line}\n`);
    expect(parsed.items).toEqual([{ file: "m/mod.rs", line: 2, column: 9, endLine: 2, endColumn: 10, severity: "warning", code: "unused_variables", message: "unused variable: `x`" }]);
    expect(parsed.rendered).toBe("warning: unused variable: `x`\n --> m/mod.rs:2:9\n");
  });

  it("maps flags to compiler options", () => {
    const c = new CToolchain().compileCommand(ProgramRunRequestSchema.parse({ language: "c", files: [{ name: "main.c", content: "" }, { name: "a.h", content: "" }, { name: "b.c", content: "" }], flags: ["-lm", "-O2"] }));
    expect(c.args.slice(-3)).toEqual(["main.c", "b.c", "-lm"]);
    expect(c.args).toContain("-O2");
    const r = new RustToolchain().compileCommand(ProgramRunRequestSchema.parse({ language: "rust", files: [{ name: "main.rs", content: "" }], flags: ["--release", "--edition=2018"] }));
    expect(r.args).toEqual(expect.arrayContaining(["--edition=2018", "-C", "opt-level=3"]));
  });
});
