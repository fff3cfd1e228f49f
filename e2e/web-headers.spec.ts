/**
 * Issue 16, finding 7, against the real server in real Chromium: pages carry a nonce-based CSP,
 * frame-ancestors 'self', nosniff, a Referrer-Policy and no X-Powered-By; files carry `CSP: sandbox`,
 * so an SVG opened directly runs no script in the site's origin. Under these headers the slides,
 * the docinfo scripts, MathJax, the runners and reveal.js's speaker view (a popup written by the
 * notes plugin, framing the deck) keep working, and the browser reports no CSP violation.
 */
import { expect, test, type BrowserContext, type Page } from "@playwright/test";
import path from "node:path";

const SHOTS = path.resolve("e2e/screenshots");

/** Every CSP violation and CSP console error of a page (and of the popups it opens), in words. */
function watchCsp(context: BrowserContext): string[] {
  const violations: string[] = [];
  const watch = (page: Page) => {
    page.on("console", (message) => {
      if (/Content Security Policy|Content-Security-Policy/i.test(message.text())) violations.push(`${page.url()}: ${message.text()}`);
    });
  };
  context.on("page", watch);
  for (const page of context.pages()) watch(page);
  return violations;
}

async function openDeck(page: Page, url: string): Promise<void> {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(url);
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
}

