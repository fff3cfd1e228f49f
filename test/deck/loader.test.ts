/**
 * The deck loader on fixture decks (test/fixtures/decks): conversion with the reveal.js converter's
 * semantics, located problems, missing index.adoc, include jail, and the content cache.
 */
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { clearDeckCache, conversionCount, listDecks, loadDeck, resolveCourseFile, resolveDeckAsset, resolveVendorFile, withoutRemoteImports } from "../../lib/deck/server";
import { REVEAL_THEMES } from "../../lib/deck/server/look";
import { countSlides, extractSlides, rewriteRelativeUrls } from "../../lib/deck/server/html";
import { revealOptionsFromAttributes } from "../../lib/deck/reveal-options";
import { isBroken, type Deck } from "../../lib/deck/types";

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

  it("an include outside the course folder (CONTENT_DIR) is refused with file and line", async () => {
    const deck = await load("escape");
    expect(deck.slidesHtml).not.toContain("Secret text");
    expect(deck.problems.map((p) => `${p.relFile}:${p.line}: ${p.severity}: ${p.message}`)).toEqual([
      "escape/index.adoc:5: error: include file is outside the course folder (CONTENT_DIR): ../../secret.adoc",
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
    // The tests run as root, whom no file mode stops: an index.adoc that is a folder cannot be read by anyone.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "deck-"));
    try {
      await fs.mkdir(path.join(dir, "locked/index.adoc"), { recursive: true });
      const deck = await load("locked", dir);
      expect(deck.problems).toEqual([
        expect.objectContaining({ relFile: "locked/index.adoc", message: "cannot read index.adoc (EISDIR)", severity: "error" }),
      ]);
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
      ["console", false],
      ["escape", true],
      ["good", false],
      ["live", false],
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
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
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

/** The fixture course of the browser tests: one deck per attribute family, a `shared/` course folder. */
const COURSE = path.resolve(__dirname, "../fixtures/e2e-content");

describe("an existing asciidoctor-reveal.js course, as it is", () => {
  it("a deck with warnings renders; its warnings are listed with file and line", async () => {
    const deck = await load("14-warnings", COURSE);
    expect(isBroken(deck)).toBe(false);
    expect(deck.problems.map((p) => `${p.relFile}:${p.line}: ${p.severity}: ${p.message}`)).toEqual([
      "14-warnings/index.adoc:7: warning: section title out of sequence: expected level 2, got level 3",
    ]);
    expect(deck.slideCount).toBe(2);
    expect(deck.slidesHtml).toContain("A section that skips a level");
  });

  it("include:: and images reach a course-wide folder; the deck records what it read outside its folder", async () => {
    const deck = await load("15-shared", COURSE);
    expect(deck.problems).toEqual([]);
    expect(deck.slidesHtml).toContain("This deck belongs to <em>Operating Systems by Example</em>");
    expect(deck.slidesHtml).toContain("says hello from <code>shared/snippets/greeting.adoc</code>");
    expect(deck.slidesHtml).toContain('<img src="/course-files/shared/images/logo.svg" alt="Course logo" width="120">');
    expect(deck.slidesHtml).toContain("hello from a shared file");
    expect(deck.dependencies.map((f) => path.relative(COURSE, f))).toEqual([
      "shared/attributes.adoc",
      "shared/images/logo.svg",
      "shared/snippets/greeting.adoc",
      "shared/snippets/hello.c",
    ]);
    expect(await resolveCourseFile(["shared", "images", "logo.svg"], COURSE)).toMatchObject({ contentType: "image/svg+xml" });
    expect(await resolveCourseFile(["..", "secret.adoc"], COURSE)).toBeNull();
  });

  it("a folder decks use is a course folder, not a deck; a folder nobody uses without index.adoc is still reported", async () => {
    const names = (await listDecks({ contentDir: COURSE })).map((d) => d.name);
    expect(names).not.toContain("shared");
    expect(names).toContain("03-no-index");
    expect(names).toContain("15-shared");
  });

  it(":revealjs_theme: per deck, with the course theme on top and the theme's tone", async () => {
    const deck = await load("10-theme-dark", COURSE);
    expect(deck.look.stylesheets).toEqual([
      "/vendor/reveal.js/dist/theme/night.css",
      "/deck-css/asciidoctor-revealjs.css",
      "/deck-css/course-theme.css",
      "/deck-css/course-code.css",
    ]);
    expect(deck.look.tone).toBe("dark");
    // no theme: reveal's white with the course palette
    expect((await load("14-warnings", COURSE)).look.stylesheets).toContain("/deck-css/course-palette.css");
  });

  it("every theme reveal.js ships is served by the site, without its remote web-font imports", async () => {
    for (const theme of REVEAL_THEMES) {
      const asset = await resolveVendorFile(["reveal.js", "dist", "theme", `${theme}.css`]);
      expect(asset, theme).toMatchObject({ contentType: "text/css; charset=utf-8" });
      const css = withoutRemoteImports(await fs.readFile(asset!.file, "utf8"));
      expect(css, theme).not.toMatch(/@import\s+url\(\s*["']?https?:/);
      expect(css, theme).toContain("--r-background-color");
    }
    expect(await resolveVendorFile(["reveal.js", "package.json"])).toBeNull();
    expect(await resolveVendorFile(["mathjax", "es5", "tex-mml-chtml.js"])).not.toBeNull();
    expect(await resolveVendorFile(["left-pad", "index.js"])).toBeNull();
  });

  it(":revealjs_customtheme:, :customcss:, :favicon:, :docinfo: and :notitle:", async () => {
    const deck = await load("11-custom-look", COURSE);
    expect(deck.problems).toEqual([]);
    expect(deck.look.stylesheets[0]).toBe("/decks/11-custom-look/assets/theme/course.css");
    expect(deck.look.stylesheets.at(-1)).toBe("/decks/11-custom-look/assets/custom.css");
    expect(deck.look.stylesheets).not.toContain("/deck-css/course-palette.css");
    expect(deck.look.tone).toBeUndefined(); // measured in the browser
    expect(deck.look.favicon).toEqual({ href: "/decks/11-custom-look/assets/icon.svg", type: "image/svg+xml" });
    expect(deck.look.docinfoHead).toContain('<meta name="osbe-docinfo" content="head docinfo of 11-custom-look">');
    expect(deck.look.docinfoFooter).toContain('<div id="docinfo-footer-marker"');
    expect(deck.slidesHtml).not.toContain('class="title"');
    expect(deck.slideCount).toBe(1);
  });

  it("title-slide attributes, revealjs_* options, built-in plugins, slide roles and notes", async () => {
    const deck = await load("12-title-and-options", COURSE);
    expect(deck.problems).toEqual([]);
    expect(deck.slidesHtml).toMatch(/<section class="title" data-state="title" data-transition="zoom" data-background-size="cover" data-background-image="\/decks\/12-title-and-options\/assets\/images\/background.svg">/);
    expect(deck.reveal).toMatchObject({ controls: false, progress: false, slideNumber: false, transition: "fade", fragmentInURL: true });
    expect(deck.look.plugins).toEqual({ zoom: true, notes: true, search: true });
    // a highlight.js style named by its CDN URL comes from the site's own copy
    expect(deck.look.stylesheets).toContain("/vendor/highlight.js/styles/github-dark.css");
    expect(deck.look.stylesheets).not.toContain("/deck-css/course-code.css");
    expect(deck.look.highlightjsTheme).toBe(true);
    expect(deck.slidesHtml).toContain('<section id="_slide_without_a_visible_title"><div class="slide-content">'); // [%notitle]
    expect(deck.slidesHtml).toContain('<section id="_columns" class="columns">');
    expect(deck.slidesHtml).toContain('data-background-color="#5b1a1a" data-state="alarm"');
    expect(deck.slidesHtml).toContain('<aside class="notes">');
  });

  it(":stem: turns on math (typeset in the browser with the site's MathJax)", async () => {
    const deck = await load("13-math", COURSE);
    expect(deck.look.math).toEqual({ eqnums: "none" });
    expect(deck.slidesHtml).toContain("\\(\\bar{W} = \\frac{1}{n}\\sum_{i=1}^{n} W_i\\)");
    expect(deck.slidesHtml).toContain("\\$sqrt(a^2 + b^2)\\$");
  });

  it("attributes the site cannot honour as documented are reported with file and line, never dropped", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "deck-attrs-"));
    try {
      await fs.mkdir(path.join(dir, "d"));
      await fs.writeFile(
        path.join(dir, "d/index.adoc"),
        [
          "= Attributes",
          ":revealjsdir: https://cdn.jsdelivr.net/npm/reveal.js@4.1.2",
          ":revealjs_theme: nonexistent",
          ":revealjs_slidenumbers: true",
          ":revealjs_plugins: plugins.js",
          ":source-highlighter: rouge",
          "",
          "== Slide",
          "",
          "text",
          "",
        ].join("\n"),
      );
      const deck = await load("d", dir);
      expect(isBroken(deck)).toBe(false);
      expect(deck.problems.map((p) => `${p.line}: ${p.severity}: ${p.message}`)).toEqual([
        "2: info: the site serves reveal.js 5 itself; :revealjsdir: is ignored",
        expect.stringMatching(/^3: warning: unknown reveal.js theme "nonexistent" \(themes: beige, black, .*\); the course theme is used$/),
        "4: warning: unknown reveal.js attribute :revealjs_slidenumbers: (not an asciidoctor-reveal.js option; a typo?)",
        expect.stringMatching(/^5: warning: custom reveal.js plugin scripts are not loaded on this site/),
        "6: info: :source-highlighter: rouge is not available here; code is highlighted with highlight.js",
      ]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it(":docinfodir: may name a course-wide folder; private and shared docinfo are read from it", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "deck-docinfo-"));
    try {
      await fs.mkdir(path.join(dir, "d"));
      await fs.mkdir(path.join(dir, "common"));
      await fs.writeFile(path.join(dir, "d/index.adoc"), "= D\n:docinfo: private-head,shared-footer\n:docinfodir: ../common\n\n== S\n\nx\n");
      await fs.writeFile(path.join(dir, "common/index-docinfo-revealjs.html"), '<meta name="private-head" content="1">\n');
      await fs.writeFile(path.join(dir, "common/docinfo-footer.html"), '<p id="shared-footer">f</p>\n');
      const deck = await load("d", dir);
      expect(deck.problems).toEqual([]);
      expect(deck.look.docinfoHead).toContain('<meta name="private-head" content="1">');
      expect(deck.look.docinfoFooter).toContain('<p id="shared-footer">f</p>');
      expect((await listDecks({ contentDir: dir })).map((d) => d.name)).toEqual(["d"]); // common/ is a course folder
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("a symlink inside the course that leads outside it is refused, with file and line", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "deck-link-"));
    try {
      await fs.mkdir(path.join(dir, "course/d"), { recursive: true });
      await fs.writeFile(path.join(dir, "secret.adoc"), "Secret text\n");
      await fs.symlink(path.join(dir, "secret.adoc"), path.join(dir, "course/d/link.adoc"));
      await fs.writeFile(path.join(dir, "course/d/index.adoc"), "= D\n\n== S\n\ninclude::link.adoc[]\n");
      const deck = await load("d", path.join(dir, "course"));
      expect(deck.slidesHtml).not.toContain("Secret text");
      expect(deck.problems.map((p) => `${p.relFile}:${p.line}: ${p.message}`)).toEqual(["d/index.adoc:5: include file is outside the course folder (CONTENT_DIR): link.adoc"]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("editing a shared file reconverts every deck that includes it", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "deck-shared-"));
    try {
      await fs.mkdir(path.join(dir, "shared"));
      await fs.mkdir(path.join(dir, "a"));
      await fs.mkdir(path.join(dir, "b"));
      await fs.writeFile(path.join(dir, "shared/name.adoc"), ":who: first\n");
      for (const d of ["a", "b"]) await fs.writeFile(path.join(dir, `${d}/index.adoc`), "= D\ninclude::../shared/name.adoc[]\n\n== S\n\n{who}\n");
      expect((await load("a", dir)).slidesHtml).toContain("first");
      expect((await load("b", dir)).slidesHtml).toContain("first");
      await fs.writeFile(path.join(dir, "shared/name.adoc"), ":who: second, edited\n");
      expect((await load("a", dir)).slidesHtml).toContain("second, edited");
      expect((await load("b", dir)).slidesHtml).toContain("second, edited");
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
