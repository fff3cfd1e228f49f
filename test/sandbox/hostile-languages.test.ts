/**
 * The sandbox's guarantees for assembly, C++ and Rust with crates: the hostile cases of
 * hostile.test.ts that apply (fork bomb, memory bomb, spin, sockets, host files, output flood),
 * written in those languages, against the real sandbox. Nothing may remain after each test.
 */
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ProgramRunRequestInput } from "../../lib/protocol";
import { compileReport, runToEnd, startTestEngine, type TestEngine } from "./helpers";

let t: TestEngine;
beforeAll(async () => {
  t = startTestEngine(264_000, { concurrency: 2 });
  const health = await t.engine.health();
  expect(health.ready, JSON.stringify(health)).toBe(true);
  expect(health.rustCratesProblem).toBeUndefined();
}, 120_000);
afterEach(async () => await t.expectNothingLeft());
afterAll(async () => {
  await t.dispose();
});

const T = 120_000;
type Extra = Partial<ProgramRunRequestInput>;
const asm = (code: string, extra: Extra = {}): ProgramRunRequestInput => ({ language: "asm", files: [{ name: "main.asm", content: code }], ...extra });
const cpp = (code: string, extra: Extra = {}): ProgramRunRequestInput => ({ language: "cpp", files: [{ name: "main.cpp", content: code }], ...extra });
const rust = (code: string, extra: Extra = {}): ProgramRunRequestInput => ({ language: "rust", files: [{ name: "main.rs", content: code }], ...extra });

describe("resource exhaustion", () => {
  it("fork bombs in NASM and in Rust with nix stop at the process limit", async () => {
    const limits = { processes: 32, cpuSeconds: 2, wallSeconds: 5 };
    const inAsm = await runToEnd(t.engine, asm(`global _start\nsection .text\n_start:\n    mov eax, 57     ; fork\n    syscall\n    jmp _start\n`, { limits }));
    expect(inAsm.exit).toMatchObject({ phase: "run", limit: "processes" });
    const inRust = await runToEnd(t.engine, rust(`fn main() {\n    loop {\n        let _ = unsafe { nix::unistd::fork() };\n    }\n}\n`, { limits }));
    expect(inRust.compiled, compileReport(inRust)).toMatchObject({ ok: true });
    expect(inRust.exit).toMatchObject({ phase: "run", limit: "processes" });
    expect(inRust.exit!.message).toMatch(/^stopped: process limit of 32 reached/);
  }, T);

  it("a C++ memory bomb is killed at the memory limit", async () => {
    const run = await runToEnd(
      t.engine,
      cpp(`#include <cstring>\n#include <vector>\nint main() {\n    std::vector<char*> blocks;\n    for (;;) { char* p = new char[1 << 20]; std::memset(p, 1, 1 << 20); blocks.push_back(p); }\n}\n`, {
        limits: { memoryMiB: 64 },
      }),
    );
    expect(run.exit).toMatchObject({ phase: "run", signal: "SIGKILL", limit: "memory", message: "killed: memory limit of 64 MiB exceeded" });
  }, T);

  it("a NASM spin (jmp $) is killed at the CPU-time limit", async () => {
    const run = await runToEnd(t.engine, asm(`global _start\nsection .text\n_start:\n    jmp $\n`, { limits: { cpuSeconds: 1, wallSeconds: 10 } }));
    expect(run.exit).toMatchObject({ limit: "cpu", message: "killed: CPU time limit of 1 s exceeded" });
  }, T);

  it("output floods from NASM and C++ are capped and marked truncated", async () => {
    const limits = { outputBytes: 128 * 1024 };
    const inAsm = await runToEnd(
      t.engine,
      asm(`global _start\nsection .bss\nbuf: resb 65536\nsection .text\n_start:\n    mov eax, 1\n    mov edi, 1\n    mov rsi, buf\n    mov edx, 65536\n    syscall\n    jmp _start\n`, { limits }),
    );
    expect(inAsm.exit).toMatchObject({ limit: "output", truncated: { stdout: true, stderr: false } });
    expect(inAsm.stdout.length).toBe(128 * 1024);
    const inCpp = await runToEnd(t.engine, cpp(`#include <iostream>\nint main() { for (;;) std::cout << "flood flood flood flood\\n"; }\n`, { limits }));
    expect(inCpp.exit).toMatchObject({ limit: "output", truncated: { stdout: true, stderr: false } });
  }, T);
});

