/**
 * The deck site in real Chromium: index, presenting with reveal.js (keyboard, hash URLs, overview, speaker
 * view), scroll and print views, a broken deck, an unknown deck. Served from test/fixtures/e2e-content
 * (playwright.config.ts). Screenshots go to e2e/screenshots/ (git-ignored) for a human to look at.
 */
import { expect, test, type Page } from "@playwright/test";
import path from "node:path";

const SHOTS = path.resolve("e2e/screenshots");
const shot = (page: Page, name: string, fullPage = false) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });

const DECK = "/decks/01-sample";

async function openDeck(page: Page, url = DECK): Promise<void> {
  await page.goto(url);
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 20_000 });
}

const currentTitle = (page: Page) => page.locator(".reveal .slides section.present:not(.stack) > :is(h1, h2)").first();

test.describe("deck index", () => {
  test("lists every deck with title, subtitle, description, slide count; broken ones with their error", async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto("/");
    const sample = page.locator('[data-deck="01-sample"]');
    await expect(sample.locator("h2 a")).toHaveText("Processes by Example");
    await expect(sample.locator(".subtitle")).toHaveText("fork, exec, wait");
    await expect(sample.locator(".description")).toContainText("every feature the loader must keep");
    await expect(sample.locator(".slide-count")).toHaveText("6 slides");
    await expect(sample.locator("h2 a")).toHaveAttribute("href", "/decks/01-sample");

    const broken = page.locator('[data-deck="02-broken"]');
    await expect(broken.locator(".badge-broken")).toBeVisible();
    await expect(broken.locator(".problem")).toContainText("02-broken/index.adoc:9: include file not found: 02-broken/missing-part.adoc");

    const noIndex = page.locator('[data-deck="03-no-index"]');
    await expect(noIndex.locator(".problem")).toContainText("no index.adoc");
    await shot(page, "index", true);

    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, "index-phone", true);
  });

  test("a deck opens from the index", async ({ page }) => {
    await page.goto("/");
    await page.locator('[data-deck="01-sample"] h2 a').click();
    await expect(page).toHaveURL(/\/decks\/01-sample/);
    await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 20_000 });
    await expect(page).toHaveTitle("Processes by Example · OSByExample");
  });
});

