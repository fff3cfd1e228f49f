/**
 * The runnable-block extension on fixture decks (test/fixtures/runnable-*): placeholders and their JSON,
 * static fallback, ids, groups, hidden lines and files, expectations, and authoring mistakes as problems.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { RunnableBlockSchema, type RunnableBlock } from "../../lib/runnable";
import { loadDeck } from "../../lib/deck/server";
import { parseStdin, runnableBlocksFromHtml, splitShellWords, visibleCode } from "../../lib/deck/server/runnable";
import { collectRunnableBlocks, requestFor } from "../../lib/deck/server/runnable-check";
import type { Deck } from "../../lib/deck/types";

const FIXTURES = path.resolve(__dirname, "../fixtures");

async function load(name: string): Promise<Deck> {
  const deck = await loadDeck(name, { contentDir: FIXTURES });
  expect(deck).not.toBeNull();
  return deck!;
}

function byId(blocks: RunnableBlock[], id: string): RunnableBlock {
  const b = blocks.find((x) => x.id === id);
  expect(b, `block ${id} among ${blocks.map((x) => x.id).join(", ")}`).toBeDefined();
  return b!;
}

describe("attribute parsing", () => {
  it("splits args like a shell", () => {
    expect(splitShellWords(`a 'b c'  "d \\"e\\"" f\\ g ''`)).toEqual(["a", "b c", 'd "e"', "f g", ""]);
    expect(splitShellWords("  ")).toEqual([]);
    expect(() => splitShellWords("'open")).toThrow(/unterminated single quote/);
  });

  it("reads stdin escapes and ends the last line", () => {
    expect(parseStdin("line 1\\nline 2")).toBe("line 1\nline 2\n");
    expect(parseStdin("a\\tb\\\\n\\n")).toBe("a\tb\\n\n");
    expect(parseStdin("")).toBe("");
  });

  it("drops hidden lines from what readers see", () => {
    expect(visibleCode("~ #include <stdio.h>\n~\nint main(void) {}", "c")).toBe("int main(void) {}");
    expect(visibleCode("# use std::io;\nfn main() {\n    ##[allow(unused)] let x = 1;\n}", "rust")).toBe("fn main() {\n    #[allow(unused)] let x = 1;\n}");
  });
});

describe("placeholders", () => {
  it("replaces each runnable block with a placeholder holding its JSON and a readable static copy", async () => {
    const deck = await load("runnable-pass");
    expect(deck.problems).toEqual([]);
    const html = deck.slidesHtml;
    // No listing of a runnable block is left; the expected outputs still are.
    expect(html).not.toContain('class="listingblock"');
    expect(html.match(/<div class="runnable"(?: id="[^"]*")? data-runnable="/g)).toHaveLength(7);
    expect(html).toContain('<div class="literalblock output"><div class="content"><pre>arg 1: one');
    expect(html).toContain('<div class="literalblock output output-pattern"><div class="content"><pre>...\npid {{NUM}} done');
    // The static copy: hidden lines gone, HTML escaped, language class.
    expect(html).toContain(
      '<pre class="runnable-static" data-file="main.c"><code class="language-c">int main(int argc, char **argv) {\n    for (int i = 1; i &lt; argc; i++)',
    );
    const shown = [...html.matchAll(/<pre class="runnable-static"[^>]*>([\s\S]*?)<\/pre>/g)].map((m) => m[1]).join("\n");
    expect(shown).not.toContain("#include &lt;stdio.h&gt;\nint main(int argc");
    expect(shown).not.toContain("HashMap;");
    expect(shown).not.toMatch(/(^|\n)~/);

    const blocks = runnableBlocksFromHtml(html);
    for (const b of blocks) expect(RunnableBlockSchema.parse(b)).toEqual(b);
    const first = blocks[0];
    expect(first).toMatchObject({
      id: "c_with_flags_args_and_stdin-run-1",
      language: "c",
      mainFile: "main.c",
      flags: ["-Wall", "-O2"],
      args: ["one", "two words"],
      stdin: "x\ny\n",
      lines: 12,
      readOnly: false,
      expected: { kind: "exact", text: "arg 1: one\narg 2: two words\nread: x\nread: y" },
      source: { file: "runnable-pass/index.adoc", line: 7 },
    });
    // The source keeps its hidden-line markers; the request drops them.
    expect(first.files[0].source.startsWith("~ #include <stdio.h>\n~\n")).toBe(true);
    expect(requestFor(first).files[0].content.startsWith("#include <stdio.h>\n\n")).toBe(true);
  });

  it("reads expectations: exact, pattern, compile error", async () => {
    const { blocks } = (await collectRunnableBlocks("runnable-pass", { contentDir: FIXTURES }))!;
    expect(byId(blocks, "hello-rust")).toMatchObject({ readOnly: true, expected: { kind: "exact", text: "k = 1" } });
    expect(byId(blocks, "threads_in_any_order-run-1").expected).toEqual({ kind: "pattern", text: "...\npid {{NUM}} done" });
    expect(byId(blocks, "a_borrow_error-run-1").expected).toEqual({ kind: "compile-error", text: "E0382" });
    expect(byId(blocks, "no_expectation_must_exit_0-run-1").expected).toBeUndefined();
    // A [.compile-error] block after a %compile-error block lists errors that must all occur.
    expect(byId(blocks, "a_c_compile_error_as_the_reader_sees_it-run-1").expected).toEqual({
      kind: "compile-error",
      errors: ["‘missing’ undeclared (first use in this function)"],
    });
  });

  it("makes a group one example: files in order, placeholder where the last block was, include:: resolved", async () => {
    const deck = await load("runnable-pass");
    const greet = byId(runnableBlocksFromHtml(deck.slidesHtml), "a_header_and_main_c-greet");
    expect(greet.files.map((f) => [f.name, f.visible])).toEqual([
      ["greet.h", true],
      ["main.c", true],
    ]);
    expect(greet.files[0].source).toContain("static void greet(const char *who)");
    expect(greet.mainFile).toBe("main.c");
    expect(greet.readOnly).toBe(true);
    expect(greet.source.line).toBe(87); // the last block of the group
    const slide = /<section id="_a_header_and_main_c">([\s\S]*?)<\/section>/.exec(deck.slidesHtml)![1];
    expect(slide.match(/class="runnable"/g)).toHaveLength(1);
    expect(slide).toContain('<div class="runnable-file">greet.h</div><pre class="runnable-static" data-file="greet.h">');
  });

  it("derives ids from the slide (stable when other slides change), keeps explicit ids, escapes everything", async () => {
    const deck = await load("runnable-ids");
    expect(deck.problems).toEqual([]);
    const blocks = runnableBlocksFromHtml(deck.slidesHtml);
    expect(blocks.map((b) => b.id)).toEqual(["title-run-1", "first_slide-run-1", "named", "first_slide-pair"]);
    // An explicit id is the element's id too; the title stays outside the placeholder.
    expect(deck.slidesHtml).toContain('<div class="listingblock runnable-block"><div class="title">A titled block</div><div class="runnable" id="named" data-runnable="');
    expect(byId(blocks, "named").files[0].source).toBe(`fn main() { println!("<&>\\"'"); }`);
    expect(deck.slidesHtml).toContain("println!(&quot;&lt;&amp;&gt;\\&quot;&#39;&quot;)");

    const pair = byId(blocks, "first_slide-pair");
    expect(pair.files.map((f) => [f.name, f.visible])).toEqual([
      ["util.h", true],
      ["secret.c", true],
      ["nope.h", false],
      ["main.c", true],
    ]);
    expect(pair.exit).toBe("SIGSEGV");
    // A %hidden file is compiled, not shown; hidden lines are not shown either.
    const shown = [...deck.slidesHtml.matchAll(/<pre class="runnable-static"[^>]*>([\s\S]*?)<\/pre>/g)].map((m) => m[1]).join("\n");
    expect(shown).toContain("int secret(void)");
    expect(shown).not.toContain("NOPE");
    expect(shown).not.toContain("HIDDEN_FROM_READERS");
  });
});

describe("authoring mistakes", () => {
  it("are deck problems with file and line", async () => {
    const deck = await load("runnable-problems");
    const problems = deck.problems.map((p) => `${p.relFile}:${p.line}: ${p.message}`);
    expect(problems).toEqual([
      "runnable-problems/index.adoc:6: runnable block: flag not allowed for c: -fplugin=evil.so",
      'runnable-problems/index.adoc:6: runnable block: lines must be a positive whole number, not "many"',
      "runnable-problems/index.adoc:11: runnable block: language must be c, cpp, asm or rust, not python: [source%run,c], [source%run,cpp], [source%run,asm] or [source%run,rust]",
      "runnable-problems/index.adoc:23: id assigned to block already in use: same",
      "runnable-problems/index.adoc:23: runnable block: args: unterminated single quote",
      'runnable-problems/index.adoc:23: runnable block: duplicate runnable id "same" (also at runnable-problems/index.adoc:16); give one of them id=…',
      "runnable-problems/index.adoc:35: runnable block: unknown setting arg= (see docs/authoring.md)",
      "runnable-problems/index.adoc:35: runnable block: unknown setting %readonyl (see docs/authoring.md)",
      'runnable-problems/index.adoc:40: runnable block: group "g" spans slides (its first block is at runnable-problems/index.adoc:28); a group\'s blocks must be on one slide',
    ]);
    // The blocks still render (without what was wrong), so the deck stays readable.
    const blocks = runnableBlocksFromHtml(deck.slidesHtml);
    expect(blocks[0].flags).toEqual(["-Wall"]);
    expect(blocks.map((b) => b.id)).toContain("same-2");
  });
});

describe("kernel blocks (the kernel lab)", () => {
  it("carry the kernel's name and the replaced file, and make a kernel run request", async () => {
    const deck = await load("runnable-kernel");
    const hello = byId(runnableBlocksFromHtml(deck.slidesHtml), "hello");
    expect(hello).toMatchObject({ kernel: "osbe", language: "rust", mainFile: "src/hello.rs" });
    expect(requestFor(hello)).toEqual({
      language: "kernel",
      kernel: "osbe",
      files: [{ name: "src/hello.rs", content: 'use crate::kprintln;\npub fn hello() {\n    kprintln!("Hi from a slide");\n}' }],
    });
  });

  it("report kernel-specific mistakes with file and line", async () => {
    const deck = await load("runnable-kernel");
    const problems = deck.problems.map((p) => `${p.relFile}:${p.line}: ${p.message}`);
    expect(problems).toEqual([
      "runnable-kernel/index.adoc:16: runnable block: a kernel example names the kernel file it replaces: file=src/…",
      "runnable-kernel/index.adoc:21: runnable block: a kernel example is Rust: [source%run,rust,kernel=osbe,file=src/…]",
      "runnable-kernel/index.adoc:21: runnable block: flags= does not apply to a kernel example (the kernel's own build and QEMU run it)",
      expect.stringMatching(/^runnable-kernel\/index.adoc:26: runnable block: kernel=Linux!: kernel must be a kernel profile's name/),
    ]);
  });
});