describe("no way out", () => {
  it("sockets from NASM, C++, libc:: and nix:: find no network, not even the server's 127.0.0.1", async () => {
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      // socket(AF_INET, SOCK_STREAM, 0): the kernel's answer (-errno) becomes the exit code.
      const inAsm = await runToEnd(
        t.engine,
        asm(`global _start\nsection .text\n_start:\n    mov eax, 41     ; socket\n    mov edi, 2      ; AF_INET\n    mov esi, 1      ; SOCK_STREAM\n    xor edx, edx\n    syscall\n    mov rdi, rax\n    neg rdi         ; errno\n    mov eax, 60\n    syscall\n`),
      );
      expect(inAsm.exit).toMatchObject({ phase: "run", exitCode: 97 }); // EAFNOSUPPORT

      const inCpp = await runToEnd(
        t.engine,
        cpp(`#include <arpa/inet.h>\n#include <cerrno>\n#include <cstring>\n#include <iostream>\n#include <sys/socket.h>\nint main() {\n    int s = socket(AF_INET, SOCK_STREAM, 0);\n    if (s < 0) { std::cout << "socket: " << std::strerror(errno) << std::endl; return 0; }\n    sockaddr_in a{}; a.sin_family = AF_INET; a.sin_port = htons(${port}); inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);\n    std::cout << (connect(s, (sockaddr*)&a, sizeof a) ? "refused" : "CONNECTED") << std::endl;\n}\n`),
      );
      expect(inCpp.stdout).toBe("socket: Address family not supported by protocol\n");

      const inRust = await runToEnd(
        t.engine,
        rust(`use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

fn main() {
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    println!("libc: {} {}", fd, std::io::Error::last_os_error());
    match socket(AddressFamily::Inet, SockType::Stream, SockFlag::empty(), None) {
        Ok(_) => println!("nix: OPENED"),
        Err(e) => println!("nix: {e}"),
    }
    match std::net::TcpStream::connect("127.0.0.1:${port}") {
        Ok(_) => println!("std: CONNECTED"),
        Err(e) => println!("std: {e}"),
    }
}
`),
      );
      expect(inRust.compiled, compileReport(inRust)).toMatchObject({ ok: true });
      expect(inRust.stdout).toMatch(/^libc: -1 Address family not supported by protocol/);
      expect(inRust.stdout).toMatch(/\nnix: EAFNOSUPPORT/);
      expect(inRust.stdout).not.toMatch(/OPENED|CONNECTED/);
      expect(connections).toBe(0);
    } finally {
      server.close();
    }
  }, T);

  it("nasm's %include and incbin, and g++'s #include, find no host file at compile time", async () => {
    const incbin = await runToEnd(t.engine, asm(`global _start\nsection .data\nsecret: incbin "/etc/shadow"\nsection .text\n_start:\n    jmp $\n`));
    expect(incbin.exit).toMatchObject({ phase: "compile" });
    expect(incbin.diagnostics!.items).toEqual([expect.objectContaining({ file: "main.asm", line: 3, severity: "error" })]);
    const include = await runToEnd(t.engine, asm(`%include "/etc/passwd"\nglobal _start\n_start:\n`));
    expect(include.exit).toMatchObject({ phase: "compile" });
    expect(include.diagnostics!.rendered).toMatch(/unable to open include file/);
    expect(include.diagnostics!.rendered).not.toContain("root:");
    const inCpp = await runToEnd(t.engine, cpp(`#include "/etc/passwd"\nint main() {}\n`));
    expect(inCpp.exit).toMatchObject({ phase: "compile" });
    expect(inCpp.diagnostics!.rendered).toMatch(/No such file or directory/);
  }, T);

  it("the prebuilt crates (bound read-only for the compiler) are absent from the program's sandbox", async () => {
    const run = await runToEnd(
      t.engine,
      rust(`fn main() {
    println!("{}", std::path::Path::new("/crates").exists());
    println!("{}", std::fs::read_dir("/").unwrap().filter_map(|e| e.ok()).any(|e| e.file_name() == "crates"));
}
`),
    );
    expect(run.stdout).toBe("false\nfalse\n");
  }, T);
});
