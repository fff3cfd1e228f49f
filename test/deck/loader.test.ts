/**
 * The deck loader on fixture decks (test/fixtures/decks): conversion with the reveal.js converter's
 * semantics, located problems, missing index.adoc, include jail, and the content cache.
 */
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { clearDeckCache, conversionCount, listDecks, loadDeck, resolveDeckAsset } from "../../lib/deck/server";
import { countSlides, extractSlides, rewriteRelativeUrls } from "../../lib/deck/server/html";
import { revealOptionsFromAttributes } from "../../lib/deck/reveal-options";
import type { Deck } from "../../lib/deck/types";

const FIXTURES = path.resolve(__dirname, "../fixtures/decks");

async function load(name: string, contentDir = FIXTURES): Promise<Deck> {
  const deck = await loadDeck(name, { contentDir });
  expect(deck, `deck ${name}`).not.toBeNull();
  return deck!;
}

/** The slides as a list of [level, id, html] for the top-level and nested <section>s. */
function sections(html: string): string[] {
  return [...html.matchAll(/<section([^>]*)>/g)].map((m) => m[1].trim());
}

describe("conversion", () => {
  let deck: Deck;
  beforeAll(async () => {
    deck = await load("good");
  });

  it("reads title, subtitle, description and counts slides like reveal.js", () => {
    expect(deck.problems).toEqual([]);
    expect(deck.title).toBe("Processes by Example");
    expect(deck.subtitle).toBe("fork, exec, wait");
    expect(deck.description).toBe("A fixture deck that uses every feature the loader must keep.");
    // title + plain + code(stack head) + 2 vertical + background
    expect(deck.slideCount).toBe(6);
  });

  it("makes the document header the title slide", () => {
    expect(deck.slidesHtml.startsWith('<section class="title" data-state="title"><h1>Processes by Example</h1><h2>fork, exec, wait</h2>')).toBe(true);
    expect(deck.slidesHtml).toContain('<span class="author">Ada Lovelace</span>');
  });

  it("makes level-1 sections slides and level-2 sections vertical slides", () => {
    const s = sections(deck.slidesHtml);
    expect(s).toEqual([
      'class="title" data-state="title"',
      'id="_a_plain_slide"',
      "", // the vertical stack
      'id="_code"',
      'id="_a_vertical_slide"',
      'id="_another_vertical_slide"',
      'id="_background_and_data_attributes" data-background-color="#fdf6e3" data-state="custom"',
    ]);
    expect(deck.slidesHtml).toMatch(/<section><section id="_code">[\s\S]*<\/section><section id="_a_vertical_slide">[\s\S]*<\/section><section id="_another_vertical_slide">[\s\S]*<\/section><\/section>/);
  });

  it("keeps speaker notes and fragments", () => {
    expect(deck.slidesHtml).toContain('<aside class="notes"><div class="paragraph"><p>Speaker notes for the plain slide.</p></div></aside>');
    expect(deck.slidesHtml.match(/<li class="fragment">/g)).toHaveLength(2);
  });

  it("emits source blocks for highlight.js, admonitions and tables", () => {
    expect(deck.slidesHtml).toContain('<pre class="highlightjs highlight"><code class="language-c hljs" data-noescape="true" data-lang="c">#include &lt;stdio.h&gt;');
    expect(deck.slidesHtml).toContain('<div class="admonitionblock note">');
    expect(deck.slidesHtml).toContain('<table class="tableblock frame-all grid-all"');
  });

  it("resolves include:: relative to the deck folder", () => {
    expect(deck.slidesHtml).toContain("Included text from <strong>parts/included.adoc</strong>.");
  });

  it("points images at the deck's asset route", () => {
    expect(deck.slidesHtml).toContain('<img src="/decks/good/assets/images/dot.svg" alt="A dot" width="200">');
  });

  it("derives reveal.js options from :revealjs_*: attributes", () => {
    expect(deck.reveal).toMatchObject({ slideNumber: "h.v", transition: "fade", width: 1200 });
  });

  it("drops the converter's own page around the slides", () => {
    expect(deck.slidesHtml).not.toContain("<script");
    expect(deck.slidesHtml).not.toContain("Reveal.initialize");
  });
});

