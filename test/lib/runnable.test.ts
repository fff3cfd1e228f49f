import { describe, expect, it } from "vitest";
import { checkOutput, compileErrorNeedles, lineRuns, matchesPattern, mergeHidden, separateHidden, outputDiff, splitHiddenLines } from "../../lib/runnable";

describe("hidden lines", () => {
  it("follows rustdoc for Rust: '# ' hides, '##' is a literal '#'", () => {
    const src = "# use std::io;\n#\nfn main() {\n    ##[derive(Debug)] struct S;\n    # let hidden = 1;\n}";
    const { code, hiddenLines } = splitHiddenLines(src, "rust");
    expect(code).toBe("use std::io;\n\nfn main() {\n    #[derive(Debug)] struct S;\n    let hidden = 1;\n}");
    expect(hiddenLines).toEqual([0, 1, 4]);
  });

  it("uses '~ ' for C and leaves preprocessor lines alone", () => {
    const { code, hiddenLines } = splitHiddenLines("~ #include <stdio.h>\n# include <stdlib.h>\nint x = ~0;\n", "c");
    expect(code).toBe("#include <stdio.h>\n# include <stdlib.h>\nint x = ~0;\n");
    expect(hiddenLines).toEqual([0]);
  });

  it("groups rows into runs", () => {
    expect(lineRuns([5, 0, 1, 2, 7, 6])).toEqual([
      [0, 2],
      [5, 7],
    ]);
  });
});

describe("expected output", () => {
  it("compares exactly, ignoring trailing whitespace", () => {
    expect(checkOutput({ kind: "exact", text: "a\nb\n" }, "a  \nb")).toBeNull();
    expect(checkOutput({ kind: "exact", text: "a\nb" }, "a\nc")).toMatch(/differs/);
  });

  it("matches patterns with placeholders, gaps and any order", () => {
    expect(matchesPattern("pid {{NUM}} says {{ANY}}", "pid 42 says hi there")).toBe(true);
    expect(matchesPattern("pid {{NUM}}", "pid x")).toBe(false);
    expect(matchesPattern("start\n...\nend", "start\n1\n2\nend")).toBe(true);
    expect(matchesPattern("start\n...\nend", "start\nend")).toBe(true);
    expect(matchesPattern("start\n...\nend", "start\n1")).toBe(false);
    expect(matchesPattern("{{SORTED}}\nthread 1\nthread 2", "thread 2\nthread 1")).toBe(true);
    expect(matchesPattern("{{SORTED}}\nthread 1\nthread 2", "thread 2\nthread 2")).toBe(false);
    expect(matchesPattern("a.b (c)", "a.b (c)")).toBe(true);
    expect(matchesPattern("a.b", "axb")).toBe(false);
    expect(matchesPattern("heap {{HEX}} stack {{HEX}}", "heap 0x55bef0d032a0 stack 7ffd465ddb64")).toBe(true);
    expect(matchesPattern("heap {{HEX}}", "heap 0xzz")).toBe(false);
    expect(matchesPattern("{{SORTED}}\nthread {{NUM}} at {{HEX}}\nmain", "main\nthread 2 at 0x1f")).toBe(true);
  });
});

describe("hidden groups", () => {
  const code = "#include <stdio.h>\nint main(void) {\n  puts(\"hi\");\n  return 0;\n}";
  it("round-trips code through the editor's view", () => {
    const { visible, groups } = separateHidden(code, [0, 3, 4]);
    expect(visible).toBe('int main(void) {\n  puts("hi");');
    expect(groups).toEqual([
      { before: 0, lines: ["#include <stdio.h>"] },
      { before: 2, lines: ["  return 0;", "}"] },
    ]);
    const merged = mergeHidden(visible, groups);
    expect(merged.code).toBe(code);
    expect(merged.rowOf).toEqual([null, 0, 1, null, null]);
  });

  it("keeps hidden lines in place around edits of the visible ones", () => {
    const { groups } = separateHidden(code, [0, 3, 4]);
    // The student added a line; the editor moved the second group's anchor down by one.
    const merged = mergeHidden('int main(void) {\n  puts("hi");\n  puts("more");', [groups[0], { ...groups[1], before: 3 }]);
    expect(merged.code).toBe('#include <stdio.h>\nint main(void) {\n  puts("hi");\n  puts("more");\n  return 0;\n}');
    expect(merged.rowOf[3]).toBe(2);
  });
});

describe("output diff", () => {
  it("shows removed and added lines with a little context, eliding long common runs", () => {
    const expected = ["a", "b", "c", "d", "e", "f", "g", "x"].join("\n");
    const actual = `${["a", "b", "c", "d", "e", "f", "g", "y", "z"].join("\n")}\n`;
    expect(outputDiff(expected, actual)).toBe(["--- expected", "+++ actual", " …", " f", " g", "-x", "+y", "+z"].join("\n"));
    expect(outputDiff("one\n2\nthree", "one\ntwo\nthree")).toBe(["--- expected", "+++ actual", " one", "-2", "+two", " three"].join("\n"));
  });

  it("ignores trailing whitespace like checkOutput", () => {
    expect(outputDiff("a\nb\n\n", "a  \nb")).toBe(["--- expected", "+++ actual", " a", " b"].join("\n"));
    expect(outputDiff("", "out")).toBe(["--- expected", "+++ actual", "+out"].join("\n"));
  });
});

describe("compile-error blocks", () => {
  it("read error codes and messages, ignore the rest", () => {
    const text = [
      "error[E0373]: closure may outlive the current function",
      " --> main.rs:4:27",
      "error: aborting due to 2 previous errors",
      "main.c:1:25: error: ‘x’ undeclared (first use in this function)",
      "main.c:1:1: warning: unused",
    ].join("\n");
    expect(compileErrorNeedles(text)).toEqual(["E0373", "‘x’ undeclared (first use in this function)"]);
  });
});
