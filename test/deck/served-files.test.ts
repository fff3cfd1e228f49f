/**
 * What a deck folder serves (lib/deck/server/assets.ts, served-files.ts): what slides need, what the author
 * marks (links, :downloads:), never a private file; the loader warns about a private file it was asked to serve.
 * The real server's answers are checked in e2e/deck-files.spec.ts.
 */
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clearDeckCache, loadDeck, resolveCourseFile, resolveDeckAsset } from "../../lib/deck/server";
import { isMarked, isPrivatePath } from "../../lib/deck/server/served-files";

describe("private files and marks", () => {
  it("names beginning with . or _, and anything inside a private/ folder, are private", () => {
    expect(isPrivatePath(["_solutions", "a.c"])).toBe(true);
    expect(isPrivatePath(["images", "_draft.png"])).toBe(true);
    expect(isPrivatePath([".git", "config"])).toBe(true);
    expect(isPrivatePath(["private", "photo.png"])).toBe(true);
    expect(isPrivatePath(["Private", "x", "y.svg"])).toBe(true);
    expect(isPrivatePath(["images", "private.png"])).toBe(false);
    expect(isPrivatePath(["images", "my_photo.png"])).toBe(false);
  });

  it("a mark is a file, a folder ending in /, or a name with *", () => {
    const marks = ["d/handout.pdf", "d/downloads/", "d/examples/*.c", "d/all/**"];
    expect(isMarked("d/handout.pdf", marks)).toBe(true);
    expect(isMarked("d/handout.pdfx", marks)).toBe(false);
    expect(isMarked("d/downloads/a/b.zip", marks)).toBe(true);
    expect(isMarked("d/downloads", marks)).toBe(false);
    expect(isMarked("d/examples/pipe.c", marks)).toBe(true);
    expect(isMarked("d/examples/sub/pipe.c", marks)).toBe(false);
    expect(isMarked("d/examples/pipe.h", marks)).toBe(false);
    expect(isMarked("d/all/x/y.txt", marks)).toBe(true);
    // A mark's other characters are literal.
    expect(isMarked("d/handoutXpdf", ["d/handout.pdf"])).toBe(false);
  });
});

describe("a deck folder serves what slides need and what the author marks", () => {
  let root: string;
  const write = async (file: string, text = "x\n") => {
    await fs.mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await fs.writeFile(path.join(root, file), text);
  };

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "osbe-served-"));
    await write(
      "d/index.adoc",
      [
        "= Served",
        ":downloads: sheets/, code/*.rs, _answers.txt, ../../outside.txt, ../shared/handout.txt",
        "",
        "== One",
        "",
        "image::pics/a.png[]",
        "",
        "link:code/linked.c[linked] link:_solutions/answer.c[answer] link:../shared/notes.md[notes]",
        "",
      ].join("\n"),
    );
    for (const f of ["d/pics/a.png", "d/theme.css", "d/fonts/f.woff2", "d/code/linked.c", "d/code/other.c", "d/code/main.rs", "d/sheets/one.txt"]) await write(f);
    for (const f of ["d/_solutions/answer.c", "d/_answers.txt", "d/private/p.png", "d/notes.adoc", "shared/handout.txt", "shared/notes.md", "shared/other.md", "shared/logo.svg", "shared/_draft.svg"]) await write(f);
    clearDeckCache();
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it("records the marks and warns about private or outside ones", async () => {
    const deck = (await loadDeck("d", { contentDir: root }))!;
    expect(deck.servedFiles).toEqual(["d/code/*.rs", "d/code/linked.c", "d/pics/a.png", "d/sheets/", "shared/handout.txt", "shared/notes.md"]);
    const warnings = deck.problems.map((p) => `${p.relFile}:${p.line ?? ""}: ${p.message}`);
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^d\/index\.adoc:8: d\/_solutions\/answer\.c is private .* linked but not served$/),
        expect.stringMatching(/^d\/index\.adoc:2: :downloads: _answers\.txt is private/),
        expect.stringMatching(/^d\/index\.adoc:2: :downloads: \.\.\/\.\.\/outside\.txt is outside the course folder/),
      ]),
    );
    expect(deck.problems.every((p) => p.severity === "warning")).toBe(true);
  });

  it("serves slide files and marked files, nothing else", async () => {
    const served = async (segments: string[]) => (await resolveDeckAsset("d", segments, root)) !== null;
    for (const ok of [["pics", "a.png"], ["theme.css"], ["fonts", "f.woff2"], ["code", "linked.c"], ["code", "main.rs"], ["sheets", "one.txt"]]) {
      expect(await served(ok), ok.join("/")).toBe(true);
    }
    for (const no of [["index.adoc"], ["notes.adoc"], ["code", "other.c"], ["_solutions", "answer.c"], ["_answers.txt"], ["private", "p.png"]]) {
      expect(await served(no), no.join("/")).toBe(false);
    }
    const course = async (segments: string[]) => (await resolveCourseFile(segments, root)) !== null;
    expect(await course(["shared", "logo.svg"])).toBe(true);
    expect(await course(["shared", "handout.txt"])).toBe(true);
    expect(await course(["shared", "notes.md"])).toBe(true);
    expect(await course(["shared", "other.md"])).toBe(false);
    expect(await course(["shared", "_draft.svg"])).toBe(false);
    expect(await course(["d", "index.adoc"])).toBe(false);
    expect(await course(["d", "code", "linked.c"])).toBe(true);
    expect(await course(["d", "_solutions", "answer.c"])).toBe(false);
  });

  it("a link to a private file does not make it public, also through a symlink", async () => {
    await fs.symlink(path.join(root, "d/_solutions/answer.c"), path.join(root, "d/pics/answer.png"));
    expect(await resolveDeckAsset("d", ["pics", "answer.png"], root)).toBeNull();
  });
});