describe("problems, with file and line", () => {
  it("an unresolved include makes the deck broken at the include's line", async () => {
    const deck = await load("broken-include");
    expect(deck.problems).toEqual([
      {
        severity: "error",
        message: "include file not found: broken-include/missing-part.adoc",
        file: path.join(FIXTURES, "broken-include/index.adoc"),
        relFile: "broken-include/index.adoc",
        line: 9,
      },
    ]);
    // the rest of the deck is still converted
    expect(deck.slideCount).toBe(3);
  });

  it("an invalid block and a missing attribute are problems with their lines", async () => {
    const deck = await load("broken-block");
    expect(deck.problems.map((p) => [p.relFile, p.line, p.severity, p.message])).toEqual([
      ["broken-block/index.adoc", 5, "warning", "skipping reference to missing attribute: undefined-attribute"],
      ["broken-block/index.adoc", 8, "warning", "unterminated listing block"],
    ]);
  });

  it("a problem inside an included file names that file", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "deck-"));
    try {
      await fs.mkdir(path.join(dir, "inc/parts"), { recursive: true });
      await fs.writeFile(path.join(dir, "inc/index.adoc"), "= Deck\n\n== Slide\n\ninclude::parts/a.adoc[]\n");
      await fs.writeFile(path.join(dir, "inc/parts/a.adoc"), "fine\n\ninclude::nope.adoc[]\n");
      const deck = await load("inc", dir);
      expect(deck.problems.map((p) => `${p.relFile}:${p.line}: ${p.message}`)).toEqual([
        "inc/parts/a.adoc:3: include file not found: inc/parts/nope.adoc",
      ]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("an include outside the deck folder is refused", async () => {
    const deck = await load("escape");
    expect(deck.slidesHtml).not.toContain("Included text");
    expect(deck.problems.map((p) => `${p.line}: ${p.message}`)).toEqual([
      "5: include file has illegal reference to ancestor of jail; recovering automatically",
      "5: include file not found: escape/good/parts/included.adoc",
    ]);
  });

  it("an absolute include path stays inside the deck folder", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "deck-"));
    try {
      await fs.mkdir(path.join(dir, "abs"));
      await fs.writeFile(path.join(dir, "abs/index.adoc"), "= Deck\n\n== Slide\n\ninclude::/etc/passwd[]\n");
      const deck = await load("abs", dir);
      expect(deck.slidesHtml).not.toContain("root:");
      expect(deck.problems.length).toBeGreaterThan(0);
      expect(deck.problems.every((p) => p.line === 5)).toBe(true);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("a folder without index.adoc is reported, not thrown", async () => {
    const deck = await load("no-index");
    expect(deck.problems).toEqual([
      expect.objectContaining({ relFile: "no-index/index.adoc", message: "no index.adoc in the deck folder", severity: "error" }),
    ]);
    expect(deck.slideCount).toBe(0);
    expect(deck.title).toBe("no-index");
  });

  it("an unreadable index.adoc is reported", async () => {
    if (process.getuid?.() === 0) return; // root reads everything: nothing to test
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "deck-"));
    try {
      await fs.mkdir(path.join(dir, "locked"));
      await fs.writeFile(path.join(dir, "locked/index.adoc"), "= Locked\n");
      await fs.chmod(path.join(dir, "locked/index.adoc"), 0o000);
      const deck = await load("locked", dir);
      expect(deck.problems[0].message).toMatch(/cannot read index.adoc/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("an unknown deck is null (a 404), also for names that try to leave the content folder", async () => {
    expect(await loadDeck("no-such-deck", { contentDir: FIXTURES })).toBeNull();
    expect(await loadDeck("..", { contentDir: FIXTURES })).toBeNull();
    expect(await loadDeck("../decks", { contentDir: FIXTURES })).toBeNull();
  });

  it("one broken deck does not affect the others in the list", async () => {
    const decks = await listDecks({ contentDir: FIXTURES });
    expect(decks.map((d) => [d.name, d.problems.length > 0])).toEqual([
      ["broken-block", true],
      ["broken-include", true],
      ["escape", true],
      ["good", false],
      ["many-runnable", false],
      ["no-index", true],
      ["runnable", false],
    ]);
    expect(decks.find((d) => d.name === "good")).toMatchObject({ title: "Processes by Example", slideCount: 6 });
  });
});

describe("cache by content", () => {
  let dir: string;
  beforeEach(async () => {
    clearDeckCache();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "deck-cache-"));
    await fs.mkdir(path.join(dir, "d/parts"), { recursive: true });
    await fs.writeFile(path.join(dir, "d/index.adoc"), "= Cached\n\n== One\n\ninclude::parts/p.adoc[]\n");
    await fs.writeFile(path.join(dir, "d/parts/p.adoc"), "first version\n");
  });
  afterAll(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it("does not re-run Asciidoctor for an unchanged deck", async () => {
    const before = conversionCount();
    const a = await load("d", dir);
    expect(conversionCount()).toBe(before + 1);
    const b = await load("d", dir);
    expect(conversionCount()).toBe(before + 1);
    expect(b.contentHash).toBe(a.contentHash);
    expect(b.slidesHtml).toBe(a.slidesHtml);
  });

  it("touching a file without changing it does not reconvert either", async () => {
    await load("d", dir);
    const before = conversionCount();
    const later = new Date(Date.now() + 5000);
    await fs.utimes(path.join(dir, "d/index.adoc"), later, later);
    await load("d", dir);
    expect(conversionCount()).toBe(before);
  });

  it("reconverts when an included file changes", async () => {
    const a = await load("d", dir);
    expect(a.slidesHtml).toContain("first version");
    await fs.writeFile(path.join(dir, "d/parts/p.adoc"), "second version, longer\n");
    const before = conversionCount();
    const b = await load("d", dir);
    expect(conversionCount()).toBe(before + 1);
    expect(b.contentHash).not.toBe(a.contentHash);
    expect(b.slidesHtml).toContain("second version");
  });

  it("reconverts when index.adoc changes, and goes back to the cached result when it is restored", async () => {
    const a = await load("d", dir);
    const original = await fs.readFile(path.join(dir, "d/index.adoc"), "utf8");
    await fs.writeFile(path.join(dir, "d/index.adoc"), `${original}\n== Two\n\nmore\n`);
    const b = await load("d", dir);
    expect(b.slideCount).toBe(a.slideCount + 1);
    await fs.writeFile(path.join(dir, "d/index.adoc"), original);
    const before = conversionCount();
    const c = await load("d", dir);
    expect(conversionCount()).toBe(before);
    expect(c.contentHash).toBe(a.contentHash);
  });
});

describe("deck assets", () => {
  it("serves files of the deck folder only", async () => {
    const ok = await resolveDeckAsset("good", ["images", "dot.svg"], FIXTURES);
    expect(ok).toMatchObject({ contentType: "image/svg+xml" });
    expect(await resolveDeckAsset("good", ["..", "broken-include", "index.adoc"], FIXTURES)).toBeNull();
    expect(await resolveDeckAsset("good", ["images", "missing.png"], FIXTURES)).toBeNull();
    expect(await resolveDeckAsset("good", [".hidden"], FIXTURES)).toBeNull();
    expect(await resolveDeckAsset("good", ["images/../../escape/index.adoc"], FIXTURES)).toBeNull();
    expect(await resolveDeckAsset("nope", ["x.png"], FIXTURES)).toBeNull();
  });

  it("refuses a symlink that leads out of the deck", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "deck-assets-"));
    try {
      await fs.mkdir(path.join(dir, "d"));
      await fs.writeFile(path.join(dir, "secret.txt"), "secret");
      await fs.symlink(path.join(dir, "secret.txt"), path.join(dir, "d/link.txt"));
      expect(await resolveDeckAsset("d", ["link.txt"], dir)).toBeNull();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe("html helpers", () => {
  it("cuts the slides out of a standalone document", () => {
    const html = '<html><body><div class="reveal"><div class="slides"><section>A</section></div></div><script src="__osbyexample_revealjs__/dist/reveal.js"></script>';
    expect(extractSlides(html)).toBe("<section>A</section>");
    expect(() => extractSlides("<html></html>")).toThrow(/no .slides element/);
  });

  it("counts slides as reveal.js does", () => {
    expect(countSlides("<section>a</section><section><section>b</section><section>c</section></section>")).toBe(3);
    expect(countSlides("")).toBe(0);
  });

  it("rewrites relative URLs only", () => {
    const out = rewriteRelativeUrls(
      '<img src="a.png"><img src="./b.png"><a href="#/x"></a><a href="https://x.org/"></a><img src="/abs.png"><section data-background-image="bg.jpg"><img src="data:image/png;base64,AA">',
      "/decks/d/assets/",
    );
    expect(out).toBe(
      '<img src="/decks/d/assets/a.png"><img src="/decks/d/assets/b.png"><a href="#/x"></a><a href="https://x.org/"></a><img src="/abs.png"><section data-background-image="/decks/d/assets/bg.jpg"><img src="data:image/png;base64,AA">',
    );
  });
});

describe("reveal options", () => {
  it("maps and types known attributes, ignores the rest", () => {
    const o = revealOptionsFromAttributes({
      revealjs_slidenumber: "c/t",
      revealjs_controls: "false",
      revealjs_width: "1024",
      revealjs_center: "",
      revealjs_plugins: "evil.js",
      revealjs_margin: "not a number",
      other: "x",
    });
    expect(o).toMatchObject({ slideNumber: "c/t", controls: false, width: 1024, center: true, margin: 0.06 });
    expect(o).not.toHaveProperty("plugins");
  });
});
