/**
 * The languages beyond plain C and Rust, against the real sandbox and the real toolchains: NASM alone
 * and mixed with C, GNU as mixed with C, C++ with g++, Rust with the prebuilt crates (nix, rand, …).
 * Each error must land on its file and line. After every test, nothing of its runs may remain.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ProgramRunRequestSchema, describeZodError } from "../../lib/protocol";
import { compileReport, runToEnd, type TestEngine, startTestEngine } from "./helpers";

let t: TestEngine;
beforeAll(async () => {
  t = startTestEngine(263_000);
  const health = await t.engine.health();
  expect(health.ready, JSON.stringify(health)).toBe(true);
}, 120_000);
afterEach(async () => await t.expectNothingLeft());
afterAll(async () => {
  await t.dispose();
});

// Sandbox runs on a loaded machine: generous per-test time.
const T = 120_000;

const MAIN_CALLS_MAXIMUM = `#include <stdio.h>
long maximum(long a, long b);
int main(void) {
    printf("maximum(3, 7) = %ld\\n", maximum(3, 7));
    printf("maximum(-2, -9) = %ld\\n", maximum(-2, -9));
    return 0;
}
`;
const MAXIMUM_NASM = `; long maximum(long a, long b): a in rdi, b in rsi, result in rax
global maximum
section .text
maximum:
    mov rax, rdi
    cmp rax, rsi
    cmovl rax, rsi
    ret
`;

describe("health", () => {
  it("lists the new toolchains and the prebuilt Rust crates", async () => {
    const health = await t.engine.health();
    const byLanguage = Object.fromEntries(health.toolchains.map((tc) => [tc.language, tc]));
    expect(byLanguage.asm).toMatchObject({ name: "nasm", available: true });
    expect(byLanguage.asm!.version).toMatch(/^2\.\d+.*\(gcc \d+/);
    expect(byLanguage.cpp).toMatchObject({ name: "g++", available: true });
    expect(health.rustCratesProblem).toBeUndefined();
    const crates = health.rustCrates.map((c) => c.name);
    expect(crates).toEqual(expect.arrayContaining(["libc", "nix", "rand", "crossbeam", "rayon", "serde", "serde_json", "regex", "anyhow"]));
    for (const c of health.rustCrates) expect(c.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe("prepared sandboxes", () => {
  it("keep a Rust compile sandbox (with the crates bound) waiting per slot, beside the compile and run ones", async () => {
    // compile, run and Rust compile, two of each (the bwrap pool's depth), for each of the 2 slots
    await expect.poll(async () => (await t.engine.health()).preparedSandboxes, { timeout: 60_000, interval: 250 }).toBe(12);
  }, T);
});

describe("NASM", () => {
  it("runs a _start program on its own (system calls only, no C library)", async () => {
    const run = await runToEnd(t.engine, {
      language: "asm",
      flags: ["-felf64", "-g"],
      files: [
        {
          name: "main.asm",
          content: `global _start
section .data
msg: db "Hello from _start", 10
len: equ $ - msg
section .text
_start:
    mov rax, 1          ; write(1, msg, len)
    mov rdi, 1
    mov rsi, msg
    mov rdx, len
    syscall
    mov rax, 60         ; exit(3)
    mov rdi, 3
    syscall
`,
        },
      ],
    });
    expect(run.events[0]).toMatchObject({ type: "compiling", toolchain: { name: "nasm" } });
    expect(run.stdout).toBe("Hello from _start\n");
    expect(run.exit).toMatchObject({ phase: "run", exitCode: 3 });
  }, T);

  it("runs a main that calls printf from the C library", async () => {
    const run = await runToEnd(t.engine, {
      language: "asm",
      files: [
        {
          name: "main.asm",
          content: `extern printf
global main
section .data
fmt: db "%s has %d bits", 10, 0
arch: db "x86-64", 0
section .text
main:
    sub rsp, 8          ; align the stack to 16 for the call
    mov rdi, fmt
    mov rsi, arch
    mov edx, 64
    xor eax, eax        ; no vector registers used by the variadic call
    call printf
    add rsp, 8
    xor eax, eax
    ret
`,
        },
      ],
    });
    expect(run.stdout).toBe("x86-64 has 64 bits\n");
    expect(run.exit?.exitCode).toBe(0);
  }, T);

  it("is assembled and linked with the C files of a C run", async () => {
    const run = await runToEnd(t.engine, {
      language: "c",
      flags: ["-Wall", "-O2", "-g"],
      files: [
        { name: "main.c", content: MAIN_CALLS_MAXIMUM },
        { name: "maximum.asm", content: MAXIMUM_NASM },
      ],
    });
    expect(run.compiled, compileReport(run)).toMatchObject({ ok: true });
    expect(run.stdout).toBe("maximum(3, 7) = 7\nmaximum(-2, -9) = -2\n");
    expect(run.exit?.exitCode).toBe(0);
  }, T);

  it("reports a syntax error on its line in the .asm file, and every file's errors at once", async () => {
    const run = await runToEnd(t.engine, {
      language: "c",
      files: [
        { name: "main.c", content: MAIN_CALLS_MAXIMUM },
        { name: "maximum.asm", content: MAXIMUM_NASM.replace("    cmovl rax, rsi\n", "    cmovl rax, rsi\n    movv rax, 1\n") },
        { name: "helper.asm", content: "section .text\n    add rax,\n" },
      ],
    });
    expect(run.exit).toMatchObject({ phase: "compile" });
    expect(run.compiled?.ok).toBe(false);
    const errors = run.diagnostics!.items.filter((d) => d.severity === "error");
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ file: "maximum.asm", line: 8, message: expect.stringContaining("instruction expected") }),
        expect.objectContaining({ file: "helper.asm", line: 2 }),
      ]),
    );
    expect(run.diagnostics!.rendered).toContain("maximum.asm:8: error:");
    expect(run.diagnostics!.rendered).not.toMatch(/\/tmp\/|\/work\//);
  }, T);

  it("reports an undefined symbol as a linker error on the C line that calls it", async () => {
    const run = await runToEnd(t.engine, {
      language: "c",
      flags: ["-g"],
      files: [
        { name: "main.c", content: MAIN_CALLS_MAXIMUM },
        { name: "maximum.asm", content: MAXIMUM_NASM.replace(/maximum/g, "maximun") },
      ],
    });
    expect(run.exit).toMatchObject({ phase: "compile" });
    expect(run.diagnostics!.items).toEqual(
      expect.arrayContaining([expect.objectContaining({ file: "main.c", line: 4, severity: "error", message: "undefined reference to `maximum'" })]),
    );
    expect(run.diagnostics!.rendered).not.toMatch(/\/tmp\/|\/work\//);
  }, T);

  it("finds %include files beside the source", async () => {
    const run = await runToEnd(t.engine, {
      language: "asm",
      files: [
        { name: "main.asm", content: `%include "sys.inc"\nglobal _start\nsection .text\n_start:\n    EXIT 7\n` },
        { name: "sys.inc", content: `%macro EXIT 1\n    mov rax, 60\n    mov rdi, %1\n    syscall\n%endmacro\n` },
      ],
    });
    expect(run.exit, JSON.stringify(run.diagnostics)).toMatchObject({ phase: "run", exitCode: 7 });
  }, T);
});

describe("GNU as", () => {
  it("links .s and preprocessed .S files with C", async () => {
    const run = await runToEnd(t.engine, {
      language: "c",
      files: [
        { name: "main.c", content: `#include <stdio.h>\nlong seven(void);\nlong twice(long);\nint main(void) { printf("%ld %ld\\n", seven(), twice(21)); return 0; }\n` },
        { name: "seven.s", content: `    .globl seven\n    .text\nseven:\n    movq $7, %rax\n    ret` }, // no final newline: no warning either
        { name: "twice.S", content: `#define SHIFT 1\n    .globl twice\n    .text\ntwice:\n    movq %rdi, %rax\n    shlq $SHIFT, %rax\n    ret\n` },
      ],
    });
    expect(run.compiled, compileReport(run)).toMatchObject({ ok: true });
    expect(run.stdout).toBe("7 42\n");
    expect(run.diagnostics).toBeUndefined();
  }, T);

  it("reports an assembler error with file and line", async () => {
    const run = await runToEnd(t.engine, {
      language: "c",
      files: [
        { name: "main.c", content: `long seven(void);\nint main(void) { return (int)seven(); }\n` },
        { name: "seven.s", content: `    .globl seven\nseven:\n    movx $7, %rax\n    ret\n` },
      ],
    });
    expect(run.exit).toMatchObject({ phase: "compile" });
    expect(run.diagnostics!.items).toEqual([expect.objectContaining({ file: "seven.s", line: 3, severity: "error", message: expect.stringContaining("no such instruction") })]);
  }, T);
});

describe("C++", () => {
  it("compiles with g++ and the chosen standard", async () => {
    const run = await runToEnd(t.engine, {
      language: "cpp",
      flags: ["-std=c++20", "-O2", "-Wall", "-pthread"],
      files: [
        {
          name: "main.cpp",
          content: `#include <iostream>\n#include <numeric>\n#include <thread>\n#include <vector>\nint main() {\n    std::vector<int> v(10);\n    std::iota(v.begin(), v.end(), 1);\n    int sum = 0;\n    std::thread t([&] { sum = std::accumulate(v.begin(), v.end(), 0); });\n    t.join();\n    std::cout << "sum " << sum << " c++" << __cplusplus / 100 % 100 << std::endl;\n}\n`,
        },
      ],
    });
    expect(run.events[0]).toMatchObject({ type: "compiling", toolchain: { name: "g++" } });
    expect(run.stdout).toBe("sum 55 c++20\n");
  }, T);

  it("reports a template error on its line as JSON diagnostics", async () => {
    const run = await runToEnd(t.engine, {
      language: "cpp",
      files: [
        {
          name: "main.cpp",
          content: `#include <string>\n\ntemplate <typename T>\nT twice(T x) {\n    return x * 2;\n}\n\nint main() {\n    std::string s = "ab";\n    twice(s);\n}\n`,
        },
      ],
    });
    expect(run.exit).toMatchObject({ phase: "compile", message: "compilation failed: 1 error" });
    const [error] = run.diagnostics!.items.filter((d) => d.severity === "error");
    expect(error).toMatchObject({ file: "main.cpp", line: 5, severity: "error", message: expect.stringContaining("operator*") });
    expect(run.diagnostics!.rendered).toContain("main.cpp:5:");
  }, T);

  it("refuses flags outside the allow-list", () => {
    const bad = ProgramRunRequestSchema.safeParse({ language: "cpp", files: [{ name: "main.cpp", content: "" }], flags: ["-std=c++20", "-fplugin=x.so"] });
    expect(bad.success).toBe(false);
    expect(describeZodError(bad.error!)).toContain("flag not allowed for cpp: -fplugin=x.so");
    const asm = ProgramRunRequestSchema.safeParse({ language: "asm", files: [{ name: "main.asm", content: "" }], flags: ["-felf32"] });
    expect(describeZodError(asm.error!)).toContain("flag not allowed for asm: -felf32");
  });
});

describe("Rust with crates", () => {
  it("forks with nix and rolls dice with rand, offline, compiling no crate", async () => {
    const run = await runToEnd(t.engine, {
      language: "rust",
      files: [
        {
          name: "main.rs",
          content: `use nix::sys::wait::waitpid;
use nix::unistd::{fork, getpid, ForkResult};
use rand::Rng;

fn main() {
    let die: u8 = rand::thread_rng().gen_range(1..=6);
    assert!((1..=6).contains(&die));
    match unsafe { fork() }.expect("fork") {
        ForkResult::Parent { child } => {
            let status = waitpid(child, None).expect("waitpid");
            println!("parent: child {} ended: {:?}", child, matches!(status, nix::sys::wait::WaitStatus::Exited(_, 0)));
        }
        ForkResult::Child => {
            println!("child: my pid is {}", getpid());
        }
    }
}
`,
        },
      ],
    });
    expect(run.compiled, compileReport(run)).toMatchObject({ ok: true });
    expect(run.stdout).toMatch(/^child: my pid is \d+\nparent: child \d+ ended: true\n$/);
  }, T);

  it("uses serde_json, regex, crossbeam, rayon and anyhow", async () => {
    const run = await runToEnd(t.engine, {
      language: "rust",
      files: [
        {
          name: "main.rs",
          content: `use serde::Serialize;

#[derive(Serialize)]
struct Point { x: i32, y: i32 }

fn main() -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(&Point { x: 1, y: 2 })?);
    let re = regex::Regex::new(r"(\\d+)-(\\d+)")?;
    println!("{}", &re.captures("pid 12-34").unwrap()[2]);
    let (tx, rx) = crossbeam::channel::bounded(1);
    crossbeam::scope(|s| { s.spawn(|_| tx.send(5).unwrap()); }).unwrap();
    println!("{}", rx.recv()?);
    let (a, b) = rayon::join(|| (1..=50u64).sum::<u64>(), || (51..=100u64).sum::<u64>());
    println!("{}", a + b);
    Ok(())
}
`,
        },
      ],
    });
    expect(run.compiled, compileReport(run)).toMatchObject({ ok: true });
    expect(run.stdout).toBe('{"x":1,"y":2}\n34\n5\n5050\n');
  }, T);

  it("answers a crate outside the curated set with an error naming the allowed crates", async () => {
    const run = await runToEnd(t.engine, {
      language: "rust",
      files: [{ name: "main.rs", content: `use tokio::runtime::Runtime;\n\nfn main() {\n    let _ = Runtime::new();\n}\n` }],
    });
    expect(run.exit).toMatchObject({ phase: "compile" });
    const items = run.diagnostics!.items;
    expect(items).toEqual(expect.arrayContaining([expect.objectContaining({ file: "main.rs", line: 1, severity: "error" })]));
    const help = items.find((d) => d.severity === "help");
    expect(help?.message).toContain("`tokio`");
    for (const name of ["libc", "nix", "rand", "crossbeam"]) expect(help?.message).toContain(name);
    expect(run.diagnostics!.rendered).toContain("the crates available here are");
  }, T);
});
