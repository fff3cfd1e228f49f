/**
 * Linker errors come back as structured diagnostics (not only as rendered text): an undefined reference on
 * the line that uses the symbol, a multiple definition on the line that defines it again, wherever the
 * toolchain names them (gcc's ld with -g; without it the file only; rustc names no line at all).
 */
import { afterAll, describe, expect, it } from "vitest";
import { textDiagnostic } from "../../sandbox/toolchains/c";
import { linkerItems } from "../../sandbox/toolchains/rust";
import { c, runToEnd, rust, startTestEngine } from "./helpers";

const T = 120_000;

describe("linker diagnostics, parsed", () => {
  it("reads ld's lines with and without debug information", () => {
    expect(textDiagnostic("main.c:4: undefined reference to `g'")).toEqual({ file: "main.c", line: 4, column: 0, severity: "error", message: "undefined reference to `g'", code: "ld" });
    expect(textDiagnostic("main.c:(.text+0x5): undefined reference to `g'")).toMatchObject({ file: "main.c", line: 0, message: "undefined reference to `g'" });
    expect(textDiagnostic("/usr/bin/ld: (object file):other.c:1: multiple definition of `x'; (object file):main.c:1: first defined here")).toMatchObject({
      file: "other.c",
      line: 1,
      message: "multiple definition of `x' (first defined at main.c:1)",
    });
    expect(textDiagnostic("/usr/bin/ld: (object file):(.data+0x0): multiple definition of `x'; (object file):(.data+0x0): first defined here")).toMatchObject({
      file: "",
      line: 0,
      message: "multiple definition of `x'",
    });
  });

  it("turns rustc's failed link into one item per symbol", () => {
    const rendered =
      "error: linking with `gcc` failed: exit status: 1\n  = note: /usr/bin/ld: main.rcgu.o: in function `main::main':\n          main.cgu.0:(.text+0x6): undefined reference to `nowhere'\n          collect2: error: ld returned 1 exit status\n";
    expect(linkerItems(rendered)).toEqual([{ file: "", line: 0, column: 0, severity: "error", message: "undefined reference to `nowhere'", code: "ld" }]);
    expect(linkerItems("error: linking with `gcc` failed: exit status: 1\n")).toEqual([
      { file: "", line: 0, column: 0, severity: "error", message: "linking with `gcc` failed: exit status: 1", code: "ld" },
    ]);
  });
});

describe("linker diagnostics from real runs", () => {
  const t = startTestEngine(270_000);
  afterAll(() => t.dispose());

  it("C: an undefined reference on the line that calls the symbol (-g)", async () => {
    const run = await runToEnd(t.engine, c("void g(void);\nint main(void)\n{\n    g();\n    return 0;\n}\n", { flags: ["-g"] }));
    expect(run.exit).toMatchObject({ phase: "compile" });
    expect(run.diagnostics!.items).toEqual([expect.objectContaining({ file: "main.c", line: 4, severity: "error", message: "undefined reference to `g'" })]);
  }, T);

  it("C: without debug information the file, still structured", async () => {
    const run = await runToEnd(t.engine, c("void g(void);\nint main(void)\n{\n    g();\n    return 0;\n}\n"));
    expect(run.diagnostics!.items).toEqual([expect.objectContaining({ file: "main.c", line: 0, severity: "error", message: "undefined reference to `g'" })]);
  }, T);

  it("C: a multiple definition on the line of the second definition, naming the first", async () => {
    const run = await runToEnd(t.engine, {
      language: "c",
      flags: ["-g"],
      files: [
        { name: "main.c", content: "int x = 1;\nint f(void) { return 2; }\nint main(void)\n{\n    return f() + x;\n}\n" },
        { name: "other.c", content: "int x = 2;\nint f(void)\n{\n    return 3;\n}\n" },
      ],
    });
    expect(run.exit).toMatchObject({ phase: "compile" });
    expect(run.diagnostics!.items).toEqual([
      expect.objectContaining({ file: "other.c", line: 1, severity: "error", message: "multiple definition of `x' (first defined at main.c:1)" }),
      expect.objectContaining({ file: "other.c", line: 3, severity: "error", message: "multiple definition of `f' (first defined at main.c:2)" }),
    ]);
  }, T);

  it("Rust: a symbol the link cannot find is an error item, not only rendered text", async () => {
    const run = await runToEnd(
      t.engine,
      rust('extern "C" {\n    fn nowhere_to_be_found() -> i32;\n}\nfn main() {\n    let v = unsafe { nowhere_to_be_found() };\n    println!("{v}");\n}\n'),
    );
    expect(run.exit).toMatchObject({ phase: "compile" });
    expect(run.diagnostics!.items).toEqual([expect.objectContaining({ severity: "error", message: "undefined reference to `nowhere_to_be_found'", code: "ld" })]);
    expect(run.diagnostics!.rendered).toContain("linking with `gcc` failed");
  }, T);
});
