/**
 * An existing asciidoctor-reveal.js course as it is, in real Chromium: per-deck themes (the theme's stylesheet
 * applied, the course theme on top, runners readable on a dark theme), custom theme and CSS, docinfo in head
 * and footer, the favicon, :notitle:, title-slide attributes and revealjs_* options, math typeset with the
 * site's own MathJax, shared course files, and a deck with a warning that still renders with the warning
 * listed. Decks: test/fixtures/e2e-content/1x-*, served with DECK_WARNINGS=show (playwright.config.ts).
 */
import { expect, test, type Page } from "@playwright/test";
import path from "node:path";

const SHOTS = path.resolve("e2e/screenshots");
const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`) });

/** Open a deck and fail on any request that leaves the site (a CDN font, MathJax, highlight.js…). */
async function openDeck(page: Page, url: string): Promise<string[]> {
  const foreign: string[] = [];
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.protocol.startsWith("http") && u.hostname !== "127.0.0.1") foreign.push(r.url());
  });
  await page.goto(url);
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
  return foreign;
}

const present = (page: Page) => page.locator(".reveal .slides section.present:not(.stack)");
const rootVar = (page: Page, name: string) => page.evaluate((n) => getComputedStyle(document.documentElement).getPropertyValue(n).trim(), name);

test.beforeEach(async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
});

test(":revealjs_theme: night applies the theme per deck, the course theme on top, dark code colours", async ({ page }) => {
  const foreign = await openDeck(page, "/decks/10-theme-dark#/_static_code");
  await expect(page.locator('link[rel="stylesheet"][href="/vendor/reveal.js/dist/theme/night.css"]')).toHaveCount(1);
  expect(await rootVar(page, "--r-background-color")).toBe("#111");
  await expect(page.locator(".reveal")).toHaveAttribute("data-tone", "dark");
  // course theme: code in DejaVu Sans Mono, left-aligned slides; highlight.js ran with the dark palette
  const keyword = present(page).locator("pre code.hljs .hljs-keyword").first();
  await expect(keyword).toBeVisible({ timeout: 20_000 });
  expect(await keyword.evaluate((el) => getComputedStyle(el).color)).toBe("rgb(255, 123, 114)");
  expect(await present(page).locator("pre code").evaluate((el) => getComputedStyle(el).fontFamily)).toContain("DejaVu Sans Mono");
  await shot(page, "course-theme-night-code");
  // Another deck of the same course keeps the course theme (white + palette): themes are per deck.
  await openDeck(page, "/decks/14-warnings");
  expect(await rootVar(page, "--r-heading-color")).toBe("#17365d");
  await expect(page.locator('link[href="/vendor/reveal.js/dist/theme/night.css"]')).toHaveCount(0);
  expect(foreign).toEqual([]);
});

test("a runnable example on a dark theme: dark editor and console, readable, runs", async ({ page }) => {
  await openDeck(page, "/decks/10-theme-dark#/_a_runnable_example");
  const runner = present(page).locator("[data-runner]");
  await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
  await expect(runner.locator(".ace_editor")).toHaveClass(/ace-github-dark/);
  await runner.getByRole("button", { name: /Run/ }).click();
  await expect(runner.locator(".runner-console")).toContainText("hello on a dark slide", { timeout: 60_000 });
  await expect(runner.locator(".runner-status")).toContainText("exited with code 0", { timeout: 30_000 });
  // Text and background of the runner's parts differ clearly (no light text on a light card).
  const contrast = await runner.evaluate((el) => {
    const lum = (c: string) => {
      const [r, g, b] = (c.match(/[\d.]+/g) ?? []).map(Number);
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const parts = [".runner-toolbar button.runner-run", ".runner-console", ".runner-status", ".ace_content"];
    return parts.map((sel) => {
      const part = el.querySelector(sel) as HTMLElement;
      let bgEl: HTMLElement | null = part;
      let bg = "rgba(0, 0, 0, 0)";
      while (bgEl && (bg === "rgba(0, 0, 0, 0)" || bg === "transparent")) {
        bg = getComputedStyle(bgEl).backgroundColor;
        bgEl = bgEl.parentElement;
      }
      return { sel, diff: Math.abs(lum(getComputedStyle(part).color) - lum(bg)) };
    });
  });
  for (const c of contrast) expect(c.diff, c.sel).toBeGreaterThan(90);
  await shot(page, "course-theme-night-runner");
});

test(":revealjs_customtheme:, :customcss:, :favicon:, :docinfo: (head and footer) and :notitle:", async ({ page }) => {
  const foreign = await openDeck(page, "/decks/11-custom-look");
  expect(await rootVar(page, "--r-background-color")).toBe("#fdf6e3");
  await expect(page.locator(".reveal")).toHaveAttribute("data-tone", "light");
  const marked = present(page).locator(".custom-marked");
  await expect(marked).toBeVisible();
  expect(await marked.evaluate((el) => getComputedStyle(el).color)).toBe("rgb(0, 128, 0)");
  // favicon
  await expect(page.locator('link[rel="icon"][href="/decks/11-custom-look/assets/icon.svg"]')).toHaveCount(1);
  expect((await page.request.get("/decks/11-custom-look/assets/icon.svg")).status()).toBe(200);
  // docinfo: in <head> and at the end of <body>, scripts run (the footer's sees the global Reveal)
  await expect(page.locator('head meta[name="osbe-docinfo"]')).toHaveAttribute("content", "head docinfo of 11-custom-look");
  await expect(page.locator("body > #docinfo-footer-marker")).toBeAttached();
  expect(await page.evaluate(() => (window as unknown as { __docinfoHead?: string }).__docinfoHead)).toBe("ran");
  expect(await page.evaluate(() => (window as unknown as { __docinfoFooter?: string }).__docinfoFooter)).toBe("ran with Reveal");
  // :notitle: — the first slide is the first section, no title slide
  await expect(page.locator(".reveal .slides section.title")).toHaveCount(0);
  await expect(present(page).locator("h2")).toHaveText("First slide, no title slide before it");
  await shot(page, "course-custom-look");
  expect(foreign).toEqual([]);
});

test("title-slide background, revealjs_* options, [%notitle], columns, state and background, notes", async ({ page }) => {
  await openDeck(page, "/decks/12-title-and-options");
  const title = page.locator(".reveal .slides section.title");
  await expect(title).toHaveAttribute("data-background-image", "/decks/12-title-and-options/assets/images/background.svg");
  // reveal.js made it the slide's background
  await expect(page.locator(".reveal .backgrounds .slide-background.present .slide-background-content")).toHaveCSS(
    "background-image",
    /images\/background\.svg/,
    { timeout: 20_000 },
  );
  // :revealjs_controls: false, :revealjs_progress: false, :revealjs_slideNumber: false
  await expect(page.locator(".reveal .controls")).toBeHidden();
  await expect(page.locator(".reveal .progress")).toBeHidden();
  await expect(page.locator(".reveal .slide-number")).toBeHidden();
  const config = await page.evaluate(() => (window as unknown as { Reveal: { getConfig(): Record<string, unknown> } }).Reveal.getConfig());
  expect(config).toMatchObject({ transition: "fade", fragmentInURL: true, controls: false, progress: false });
  // :revealjs_plugin_search: enabled
  expect(await page.evaluate(() => Boolean((window as unknown as { Reveal: { getPlugin(id: string): unknown } }).Reveal.getPlugin("search")))).toBe(true);
  await shot(page, "course-title-slide");

  await page.keyboard.press("ArrowRight");
  await expect(present(page)).toHaveAttribute("id", "_slide_without_a_visible_title");
  await expect(present(page).locator("h2")).toHaveCount(0);
  await page.goto("/decks/12-title-and-options#/_columns");
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
  const columns = present(page).locator(".column");
  await expect(columns).toHaveCount(2);
  const [left, right] = [await columns.nth(0).boundingBox(), await columns.nth(1).boundingBox()];
  expect(right!.x).toBeGreaterThan(left!.x + left!.width / 2); // side by side
  expect(Math.abs(right!.y - left!.y)).toBeLessThan(2); // and level
  await page.waitForTimeout(1000); // the fade transition, for the screenshot
  await shot(page, "course-columns");
  await page.goto("/decks/12-title-and-options#/_state_and_background");
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
  await expect(page.locator(".reveal-viewport")).toHaveClass(/alarm/);
  await expect(present(page).locator("aside.notes")).toContainText("These are the speaker notes.");
  // :highlightjs-theme: (a CDN URL) is served from the site's copy; its colours show
  await page.goto("/decks/12-title-and-options#/_code_in_a_highlight_js_theme");
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
  await expect(page.locator('link[rel="stylesheet"][href="/vendor/highlight.js/styles/github-dark.css"]')).toHaveCount(1);
  const code = present(page).locator("pre code.hljs");
  await expect(code.locator(".hljs-keyword").first()).toBeVisible({ timeout: 20_000 });
  expect(await code.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe("rgb(13, 17, 23)");
  await page.waitForTimeout(1000); // the fade transition, for the screenshot
  await shot(page, "course-highlightjs-theme");
});

test(":stem: math is typeset with the site's MathJax, no third-party request", async ({ page }) => {
  const foreign = await openDeck(page, "/decks/13-math#/_latex");
  await expect(page.locator(".reveal")).toHaveAttribute("data-math", "typeset", { timeout: 60_000 });
  await expect(present(page).locator("mjx-container")).toHaveCount(2);
  await expect(present(page).locator('mjx-container[display="true"]')).toBeVisible();
  expect(await present(page).textContent()).not.toContain("\\frac");
  await shot(page, "course-math");
  await page.keyboard.press("ArrowRight");
  await expect(present(page).locator("mjx-container")).toHaveCount(1); // AsciiMath
  expect(foreign).toEqual([]);
});

test("a deck with a warning renders, and the warning is listed with file and line on the deck and the index", async ({ page }) => {
  await openDeck(page, "/decks/14-warnings#/_a_slide");
  await expect(present(page).locator("h2")).toHaveText("A slide");
  await expect(present(page)).toContainText("A section that skips a level");
  const panel = page.locator(".deck-warnings");
  await expect(panel.locator("summary")).toHaveText("1 warning");
  await panel.locator("summary").click();
  await expect(panel.locator(".problem-warning")).toHaveText(
    "14-warnings/index.adoc:7: warning: section title out of sequence: expected level 2, got level 3",
  );
  await shot(page, "course-warning-deck");

  await page.goto("/");
  const card = page.locator('[data-deck="14-warnings"]');
  await expect(card.locator(".badge-warning")).toHaveText("1 warning");
  await expect(card.locator(".badge-broken")).toHaveCount(0);
  await expect(card.locator(".problem-warning")).toContainText("14-warnings/index.adoc:7: warning: section title out of sequence");
  await expect(card.locator('a[href="/decks/14-warnings?view=scroll"]')).toBeVisible(); // presentable
  await card.screenshot({ path: path.join(SHOTS, "course-warning-index.png") });
});

test("shared course files: attributes, snippets and images from a folder outside the deck; that folder is no deck", async ({ page }) => {
  await openDeck(page, "/decks/15-shared#/_shared_attributes_and_snippets");
  await expect(present(page)).toContainText("This deck belongs to Operating Systems by Example.");
  await expect(present(page)).toContainText("Shared snippet: Operating Systems by Example says hello");
  const logo = present(page).locator('img[alt="Course logo"]');
  await expect(logo).toHaveAttribute("src", "/course-files/shared/images/logo.svg");
  await expect.poll(() => logo.evaluate((el) => (el as HTMLImageElement).naturalWidth), { timeout: 20_000 }).toBeGreaterThan(0);
  await shot(page, "course-shared");
  // :icons: font (set by the shared attributes): Font Awesome from the site
  await page.goto("/decks/15-shared#/_admonition_icons");
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
  const icon = present(page).locator(".admonitionblock.note td.icon > i.fa");
  await expect(icon).toBeVisible();
  expect(await icon.evaluate((el) => getComputedStyle(el, "::before").fontFamily)).toMatch(/Font Awesome/);
  await expect.poll(() => icon.evaluate((el) => el.getBoundingClientRect().width), { timeout: 20_000 }).toBeGreaterThan(10);
  await page.waitForTimeout(800);
  await shot(page, "course-icons");
  for (const bad of ["/course-files/..%2Fsecret.adoc", "/course-files/%2e%2e/%2e%2e/package.json", "/course-files/shared/missing.svg"]) {
    expect((await page.request.get(bad)).status(), bad).toBe(404);
  }
  await page.goto("/");
  await expect(page.locator('[data-deck="15-shared"]')).toBeVisible();
  await expect(page.locator('[data-deck="shared"]')).toHaveCount(0);
});