test.describe("presenting a deck", () => {
  test.beforeEach(async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test("title slide, keyboard navigation with hash URLs, reload lands on the same slide", async ({ page }) => {
    await openDeck(page);
    await expect(currentTitle(page)).toHaveText("Processes by Example");
    await expect(page.locator(".reveal .slide-number")).toBeVisible();
    await shot(page, "deck-title");

    await page.keyboard.press("ArrowRight");
    await expect(currentTitle(page)).toHaveText("A plain slide");
    await expect(page).toHaveURL(/#\/_a_plain_slide$/);

    // [%step] list items are fragments: two presses reveal them before the next slide.
    const steps = page.locator("section.present li.fragment");
    await expect(steps).toHaveCount(2);
    await expect(page.locator("section.present li.fragment.visible")).toHaveCount(0);
    await page.keyboard.press("ArrowRight");
    await expect(page.locator("section.present li.fragment.visible")).toHaveCount(1);
    await page.keyboard.press("ArrowRight");
    await expect(page.locator("section.present li.fragment.visible")).toHaveCount(2);
    await shot(page, "deck-fragments");

    await page.keyboard.press("ArrowRight");
    await expect(currentTitle(page)).toHaveText("Code");
    await expect(page).toHaveURL(/#\/_code$/);
    // highlight.js ran on the static source block
    await expect(page.locator("section.present pre code.hljs .hljs-keyword").first()).toBeVisible();
    const codeFont = await page.locator("section.present pre code").evaluate((el) => getComputedStyle(el).fontFamily);
    expect(codeFont).toContain("DejaVu Sans Mono");
    await shot(page, "deck-code");

    // level-2 sections are vertical slides
    await page.keyboard.press("ArrowDown");
    await expect(currentTitle(page)).toHaveText("A vertical slide");
    await expect(page).toHaveURL(/#\/_a_vertical_slide$/);
    await expect(page.locator("section.present:not(.stack)")).toContainText("Included text from parts/included.adoc");
    const img = page.locator('section.present:not(.stack) img[alt="A dot"]');
    await expect(img).toHaveAttribute("src", "/decks/01-sample/assets/images/dot.svg");
    await expect.poll(() => img.evaluate((el) => (el as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    await shot(page, "deck-vertical");

    await page.keyboard.press("ArrowDown");
    await expect(currentTitle(page)).toHaveText("Another vertical slide");
    await expect(page.locator("section.present:not(.stack) .admonitionblock.note")).toBeVisible();
    await expect(page.locator("section.present:not(.stack) table.tableblock")).toBeVisible();
    await expect(page).toHaveURL(/#\/_another_vertical_slide$/);
    await shot(page, "deck-admonition-table");

    await page.reload();
    await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 20_000 });
    await expect(currentTitle(page)).toHaveText("Another vertical slide");
    await expect(page).toHaveURL(/#\/_another_vertical_slide$/);
  });

  test("a link to a slide lands on it; backgrounds and data attributes are kept", async ({ page }) => {
    await openDeck(page, `${DECK}#/_background_and_data_attributes`);
    await expect(currentTitle(page)).toHaveText("Background and data attributes");
    await expect(page.locator("section.present:not(.stack)")).toHaveAttribute("data-background-color", "#fdf6e3");
    await expect(page.locator(".reveal-viewport")).toHaveClass(/custom/); // data-state
    await shot(page, "deck-background");
  });

  test("overview with Esc", async ({ page }) => {
    await openDeck(page);
    await page.keyboard.press("Escape");
    await expect(page.locator(".reveal")).toHaveClass(/overview/);
    await page.waitForTimeout(700); // overview transition
    await shot(page, "deck-overview");
    await page.keyboard.press("Escape");
    await expect(page.locator(".reveal")).not.toHaveClass(/overview/);
  });

  test("speaker view with S shows the notes in a popup", async ({ page, context }) => {
    await openDeck(page, `${DECK}#/_a_plain_slide`);
    const [popup] = await Promise.all([context.waitForEvent("page"), page.keyboard.press("s")]);
    await popup.setViewportSize({ width: 1100, height: 700 });
    await expect(popup.locator(".speaker-controls-notes")).toContainText("Speaker notes for the plain slide.", { timeout: 20_000 });
    // the previews are the deck itself, loaded in iframes
    await expect(popup.locator("#current-slide iframe")).toBeAttached();
    await popup.waitForTimeout(1500);
    await popup.screenshot({ path: path.join(SHOTS, "speaker-view.png") });
    await popup.close();
  });
});

test.describe("other views", () => {
  test("?view=scroll reads as a page, on a phone too", async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await openDeck(page, `${DECK}?view=scroll`);
    await expect(page.locator(".reveal-viewport")).toHaveClass(/reveal-scroll/);
    await expect(page.locator(".scroll-page")).toHaveCount(6);
    await shot(page, "scroll-desktop");

    await page.setViewportSize({ width: 390, height: 844 });
    await openDeck(page, `${DECK}?view=scroll`);
    await expect(page.locator(".reveal-viewport")).toHaveClass(/reveal-scroll/);
    await shot(page, "scroll-phone");
    // the code slide: readable, not scaled to a stamp
    const code = page.locator("section#_code pre");
    await code.scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
    await shot(page, "scroll-phone-code");
    const box = await code.boundingBox();
    expect(box!.width).toBeLessThanOrEqual(390);
    const fontPx = await page.locator("section#_code pre code").evaluate((el) => {
      const scale = el.getBoundingClientRect().width / (el as HTMLElement).offsetWidth;
      return parseFloat(getComputedStyle(el).fontSize) * scale;
    });
    expect(fontPx).toBeGreaterThanOrEqual(9);
  });

  test("?print-pdf lays every slide out as a page", async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await openDeck(page, `${DECK}?print-pdf`);
    await expect(page.locator("html")).toHaveClass(/reveal-print/);
    await expect(page.locator(".pdf-page")).toHaveCount(6);
    await shot(page, "print-pdf", true);
  });
});

test.describe("errors", () => {
  test("a broken deck shows its error with file and line", async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    const response = await page.goto("/decks/02-broken");
    expect(response?.status()).toBe(200);
    await expect(page.locator("h1")).toContainText("Broken by an include");
    await expect(page.locator(".problem")).toContainText("02-broken/index.adoc:9: include file not found: 02-broken/missing-part.adoc");
    await shot(page, "broken-deck");
  });

  test("a folder without index.adoc is reported, not a crash", async ({ page }) => {
    await page.goto("/decks/03-no-index");
    await expect(page.locator(".problem")).toContainText("03-no-index/index.adoc: no index.adoc in the deck folder");
  });

  test("an unknown deck is a 404 page", async ({ page }) => {
    const response = await page.goto("/decks/no-such-deck");
    expect(response?.status()).toBe(404);
    await expect(page.locator("h1")).toHaveText("Not found");
    await shot(page, "not-found");
  });

  test("deck assets are served, nothing outside the deck", async ({ request }) => {
    const ok = await request.get(`${DECK}/assets/images/dot.svg`);
    expect(ok.status()).toBe(200);
    expect(ok.headers()["content-type"]).toBe("image/svg+xml");
    for (const bad of ["/assets/..%2F02-broken%2Findex.adoc", "/assets/%2e%2e/%2e%2e/%2e%2e/package.json", "/assets/missing.png"]) {
      expect((await request.get(`${DECK}${bad}`)).status(), bad).toBe(404);
    }
  });
});

test("a real course deck renders (screenshot)", async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto("/decks/os-processes");
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 20_000 });
  await shot(page, "course-title");
  for (let i = 0; i < 4; i++) await page.keyboard.press("ArrowRight");
  await page.waitForTimeout(1200); // slide transition
  await shot(page, "course-slide-4");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto("/decks/os-processes?view=scroll");
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 20_000 });
  await page.mouse.wheel(0, 2500);
  await page.waitForTimeout(600);
  await shot(page, "course-scroll-phone");
});
