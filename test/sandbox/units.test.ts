/**
 * The engine's plain parts, without a sandbox: limits as configuration, the seccomp program's
 * shape, the scheduler's queue, and the diagnostics parsers on recorded compiler output.
 */
import { describe, expect, it } from "vitest";
import { defaultLimits, resolveLimits, runLimitsFor, formatBytes } from "../../sandbox/limits";
import { resolveAdmission } from "../../sandbox/limits";
import { seccompProgram, seccompFilterBytes } from "../../sandbox/seccomp";
import { Scheduler, BusyError, CancelledError, ReplacedError, type AdmitRequest } from "../../sandbox/scheduler";
import { CToolchain } from "../../sandbox/toolchains/c";
import { RustToolchain } from "../../sandbox/toolchains/rust";
import { ProgramRunRequestSchema } from "../../lib/protocol";

describe("limits", () => {
  it("has the documented defaults", () => {
    expect(defaultLimits.compile).toMatchObject({ memoryMiB: 512, wallSeconds: 60, processes: 64 });
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

  it("takes operator settings from SANDBOX_LIMITS, SANDBOX_CONCURRENCY and the admission variables", () => {
    const env = {
      SANDBOX_LIMITS: '{"run":{"memoryMiB":512},"maxima":{"wallSeconds":30}}',
      SANDBOX_CONCURRENCY: "3",
      SANDBOX_MAX_WAIT_SECONDS: "12",
      SANDBOX_QUEUE_MEMORY_MIB: "8",
      SANDBOX_CLIENT_WAITING: "2",
    };
    const limits = resolveLimits(undefined, env);
    expect(limits.run.memoryMiB).toBe(512);
    expect(limits.run.cpuSeconds).toBe(5);
    expect(limits.maxima.wallSeconds).toBe(30);
    expect(resolveAdmission({}, env)).toEqual({ concurrency: 3, maxWaitSeconds: 12, queueMemoryMiB: 8, clientWaiting: 2 });
    expect(resolveAdmission({}, {})).toMatchObject({ maxWaitSeconds: 30, queueMemoryMiB: 64, clientWaiting: 4 });
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
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  /** A run costing `runMs` (nothing to compile unless a key is given), and what it heard while waiting. */
  const req = (extra: Partial<AdmitRequest> = {}): AdmitRequest & { heard: Array<[number, number]> } => {
    const heard: Array<[number, number]> = [];
    return { compileMs: 0, runMs: 1000, bytes: 100, onQueued: (p, w) => heard.push([p, w]), heard, ...extra };
  };

  it("starts runs up to the concurrency; others wait in order and hear their position and estimated wait", async () => {
    const s = new Scheduler({ concurrency: 1, announceMs: 1 });
    const [ra, rb, rc] = [req(), req(), req()];
    const a = s.admit(ra);
    const b = s.admit(rb);
    const c = s.admit(rc);
    expect(await a.slot).toBe(0);
    expect(ra.heard).toEqual([]); // started at once
    expect(rb.heard.map(([p]) => p)).toEqual([1]);
    expect(rc.heard.map(([p]) => p)).toEqual([2]);
    // b waits for a's run (about 1 s), c for a's and b's (about 2 s)
    expect(rb.heard[0]![1]).toBeGreaterThan(900);
    expect(rc.heard[0]![1]).toBeGreaterThan(1900);
    a.release();
    expect(await b.slot).toBe(0);
    await sleep(20);
    expect(rc.heard.map(([p]) => p)).toEqual([2, 1]); // moved up, told so
    b.release();
    expect(await c.slot).toBe(0);
    c.release();
    expect({ running: s.runningCount, queued: s.queued }).toEqual({ running: 0, queued: 0 });
  });

  it("admits by estimated wait, not by count, and refuses beyond the bound with the estimate", async () => {
    const s = new Scheduler({ concurrency: 2, maxWaitMs: 3000 });
    const tickets = Array.from({ length: 8 }, () => s.admit(req())); // 2 run, 6 wait: the last waits about 3 s
    let refusal: unknown;
    try {
      s.admit(req());
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(BusyError);
    expect((refusal as BusyError).estimatedWaitMs).toBeGreaterThan(3000);
    expect((refusal as BusyError).retryAfterSeconds).toBe(4);
    expect((refusal as BusyError).message).toMatch(/estimated 4\.0 s for this one, over the server.s bound of 3\.0 s/);
    // Cheap runs still fit: the bound is about time, not a number of runs.
    const other = new Scheduler({ concurrency: 2, maxWaitMs: 3000 });
    const cheap = Array.from({ length: 100 }, () => other.admit(req({ runMs: 50 })));
    expect(other.queued).toBe(98);
    for (const t of [...tickets, ...cheap]) t.release();
  });

  it("counts a compile once for every waiting run that needs the same one", () => {
    const s = new Scheduler({ concurrency: 2, maxWaitMs: 30_000 });
    const hall = Array.from({ length: 200 }, () => s.admit(req({ compileKey: "slide-3", compileMs: 10_000, runMs: 50 })));
    expect(s.queued).toBe(198); // one compile (10 s) and 200 runs of 50 ms fit in 30 s
    let refused = 0;
    const edits = Array.from({ length: 10 }, (_, i) => {
      try {
        return s.admit(req({ compileKey: `edit-${i}`, compileMs: 10_000, runMs: 50 }));
      } catch (error) {
        expect(error).toBeInstanceOf(BusyError);
        refused++;
        return null;
      }
    });
    expect(refused).toBeGreaterThan(0); // each different edit costs its own compile
    for (const t of [...hall, ...edits]) t?.release();
  });

  it("refuses beyond the memory bound for waiting requests", () => {
    const s = new Scheduler({ concurrency: 1, maxQueueBytes: 64 * 1024 });
    const running = s.admit(req({ runMs: 1 }));
    const waiting = Array.from({ length: 3 }, () => s.admit(req({ runMs: 1, bytes: 16 * 1024 })));
    expect(() => s.admit(req({ runMs: 1, bytes: 16 * 1024 }))).toThrow(/memory is full/);
    for (const t of [running, ...waiting]) t.release();
  });

  it("takes waiting runs round-robin over clients: 50 runs of one client delay another's single run by at most one", async () => {
    const s = new Scheduler({ concurrency: 1, maxWaitMs: 1e9 });
    const started: string[] = [];
    const first = s.admit(req({ client: "script" }));
    const script = Array.from({ length: 50 }, (_, i) => s.admit(req({ client: "script", session: `tab-${i}` })));
    const student = s.admit(req({ client: "student" }));
    const all = [...script.map((t, i) => [t, `script-${i}`] as const), [student, "student"] as const];
    for (const [t, name] of all) void t.slot.then(() => started.push(name), () => undefined);
    first.release();
    for (let i = 0; i < 5; i++) {
      await sleep(0);
      const next = all.find(([, name]) => name === started.at(-1));
      next?.[0].release();
    }
    await sleep(0);
    expect(started.indexOf("student")).toBeLessThanOrEqual(1);
    for (const [t] of all) t.release();
  });

  it("a client's identical waiting run is replaced in place; beyond a few waiting, its oldest is replaced", async () => {
    const s = new Scheduler({ concurrency: 1, maxWaitingPerSession: 2, announceMs: 1 });
    const running = s.admit(req({ client: "x" }));
    const other = s.admit(req({ client: "y", identity: "same" }));
    const old = s.admit(req({ client: "x", session: "tab", identity: "same" }));
    const again = req({ client: "x", session: "tab", identity: "same" });
    const newer = s.admit(again);
    await expect(old.slot).rejects.toBeInstanceOf(ReplacedError);
    expect(again.heard[0]![0]).toBe(2); // the old one's place, after client y's run
    expect(s.queued).toBe(2);
    const edit1 = s.admit(req({ client: "x", session: "tab", identity: "e1" }));
    const edit2 = s.admit(req({ client: "x", session: "tab", identity: "e2" })); // third waiting: the oldest goes
    await expect(newer.slot).rejects.toThrow(/newer runs/);
    expect(s.queued).toBe(3);
    for (const t of [running, other, edit1, edit2]) t.release();
  });

  it("runs background work only when no user waits, and never on every slot", async () => {
    const s = new Scheduler({ concurrency: 2 });
    const granted: string[] = [];
    const user1 = s.admit(req());
    const user2 = s.admit(req());
    const bg = s.admit(req({ background: true }));
    const bg2 = s.admit(req({ background: true }));
    const user3 = s.admit(req());
    for (const [t, n] of [[bg, "bg"], [bg2, "bg2"], [user3, "user3"]] as const) void t.slot.then(() => granted.push(n), () => undefined);
    user1.release();
    await sleep(0);
    expect(granted).toEqual(["user3"]);
    user2.release();
    await sleep(0);
    expect(granted).toEqual(["user3", "bg"]); // one slot for background work, the other stays free for users
    expect(s.queued).toBe(0);
    for (const t of [user3, bg, bg2]) t.release();
  });

  it("lets a waiting run leave the queue and moves the others up", async () => {
    const s = new Scheduler({ concurrency: 1, announceMs: 1 });
    const a = s.admit(req());
    const b = s.admit(req());
    const rc = req();
    const c = s.admit(rc);
    b.release();
    await expect(b.slot).rejects.toBeInstanceOf(CancelledError);
    await sleep(20);
    expect(rc.heard.map(([p]) => p)).toEqual([2, 1]);
    a.release();
    expect(await c.slot).toBe(0);
    c.release();
    c.release(); // twice is harmless
    expect(s.runningCount).toBe(0);
  });
});

describe("diagnostics parsers", () => {
  it("reads gcc's JSON and rebuilds its text, keeping linker lines without sandbox paths", () => {
    const stderr =
      '[{"kind": "error", "children": [], "locations": [{"caret": {"file": "util.c", "line": 4, "column": 9}, "finish": {"file": "util.c", "line": 4, "column": 11}}], "message": "‘x’ undeclared"}]\n' +
      "/usr/bin/ld: /tmp/ccAbC123.o: in function `main':\nmain.c:(.text+0x5): undefined reference to `f'\ncollect2: error: ld returned 1 exit status\n";
    const parsed = new CToolchain().parseDiagnostics("", stderr);
    expect(parsed.items).toEqual([
      { file: "util.c", line: 4, column: 9, endLine: 4, endColumn: 12, severity: "error", message: "‘x’ undeclared" },
      // the linker's line is an item too (no line without debug information)
      { file: "main.c", line: 0, column: 0, severity: "error", message: "undefined reference to `f'", code: "ld" },
    ]);
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
