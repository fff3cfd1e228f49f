/**
 * The engine's ordinary work, against the real sandbox and real compilers: C and Rust, several
 * files, stdin, args, diagnostics, the compile cache, kill() and shutdown().
 * After every test, nothing of its runs may remain.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestEngine, start, runToEnd, c, rust, type TestEngine } from "./helpers";

let t: TestEngine;
beforeAll(async () => {
  t = startTestEngine(230_000, { statsIntervalMs: 300 });
  const health = await t.engine.health();
  expect(health.ready, JSON.stringify(health)).toBe(true);
});
afterEach(async () => await t.expectNothingLeft());
afterAll(async () => {
  await t.dispose();
});

const HELLO_C = `#include <stdio.h>\nint main(void) { puts("Hello, world!"); return 0; }\n`;
const HELLO_RUST = `fn main() { println!("Hello, world!"); }\n`;

describe("health", () => {
  it("names the driver and the toolchains with their versions", async () => {
    const health = await t.engine.health();
    expect(health.driver).toBe("bwrap");
    const byLanguage = Object.fromEntries(health.toolchains.map((tc) => [tc.language, tc]));
    expect(byLanguage.c).toMatchObject({ name: "gcc", available: true });
    expect(byLanguage.c!.version).toMatch(/^\d+\.\d+/);
    expect(byLanguage.rust).toMatchObject({ name: "rustc", available: true });
    expect(byLanguage.rust!.version).toMatch(/^1\.\d+\.\d+/);
    expect(health.maxConcurrent).toBe(2);
  });
});

describe("C", () => {
  it("compiles and runs hello world, events in protocol order", async () => {
    const run = await runToEnd(t.engine, c(HELLO_C));
    expect(run.stdout).toBe("Hello, world!\n");
    expect(run.events.map((e) => e.type).filter((x) => x !== "stats")).toEqual(["compiling", "compiled", "running", "stdout", "exit"]);
    expect(run.events[0]).toMatchObject({ type: "compiling", toolchain: { name: "gcc" } });
    expect(run.compiled).toMatchObject({ ok: true, exitCode: 0, cached: false, limit: null });
    expect(run.exit).toMatchObject({ phase: "run", exitCode: 0, signal: null, limit: null, message: "exited with code 0" });
    expect(run.exit!.peakMemoryBytes).toBeGreaterThan(0);
  });

  it("compiles several .c files together with a header, and passes args", async () => {
    const run = await runToEnd(t.engine, {
      language: "c",
      files: [
        { name: "main.c", content: `#include <stdio.h>\n#include "lib/util.h"\nint main(int argc, char **argv) {\n  for (int i = 1; i < argc; i++) printf("%d:%s ", i, argv[i]);\n  printf("sum=%d\\n", add(2, 3));\n  return 0;\n}\n` },
        { name: "lib/util.h", content: "int add(int a, int b);\n" },
        { name: "util.c", content: `#include "lib/util.h"\nint add(int a, int b) { return a + b; }\n` },
      ],
      flags: ["-O2", "-Wall", "-std=c11", "-lm"],
      args: ["one", "two words", "-x"],
    });
    expect(run.stdout).toBe("1:one 2:two words 3:-x sum=5\n");
    expect(run.exit?.exitCode).toBe(0);
  });

  it("reports errors and warnings with the user's file, line and column", async () => {
    const run = await runToEnd(t.engine, {
      language: "c",
      files: [
        { name: "main.c", content: `int helper(void);\nint main(void) {\n  int unused;\n  return helper();\n}\n` },
        { name: "helper.c", content: `int helper(void) {\n  return missing_variable;\n}\n` },
      ],
      flags: ["-Wall"],
    });
    expect(run.compiled).toMatchObject({ ok: false, cached: false });
    expect(run.exit).toMatchObject({ phase: "compile", message: "compilation failed: 1 error" });
    const items = run.diagnostics!.items;
    expect(items).toContainEqual(expect.objectContaining({ file: "helper.c", line: 2, column: 10, severity: "error" }));
    expect(items.find((d) => d.file === "helper.c")!.message).toContain("missing_variable");
    expect(items).toContainEqual(expect.objectContaining({ file: "main.c", line: 3, column: 7, severity: "warning", code: "-Wunused-variable" }));
    expect(run.diagnostics!.rendered).toContain("helper.c:2:10: error:");
    expect(run.diagnostics!.rendered).not.toMatch(/\/work\/|\/tmp\/|\/out\//);
    expect(run.events.some((e) => e.type === "running")).toBe(false);
  });

  it("reports linker errors without sandbox paths", async () => {
    const run = await runToEnd(t.engine, c(`int nowhere(void);\nint main(void) { return nowhere(); }\n`));
    expect(run.compiled?.ok).toBe(false);
    expect(run.diagnostics!.rendered).toContain("undefined reference to `nowhere'");
    expect(JSON.stringify(run.events)).not.toMatch(/\/tmp\/cc|\/out\/main|\/work\//);
  });

  it("tells a program's own exit code from a signal", async () => {
    const exited = await runToEnd(t.engine, c(`int main(void) { return 137; }`));
    expect(exited.exit).toMatchObject({ exitCode: 137, signal: null, limit: null, message: "exited with code 137" });
    const crashed = await runToEnd(t.engine, c(`int main(void) { volatile int *p = 0; return *p; }`));
    expect(crashed.exit).toMatchObject({ exitCode: null, signal: "SIGSEGV", limit: null });
    expect(crashed.exit!.message).toBe("killed by signal SIGSEGV (segmentation fault)");
  });
});

describe("Rust", () => {
  it("compiles and runs hello world with rustc from /usr", async () => {
    const run = await runToEnd(t.engine, rust(HELLO_RUST));
    expect(run.events[0]).toMatchObject({ type: "compiling", toolchain: { name: "rustc" } });
    expect(run.stdout).toBe("Hello, world!\n");
    expect(run.exit).toMatchObject({ phase: "run", exitCode: 0, message: "exited with code 0" });
  });

  it("finds modules in subfolders, with main.rs as the crate root", async () => {
    const run = await runToEnd(t.engine, {
      language: "rust",
      files: [
        { name: "main.rs", content: `mod shapes;\nmod util;\nfn main() { println!("{} {}", shapes::circle::area(1.0) > 3.0, util::twice(21)); }\n` },
        { name: "shapes/mod.rs", content: `pub mod circle;\n` },
        { name: "shapes/circle.rs", content: `pub fn area(r: f64) -> f64 { std::f64::consts::PI * r * r }\n` },
        { name: "util.rs", content: `pub fn twice(x: i32) -> i32 { x * 2 }\n` },
      ],
    });
    expect(run.stdout).toBe("true 42\n");
  });

  it("reports diagnostics with file, line, code and rustc's own text", async () => {
    const run = await runToEnd(t.engine, {
      language: "rust",
      files: [
        { name: "main.rs", content: `mod m;\nfn main() {\n    m::f();\n}\n` },
        { name: "m/mod.rs", content: `pub fn f() {\n    let x: i32 = "text";\n}\n` },
      ],
    });
    expect(run.compiled?.ok).toBe(false);
    const error = run.diagnostics!.items.find((d) => d.severity === "error")!;
    expect(error).toMatchObject({ file: "m/mod.rs", line: 2, column: 18, endLine: 2, code: "E0308", message: "mismatched types" });
    expect(run.diagnostics!.rendered).toContain("--> m/mod.rs:2:18");
    expect(run.exit).toMatchObject({ phase: "compile", message: "compilation failed: 1 error" });
  });

  it("reports a panic with Rust's exit code 101 and its message on stderr; threads work", async () => {
    const run = await runToEnd(
      t.engine,
      rust(`fn main() {\n    let h: Vec<_> = (0..4).map(|i| std::thread::spawn(move || i * 2)).collect();\n    let sum: i32 = h.into_iter().map(|h| h.join().unwrap()).sum();\n    println!("sum {sum}");\n    let v: Vec<i32> = Vec::new();\n    println!("{}", v[sum as usize]);\n}\n`),
    );
    expect(run.stdout).toBe("sum 12\n");
    expect(run.stderr).toContain("index out of bounds");
    expect(run.exit).toMatchObject({ exitCode: 101, message: "exited with code 101" });
  });

  it("maps --release and --edition to rustc options", async () => {
    const code = `fn main() { println!("debug_assertions={}", cfg!(debug_assertions)); }\n`;
    expect((await runToEnd(t.engine, rust(code))).stdout).toBe("debug_assertions=true\n");
    expect((await runToEnd(t.engine, rust(code, { flags: ["--release"] }))).stdout).toBe("debug_assertions=false\n");
    // `async` is an ordinary identifier only in the 2015 edition.
    const old = `fn main() { let async = 1; println!("{}", async); }\n`;
    expect((await runToEnd(t.engine, rust(old, { flags: ["--edition=2015"] }))).stdout).toBe("1\n");
    expect((await runToEnd(t.engine, rust(old, { flags: ["--edition=2021"] }))).compiled?.ok).toBe(false);
  });
});

describe("stdin", () => {
  const ECHO = `#include <stdio.h>\n#include <ctype.h>\nint main(void) {\n  char line[256];\n  while (fgets(line, sizeof line, stdin)) {\n    for (char *p = line; *p; p++) *p = toupper((unsigned char)*p);\n    fputs(line, stdout); fflush(stdout);\n  }\n  puts("EOF");\n  return 0;\n}\n`;

  it("is interactive: each line comes back before the next is sent", async () => {
    const run = start(t.engine, c(ECHO));
    await run.waitFor((e) => e.type === "running");
    run.handle.writeStdin("hello\n");
    await run.waitFor((e) => e.type === "stdout" && run.collected.stdout.includes("HELLO\n"));
    run.handle.writeStdin("again\n");
    await run.waitFor(() => run.collected.stdout.includes("AGAIN\n"));
    run.handle.closeStdin();
    const done = await run.finished;
    expect(done.stdout).toBe("HELLO\nAGAIN\nEOF\n");
    expect(done.exit?.exitCode).toBe(0);
  });

  it("shows a prompt without a newline before the program waits for input, as a terminal would", async () => {
    const prompt = `#include <stdio.h>\nint main(void) {\n  char name[64];\n  printf("Your name? ");\n  if (!fgets(name, sizeof name, stdin)) return 1;\n  printf("Hello, %s", name);\n  for (int i = 0; i < 2; i++) printf("line %d\\n", i);\n  return 0;\n}\n`;
    const run = start(t.engine, c(prompt));
    await run.waitFor(() => run.collected.stdout === "Your name? ");
    run.handle.writeStdin("Ada\n");
    const done = await run.finished;
    expect(done.stdout).toBe("Your name? Hello, Ada\nline 0\nline 1\n");
  });

  it("can be given with the request, then ends", async () => {
    const run = await runToEnd(t.engine, c(ECHO, { stdin: "a\nb\n" }));
    expect(run.stdout).toBe("A\nB\nEOF\n");
  });
});

describe("compile cache", () => {
  it("skips the compile on a repeated request but still runs the program afresh", async () => {
    const code = `#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf("pid=%d\\n", getpid()); FILE *f = fopen("mark", "wx"); printf("fresh=%d\\n", f != 0); return 0; }\n`;
    const first = await runToEnd(t.engine, c(code, { flags: ["-O1"] }));
    expect(first.compiled).toMatchObject({ ok: true, cached: false });
    expect(first.stdout).toContain("fresh=1");
    const second = await runToEnd(t.engine, c(code, { flags: ["-O1"] }));
    expect(second.compiled).toMatchObject({ ok: true, cached: true });
    expect(second.events.map((e) => e.type)).toContain("running");
    expect(second.stdout).toContain("fresh=1"); // a new workspace: the first run's file is gone
    const otherFlags = await runToEnd(t.engine, c(code, { flags: ["-O2"] }));
    expect(otherFlags.compiled?.cached).toBe(false);
  });

  it("serves the same example run by several students at the same moment", async () => {
    const code = `#include <stdio.h>\nint main(void) { puts("together ${Date.now()}"); return 0; }\n`;
    const runs = await Promise.all([1, 2, 3, 4].map(() => runToEnd(t.engine, c(code))));
    for (const run of runs) {
      expect(run.events.find((e) => e.type === "error")).toBeUndefined();
      expect(run.exit).toMatchObject({ exitCode: 0 });
      expect(run.stdout).toMatch(/^together \d+\n$/);
    }
  });

  it("single-flight: identical compiles under way share one compiler run, its diagnostics and its outcome", async () => {
    const broken = `int main(void) { return undefined_${Date.now()}; }\n`;
    const failing = await Promise.all([1, 2, 3, 4, 5].map(() => runToEnd(t.engine, c(broken))));
    expect(failing.filter((r) => r.compiled?.cached === false), "compiler runs").toHaveLength(1);
    for (const run of failing) {
      expect(run.exit).toMatchObject({ phase: "compile" });
      expect(run.exit!.message).toBe("compilation failed: 1 error");
      expect(run.diagnostics?.items[0]).toMatchObject({ file: "main.c", line: 1, severity: "error" });
    }
    const good = `#include <stdio.h>\nint main(void) { puts("shared ${Date.now()}"); return 0; }\n`;
    const passing = await Promise.all([1, 2, 3, 4, 5].map(() => runToEnd(t.engine, c(good))));
    expect(passing.filter((r) => r.compiled?.cached === false), "compiler runs").toHaveLength(1);
    for (const run of passing) expect(run.stdout).toMatch(/^shared \d+\n$/);
  });

  it("shows a cached compile's warnings again", async () => {
    const code = `int main(void) { int unused; return 0; }\n`;
    await runToEnd(t.engine, c(code, { flags: ["-Wall"] }));
    const again = await runToEnd(t.engine, c(code, { flags: ["-Wall"] }));
    expect(again.compiled?.cached).toBe(true);
    expect(again.diagnostics?.items[0]).toMatchObject({ file: "main.c", line: 1, severity: "warning" });
  });
});

describe("stopping", () => {
  const SLOW = `#include <stdio.h>\n#include <unistd.h>\nint main(void) { for (int i = 0; ; i++) { printf("tick %d\\n", i); fflush(stdout); usleep(100000); } }\n`;

  it("sends stats while the program runs", async () => {
    const run = await runToEnd(t.engine, c(`#include <unistd.h>\nint main(void){ usleep(1200000); return 0; }`));
    const stats = run.events.filter((e) => e.type === "stats");
    expect(stats.length).toBeGreaterThanOrEqual(2);
    expect(stats[0]).toMatchObject({ type: "stats" });
    expect((stats.at(-1) as { memoryBytes: number }).memoryBytes).toBeGreaterThan(0);
  });

  it("kill() mid-run stops the program and cleans up", async () => {
    const run = start(t.engine, c(SLOW));
    await run.waitFor((e) => e.type === "stdout" && e.data.includes("tick 2"));
    run.handle.kill();
    const done = await run.finished;
    expect(done.exit).toMatchObject({ phase: "run", signal: "SIGKILL", limit: null, message: "stopped: killed on request" });
  });

  it("kill() during the compile ends the run with a 'killed' error", async () => {
    const run = start(t.engine, rust(`fn main() { println!("{}", ${"1 + ".repeat(200)}1); }`));
    await run.waitFor((e) => e.type === "compiling");
    run.handle.kill();
    const done = await run.finished;
    expect(done.error).toMatchObject({ code: "killed" });
    expect(done.events.some((e) => e.type === "running")).toBe(false);
  });

  it("shutdown() kills every run, queued ones too, and refuses new ones", async () => {
    const own = startTestEngine(235_000, { concurrency: 1 });
    try {
      const runs = [start(own.engine, c(SLOW)), start(own.engine, c(SLOW)), start(own.engine, c(SLOW))];
      await runs[0]!.waitFor((e) => e.type === "stdout");
      await own.engine.shutdown();
      const done = await Promise.all(runs.map((r) => r.finished));
      expect(done[0]!.exit?.message).toBe("stopped: killed on request");
      for (const d of done.slice(1)) expect(d.error?.code).toBe("killed");
      await own.expectNothingLeft();
      const refused = await runToEnd(own.engine, c(HELLO_C));
      expect(refused.error?.code).toBe("busy");
    } finally {
      await own.dispose();
    }
  });
});
