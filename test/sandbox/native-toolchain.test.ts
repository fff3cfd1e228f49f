/**
 * The native toolchain's pure parts (no sandbox): which commands a C / C++ / assembly request
 * becomes, and how nasm's, GNU as' and ld's text lines become diagnostics.
 */
import { describe, expect, it } from "vitest";
import { groupLanguage } from "../../lib/deck/server/runnable";
import { aceModeFor } from "../../lib/runnable";
import { ProgramRunRequestSchema, type ProgramRunRequestInput } from "../../lib/protocol";
import { AsmToolchain, CppToolchain, CToolchain, textDiagnostic } from "../../sandbox/toolchains/c";

const request = (input: ProgramRunRequestInput) => ProgramRunRequestSchema.parse(input);

describe("compile commands", () => {
  it("C alone is one gcc, as before: no shell, no -no-pie", () => {
    const cmd = new CToolchain().compileCommand(request({ language: "c", files: [{ name: "main.c", content: "" }] }));
    expect(cmd.program).toBe("/usr/bin/gcc");
    expect(cmd.args).not.toContain("-no-pie");
  });

  it("C with NASM files assembles each (all, before giving up) and links the objects", () => {
    const cmd = new CToolchain().compileCommand(
      request({
        language: "c",
        flags: ["-g", "-felf64", "-lm"],
        files: [
          { name: "main.c", content: "" },
          { name: "max.asm", content: "global maximum" },
          { name: "my file.asm", content: "" },
          { name: "macros.inc", content: "" },
          { name: "f.s", content: "" },
        ],
      }),
    );
    expect(cmd.program).toBe("/bin/sh");
    const script = cmd.args[1]!;
    expect(script).toContain("/usr/bin/nasm -f elf64 -g -F dwarf -o /tmp/nasm/max.asm.o max.asm || s=1");
    expect(script).toContain("-o '/tmp/nasm/my file.asm.o' 'my file.asm' || s=1");
    const link = script.split("\n").at(-1)!;
    expect(link).toMatch(/^exec \/usr\/bin\/gcc /);
    expect(link).toContain("-no-pie -Wl,-z,noexecstack");
    expect(link).toContain("main.c f.s /tmp/nasm/max.asm.o '/tmp/nasm/my file.asm.o' -lm");
    expect(link).not.toContain("-felf64");
    expect(link).not.toContain("-nostartfiles");
  });

  it("assembly that defines _start links without the C runtime's start files", () => {
    const own = new AsmToolchain().compileCommand(request({ language: "asm", files: [{ name: "main.asm", content: "section .text\n  GLOBAL  _start\n_start:\n" }] }));
    expect(own.args[1]).toContain("-nostartfiles");
    const withMain = new AsmToolchain().compileCommand(request({ language: "asm", files: [{ name: "main.asm", content: "global main ; not _start\n" }] }));
    expect(withMain.args[1]).not.toContain("-nostartfiles");
  });

  it("C++ uses g++ for .cpp files", () => {
    const cmd = new CppToolchain().compileCommand(request({ language: "cpp", flags: ["-std=c++23"], files: [{ name: "main.cpp", content: "" }, { name: "util.hpp", content: "" }, { name: "util.cc", content: "" }] }));
    expect(cmd.program).toBe("/usr/bin/g++");
    expect(cmd.args.slice(-2)).toEqual(["main.cpp", "util.cc"]);
    expect(cmd.args).toContain("-std=c++23");
  });
});

describe("assembler and linker text", () => {
  it("reads nasm, GNU as and ld lines into items", () => {
    expect(textDiagnostic("max.asm:7: error: parser: instruction expected")).toEqual({ file: "max.asm", line: 7, column: 0, severity: "error", message: "parser: instruction expected" });
    expect(textDiagnostic("max.asm:3: warning: label alone on a line without a colon might be in error [-w+label-orphan]")).toMatchObject({ severity: "warning", line: 3 });
    expect(textDiagnostic("f.s:3: Error: no such instruction: `movx %rax,%rbx'")).toMatchObject({ file: "f.s", line: 3, severity: "error" });
    expect(textDiagnostic("main.c:4: undefined reference to `g'")).toEqual({ file: "main.c", line: 4, column: 0, severity: "error", message: "undefined reference to `g'", code: "ld" });
    expect(textDiagnostic("main.c:(.text+0x2b): undefined reference to `g'")).toMatchObject({ file: "main.c", line: 0 });
    expect(textDiagnostic("/usr/bin/ld: cannot find -lfoo: No such file or directory")).toMatchObject({ file: "", severity: "error", code: "ld" });
    expect(textDiagnostic("f.s: Assembler messages:")).toBeNull();
    expect(textDiagnostic("collect2: error: ld returned 1 exit status")).toBeNull();
  });

  it("names nasm's objects after their sources and keeps non-diagnostic lines in stderr", () => {
    const parsed = new CToolchain().parseDiagnostics(
      "",
      "/usr/bin/ld: /tmp/nasm/max.asm.o: in function `maximum':\n/work/max.asm:5: undefined reference to `helper'\ncollect2: error: ld returned 1 exit status\n",
    );
    expect(parsed.items).toEqual([expect.objectContaining({ file: "max.asm", line: 5, message: "undefined reference to `helper'" })]);
    expect(parsed.rendered).toContain("/usr/bin/ld: max.asm: in function `maximum'");
    expect(parsed.stderr).toBe("/usr/bin/ld: max.asm: in function `maximum':\ncollect2: error: ld returned 1 exit status\n");
  });
});

describe("slides", () => {
  it("a group of C (or C++) with assembly is a C (or C++) example; other mixes are not", () => {
    expect(groupLanguage(["c", "asm", "asm"])).toBe("c");
    expect(groupLanguage(["asm", "cpp"])).toBe("cpp");
    expect(groupLanguage(["asm"])).toBe("asm");
    expect(groupLanguage(["c", "rust"])).toBeNull();
    expect(groupLanguage(["c", "cpp", "asm"])).toBeNull();
  });

  it("each file's editor mode follows its extension", () => {
    expect(aceModeFor("max.asm", "c")).toBe("ace/mode/assembly_x86");
    expect(aceModeFor("f.S", "c")).toBe("ace/mode/gas");
    expect(aceModeFor("main.cpp", "cpp")).toBe("ace/mode/c_cpp");
    expect(aceModeFor("main.rs", "rust")).toBe("ace/mode/rust");
    expect(aceModeFor("Makefile", "asm")).toBe("ace/mode/assembly_x86");
  });
});

describe("files", () => {
  it("assembly files get a final newline (GNU as warns without one); others stay as they are", () => {
    const files = new CToolchain().compileFiles([
      { name: "f.s", content: "ret" },
      { name: "g.asm", content: "ret\n" },
      { name: "main.c", content: "int main(void) { return 0; }" },
    ]);
    expect(files.map((f) => f.content)).toEqual(["ret\n", "ret\n", "int main(void) { return 0; }"]);
  });
});
