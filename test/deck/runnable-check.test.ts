/**
 * `npm run check` running runnable blocks through the real sandbox engine (needs root and bubblewrap):
 * passing C and Rust blocks, stdin/args, a pattern, a compile-error expectation, a group, hidden lines;
 * failures with file:line and both outputs; `--no-run`; exit codes.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "../..");
const TSX = path.join(ROOT, "node_modules/.bin/tsx");

function check(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(TSX, ["scripts/check.ts", ...args], { cwd: ROOT, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("npm run check on runnable blocks", { timeout: 150_000 }, () => {
  it("passes a deck whose blocks all do what they promise", async () => {
    const r = await check(["test/fixtures/runnable-pass"]);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("runnable blocks: 7 compiled and run, all as expected");
    expect(r.stderr).toContain("1 deck checked: no problems");
    expect(r.code).toBe(0);
  });

  it("names file:line of each failing block and shows expected against actual", async () => {
    const r = await check(["test/fixtures/runnable-fail"]);
    const F = "test/fixtures/runnable-fail/index.adoc";
    expect(r.stdout).toContain(
      [
        `${F}:6: error: runnable block wrong_output-run-1 (c): output differs from the expected output:`,
        "    --- expected",
        "    +++ actual",
        "     one",
        "    -2",
        "    +two",
        "     three",
      ].join("\n"),
    );
    expect(r.stdout).toContain(`${F}:25: error: runnable block a_compile_error_where_none_is_expected-run-1 (c): does not compile (compilation failed: 1 error):`);
    expect(r.stdout).toMatch(/main\.c:1:25: error: .undefined_name. undeclared/);
    expect(r.stdout).toContain(`${F}:32: error: runnable block exits_non_zero-run-1 (rust): expected exit code 0, but it ended with exit code 3`);
    expect(r.stdout).toContain(`${F}:41: error: runnable block compiles_although_an_error_is_expected-run-1 (rust): expected a compile error, but it compiled`);
    expect(r.stdout).toContain(
      `${F}:48: error: runnable block not_the_error_the_slide_shows-run-1 (rust): expected compile errors mentioning "E0499", but the errors were:\n    error[E0382]: borrow of moved value`,
    );
    expect(r.stderr).toContain("runnable blocks: 5 compiled and run, 5 failed");
    expect(r.stderr).toContain("1 deck checked: 5 problems");
    expect(r.code).toBe(1);
  });

  it("shows the pattern and the output when a pattern does not match; honours exit=", async () => {
    const pattern = await check(["test/fixtures/runnable-pattern"]);
    expect(pattern.stdout).toBe(
      [
        "test/fixtures/runnable-pattern/index.adoc:6: error: runnable block forked-run-1 (c): output does not match the expected pattern:",
        "  expected (pattern):",
        "    parent {{NUM}} forked child {{NUM}}",
        "    done",
        "  actual:",
        "    parent 12 forked child 13",
        "    child done",
        "",
      ].join("\n"),
    );
    expect(pattern.stderr).toContain("runnable blocks: 1 compiled and run, 1 failed");
    expect(pattern.code).toBe(1);

    const r = await check(["test/fixtures/runnable-ids"]);
    // runnable-ids: the group's main returns 0 though exit=SIGSEGV is promised.
    expect(r.stdout).toContain("test/fixtures/runnable-ids/index.adoc:38: error: runnable block first_slide-pair (c): expected SIGSEGV, but it ended with exit code 0");
    expect(r.code).toBe(1);
  });

  it("--no-run checks the markup only, and still reports bad settings", async () => {
    const good = await check(["--no-run", "test/fixtures/runnable-fail"]);
    expect(good.stdout).toBe("");
    expect(good.stderr).not.toContain("runnable blocks:");
    expect(good.code).toBe(0);
    const bad = await check(["--no-run", "test/fixtures/runnable-problems"]);
    expect(bad.stdout).toContain("test/fixtures/runnable-problems/index.adoc:6: error: runnable block: flag not allowed for c: -fplugin=evil.so");
    expect(bad.code).toBe(1);
  });
});