test.describe("security headers (issue 16, finding 7)", () => {
  test("pages carry a nonce CSP and the other headers; files carry sandbox", async ({ request }) => {
    const nonces = new Set<string>();
    for (const url of ["/", "/decks/01-sample", "/decks/06-live/presenter", "/lecturer", "/decks/no-such-deck"]) {
      const res = await request.get(url);
      const headers = res.headers();
      const csp = headers["content-security-policy"] ?? "";
      expect(csp, url).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/=]{16,}' 'strict-dynamic'(;|$)/);
      expect(csp, url).toContain("frame-ancestors 'self'");
      expect(csp, url).toContain("object-src 'none'");
      expect(csp, url).toContain("base-uri 'self'");
      expect(csp, url).not.toContain("unsafe-eval");
      nonces.add(/'nonce-([^']+)'/.exec(csp)![1]);
      expect(headers["x-content-type-options"], url).toBe("nosniff");
      expect(headers["referrer-policy"], url).toBe("strict-origin-when-cross-origin");
      expect(headers["x-frame-options"], url).toBe("SAMEORIGIN");
      expect(headers["x-powered-by"], url).toBeUndefined();
      // Next.js put the nonce on its scripts: every script of the page carries it.
      const html = await res.text();
      const nonce = /'nonce-([^']+)'/.exec(csp)![1];
      const scripts = html.match(/<script\b[^>]*>/g) ?? [];
      expect(scripts.length, url).toBeGreaterThan(0);
      for (const tag of scripts) expect(tag, url).toContain(`nonce="${nonce}"`);
    }
    // A fresh nonce per answer.
    expect(nonces.size).toBe(5);

    for (const url of ["/decks/01-sample/assets/images/dot.svg", "/course-files/shared/images/logo.svg", "/vendor/reveal.js/dist/reveal.css", "/deck-css/course-theme.css"]) {
      const res = await request.get(url);
      expect(res.status(), url).toBe(200);
      expect(res.headers()["content-security-policy"], url).toBe("sandbox");
      expect(res.headers()["x-content-type-options"], url).toBe("nosniff");
      expect(res.headers()["x-powered-by"], url).toBeUndefined();
    }

    // The custom server's own answers (a run, a malformed path) carry the common headers as well.
    const run = await request.post("/api/run", { data: { language: "c", code: "int main(void) { return 0; }" } });
    const bad = await request.get("/decks/%E0%A4%A");
    for (const res of [run, bad]) {
      expect(res.headers()["x-content-type-options"], res.url()).toBe("nosniff");
      expect(res.headers()["referrer-policy"], res.url()).toBe("strict-origin-when-cross-origin");
      expect(res.headers()["x-frame-options"], res.url()).toBe("SAMEORIGIN");
    }
    expect(run.status()).toBe(200);
    expect(bad.status()).toBe(400);
  });

  test("an SVG opened directly cannot script the site", async ({ page }) => {
    const url = "/decks/16-files/assets/images/diagram.svg";
    await page.goto(url);
    await expect(page.locator("text")).toHaveText("a diagram");
    // The SVG's own script did not run, and the document has no origin to act with.
    expect(await page.title()).not.toMatch(/svg script ran/);
    expect(await page.evaluate(() => self.origin)).toBe("null");
  });

  test("slides, docinfo scripts, math, a runner, the presenter view work under the CSP, with no violation", async ({ page, context }) => {
    test.setTimeout(180_000);
    const violations = watchCsp(context);

    // docinfo scripts in <head> and at the end of <body> run (they get the page's nonce)
    await openDeck(page, "/decks/11-custom-look");
    await expect.poll(() => page.evaluate(() => (window as unknown as { __docinfoHead?: string }).__docinfoHead), { timeout: 30_000 }).toBe("ran");
    await expect.poll(() => page.evaluate(() => (window as unknown as { __docinfoFooter?: string }).__docinfoFooter), { timeout: 30_000 }).toBe("ran with Reveal");

    // MathJax, loaded from /vendor, typesets
    await openDeck(page, "/decks/13-math");
    await expect(page.locator(".reveal")).toHaveAttribute("data-math", "typeset", { timeout: 60_000 });
    await expect(page.locator("mjx-container").first()).toBeVisible({ timeout: 30_000 });

    // A runner: ACE editor, Run over the page's WebSocket, the program's output in the console
    await openDeck(page, "/decks/04-runnable#/_hello");
    const runner = page.locator("section.present [data-runner]").first();
    await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
    await runner.getByRole("button", { name: /Run/ }).click();
    await expect(runner.locator(".runner-console")).toContainText("hello, world", { timeout: 90_000 });
    await page.screenshot({ path: path.join(SHOTS, "csp-runner.png") });

    // The presenter view (two reveal.js instances, notes, clock) and the lecturer's sign-in page
    await page.goto("/decks/06-live/presenter");
    await expect(page.locator("[data-presenter-notes]")).toBeVisible({ timeout: 30_000 });
    await expect(page.locator("[data-presenter] .reveal[data-ready=true]").first()).toBeAttached({ timeout: 30_000 });
    await page.goto("/lecturer");
    await expect(page.locator(".lecturer-sign-in")).toBeVisible({ timeout: 30_000 });

    expect(violations).toEqual([]);
  });

  test("reveal.js's speaker view opens, shows notes and both previews, with no violation", async ({ page, context }) => {
    test.setTimeout(120_000);
    const violations = watchCsp(context);
    await openDeck(page, "/decks/01-sample#/_a_plain_slide");
    const [popup] = await Promise.all([context.waitForEvent("page"), page.keyboard.press("s")]);
    await popup.setViewportSize({ width: 1100, height: 700 });
    // The popup's page (its inline script) runs: it connected and shows the notes.
    await expect(popup.locator(".speaker-controls-notes")).toContainText("Speaker notes for the plain slide.", { timeout: 30_000 });
    // The previews frame the deck itself (frame-ancestors 'self'): reveal.js is up in both.
    for (const preview of ["#current-slide iframe", "#upcoming-slide iframe"]) {
      const frame = popup.frameLocator(preview);
      await expect(frame.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 60_000 });
    }
    await expect(popup.frameLocator("#current-slide iframe").locator("section.present:not(.stack) > h2")).toHaveText("A plain slide", { timeout: 30_000 });
    // Moving on in the deck moves the speaker view (postMessage between the windows).
    // (two steps of the plain slide, then the next slide)
    for (let i = 0; i < 3; i++) await page.keyboard.press("ArrowRight");
    await expect(popup.frameLocator("#current-slide iframe").locator("section.present:not(.stack) > h2")).toHaveText("Code", { timeout: 30_000 });
    await popup.waitForTimeout(1000);
    await popup.screenshot({ path: path.join(SHOTS, "csp-speaker-view.png") });
    await popup.close();
    expect(violations).toEqual([]);
  });
});
