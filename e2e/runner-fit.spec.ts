/**
 * The runner as students and lecturers meet it (issue 14): the whole example on the slide when it
 * has the room (after fragments, on a phone, in print), keyboard and screen-reader use, the edited
 * mark and Reset all, sizes on a phone. Layout is measured; nothing waits on wall-clock time.
 */
import { expect, test, type Locator, type Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const SHOTS = path.resolve("e2e/screenshots");
const FORK = "/decks/os-processes#/_fork_one_call_two_returns";

async function ready(page: Page): Promise<void> {
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
}

/** Rows of the editor's code, and the rows ACE renders (only those on screen have a gutter cell). */
async function editorRows(runner: Locator): Promise<{ total: number; rendered: number }> {
  return runner.locator(".ace_editor").evaluate((el) => {
    const ace = (window as unknown as { ace: { edit(el: Element): { session: { getLength(): number } } } }).ace;
    return { total: ace.edit(el).session.getLength(), rendered: el.querySelectorAll(".ace_gutter-cell").length };
  });
}

test.describe("the whole example on the slide", () => {
  test("the fork slide shows all its lines at 1280×800 after its fragments are revealed", async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(FORK);
    await ready(page);
    const runner = page.locator("section.present:not(.stack) [data-runner]");
    await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
    // Reveal the three bullets, as the lecturer does.
    const bullets = page.locator("section.present:not(.stack) .fragment");
    const count = await bullets.count();
    expect(count).toBeGreaterThan(0);
    for (let i = 0; i < count; i++) await page.keyboard.press("ArrowRight");
    await expect(page.locator("section.present:not(.stack) .fragment.visible")).toHaveCount(count);
    // The point of the slide is at its end: the parent's waitpid and printf.
    await expect(runner.locator(".ace_content")).toContainText("waitpid(pid, NULL, 0);", { timeout: 10_000 });
    await expect(runner.locator(".ace_content")).toContainText('printf("parent: fork returned');
    await expect.poll(async () => editorRows(runner), { timeout: 10_000 }).toEqual({ total: 15, rendered: 15 });
    await expect(runner.locator(".runner-more")).toHaveCount(0);
    // Nothing of the slide runs off its bottom.
    const overflow = await page.locator("section.present:not(.stack)").evaluate((s) => s.scrollHeight - Number.parseFloat((s.closest(".slides") as HTMLElement).style.height));
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: path.join(SHOTS, "fit-fork-1280.png") });
  });

  test("the fit ignores where reveal.js's arrows are mid-animation (they slide in and bounce by transforms)", async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    // A vertical slide (its up arrow shows) whose 22-line example fills the room above the arrows.
    await page.goto("/decks/os-processes#/_fork_exec_wait_a_shell");
    await ready(page);
    const runner = page.locator("section.present:not(.stack) [data-runner]");
    await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
    await expect.poll(async () => (await editorRows(runner)).rendered, { timeout: 10_000 }).toBe(22);
    await expect(page.locator(".reveal .controls .navigate-up.enabled")).toHaveCount(1);
    // Move the up arrow by a transform, as its slide-in and bounce animations do (here far enough to
    // be over the example), and make the slide fit again: the arrow's place is its layout box, so
    // the example keeps all its rows.
    await page.evaluate(() => {
      const up = document.querySelector<HTMLElement>(".reveal .controls .navigate-up")!;
      up.style.transition = "none";
      up.style.animation = "none";
      up.style.transform = "translate(-600px, -60px)";
      window.dispatchEvent(new Event("resize"));
    });
    // A later fit that would give rows up would do so within a few frames; wait for several.
    await page.evaluate(() => new Promise<void>((done) => {
      let n = 0;
      const tick = () => (++n >= 10 ? done() : requestAnimationFrame(tick));
      requestAnimationFrame(tick);
    }));
    expect((await editorRows(runner)).rendered).toBe(22);
    await expect(runner.locator(".runner-more")).toHaveCount(0);
  });

  test("a slide without room says how many lines are below and scrolls", async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    // Another example's code on the same slide: the shared height no longer holds all of it.
    await page.goto("/decks/04-runnable#/_hello");
    await ready(page);
    const runner = page.locator("section.present:not(.stack) [data-runner]");
    await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
    await runner.locator(".ace_content").click();
    await page.keyboard.press("Control+End");
    for (let i = 0; i < 40; i++) await page.keyboard.press("Enter");
    await page.keyboard.type("// the end");
    await expect(runner.locator(".runner-more")).toContainText(/\d+ more lines below: scroll the editor/, { timeout: 10_000 });
    const overflow = await page.locator("section.present:not(.stack)").evaluate((s) => s.scrollHeight - Number.parseFloat((s.closest(".slides") as HTMLElement).style.height));
    expect(overflow).toBeLessThanOrEqual(0);
  });

  test("on a 390×844 phone the fork slide shows every line, fits the width, and its page has no blank gaps", async ({ page }) => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto("/decks/os-processes?view=scroll");
    await ready(page);
    const slide = page.locator("section#_fork_one_call_two_returns");
    await slide.scrollIntoViewIfNeeded();
    const runner = slide.locator("[data-runner]");
    await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
    await expect.poll(async () => editorRows(runner), { timeout: 10_000 }).toEqual({ total: 15, rendered: 15 });
    // Every page as tall as its slide: not clipped, and no screens of blank space (fragments
    // are all shown on a phone instead of one scroll-screen each).
    const largestGap = () =>
      page.evaluate(() =>
        Math.max(
          ...[...document.querySelectorAll<HTMLElement>(".scroll-page")].map((p) => {
            const s = p.querySelector("section")!;
            const scale = s.getBoundingClientRect().height / s.offsetHeight;
            return Math.abs(p.offsetHeight - s.scrollHeight * scale);
          }),
        ),
      );
    await expect.poll(largestGap, { timeout: 10_000 }).toBeLessThanOrEqual(4);
    const box = (await slide.boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(390);
    // Tap targets: the Run button is at least 24×24 CSS pixels.
    const run = (await runner.getByRole("button", { name: "Run the example" }).boundingBox())!;
    expect(run.width).toBeGreaterThanOrEqual(24);
    expect(run.height).toBeGreaterThanOrEqual(24);
    // The keys' hint and the status read as well as at 1280 wide (rendered pixels, after the page's scale).
    for (const part of [runner.locator(".runner-hint"), runner.locator(".runner-status")]) {
      const px = await part.evaluate((el) => Number.parseFloat(getComputedStyle(el).fontSize) * (el.getBoundingClientRect().width / (el as HTMLElement).offsetWidth));
      expect(px).toBeGreaterThanOrEqual(14);
    }
    await runner.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SHOTS, "fit-fork-phone.png") });
  });

  test("?print-pdf prints every code line, one page per slide", async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto("/decks/os-processes?print-pdf");
    await ready(page);
    await expect(page.locator("html")).toHaveClass(/reveal-print/);
    const slides = await page.locator(".slides section:not(.stack)").count();
    await expect(page.locator(".pdf-page")).toHaveCount(slides);
    // Each slide is one page, but for an example whose author fixed a scrolling height (lines=):
    // it prints all its code, over a second page if need be.
    const extra = await page.evaluate(() => {
      const pages = [...document.querySelectorAll<HTMLElement>(".pdf-page")];
      const one = Math.min(...pages.map((p) => p.offsetHeight));
      const fork = document.querySelector("section#_fork_one_call_two_returns")!.closest<HTMLElement>(".pdf-page")!;
      return { fork: fork.offsetHeight / one, total: pages.reduce((n, p) => n + Math.round(p.offsetHeight / one), 0) - pages.length };
    });
    expect(extra.fork).toBe(1);
    // The fork example's code is all there (the static copy of the code prints, not an editor).
    const code = page.locator("section#_fork_one_call_two_returns .runnable pre");
    await expect(code).toContainText('printf("parent: fork returned');
    expect(((await code.textContent()) ?? "").trimEnd().split("\n")).toHaveLength(15);
    // The PDF Chromium prints: one page per slide.
    const pdf = await page.pdf({ preferCSSPageSize: true, printBackground: true });
    const pages = pdf.toString("latin1").match(/\/Type\s*\/Page[^s]/g) ?? [];
    expect(pages).toHaveLength(slides + extra.total);
    const file = path.join(SHOTS, "fit-print.pdf");
    fs.mkdirSync(SHOTS, { recursive: true });
    fs.writeFileSync(file, pdf);
    try {
      // For a human to look at; pdftoppm (poppler-utils) may be missing.
      execFileSync("pdftoppm", ["-png", "-r", "40", "-f", "6", "-l", "6", file, path.join(SHOTS, "fit-print")], { timeout: 60_000 });
    } catch {
      /* no pdftoppm */
    }
  });
});

test.describe("keyboard, screen readers, edits", () => {
  test.beforeEach(async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test("Tab reaches the labelled editor, Esc then Tab leaves it, Ctrl+Enter on the slide runs the example", async ({ page }) => {
    await page.goto("/decks/04-runnable#/_hello");
    await ready(page);
    const runner = page.locator("section.present:not(.stack) [data-runner]");
    await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
    const run = runner.getByRole("button", { name: "Run the example" });
    await expect(run).toBeEnabled();
    await expect(runner.getByRole("button", { name: "Stop the running program" })).toBeDisabled();
    await run.focus();
    // Stop and Reset are disabled (nothing runs, nothing edited): Tab goes on into the editor.
    await page.keyboard.press("Tab");
    const editor = runner.getByRole("textbox");
    await expect(editor).toBeFocused();
    await expect(editor).toHaveAccessibleName(/C code of the example; Escape, then Tab, leaves the editor/);
    await expect(editor).toHaveAccessibleDescription(/Esc then Tab leaves the editor · Ctrl\+Enter runs/);
    const hint = runner.locator(".runner-hint");
    await expect(hint).toBeVisible();
    const hintPx = await hint.evaluate((el) => Number.parseFloat(getComputedStyle(el).fontSize) * (el.getBoundingClientRect().height / (el as HTMLElement).offsetHeight));
    expect(hintPx).toBeGreaterThanOrEqual(14);
    // In the editor Tab indents; Esc, then Tab, leaves the runner.
    await page.keyboard.press("Escape");
    await expect(hint).toBeFocused();
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.closest("[data-runner]") === null)).toBe(true);
    await expect(page.locator(".reveal.overview")).toHaveCount(0);
    // A key on the slide, outside the editor, runs its example.
    await page.keyboard.press("Control+Enter");
    await expect(runner.locator(".runner-console")).toContainText("hello, world", { timeout: 60_000 });
  });

  test("an edited example is marked, its expected output says whose it is, and Reset all restores the deck", async ({ page }) => {
    page.on("dialog", (dialog) => void dialog.accept());
    await page.goto("/decks/04-runnable#/_hello");
    await ready(page);
    let runner = page.locator("section.present:not(.stack) [data-runner]");
    await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
    await expect(runner.locator(".runner-edited")).toHaveCount(0);
    await runner.locator(".ace_content").click();
    await page.keyboard.press("Control+End");
    await page.keyboard.type("\n// mine");
    await expect(runner.locator(".runner-edited")).toHaveText("edited");
    await expect(page.locator("section.present .output")).toContainText("Expected output of the author's version; your code is edited.");
    await page.screenshot({ path: path.join(SHOTS, "runner-edited.png") });

    // A second example of the deck, edited too; after a reload both are still marked.
    await page.goto("/decks/04-runnable#/_input");
    await page.reload();
    await ready(page);
    runner = page.locator("section.present:not(.stack) [data-runner]");
    await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
    await runner.locator(".ace_content").click();
    await page.keyboard.press("Control+End");
    await page.keyboard.type("\n// mine too");
    await expect(runner.locator(".runner-edited")).toBeVisible();
    await page.goto("/decks/04-runnable#/_hello");
    await page.reload();
    await ready(page);
    runner = page.locator("section.present:not(.stack) [data-runner]");
    await expect(runner.locator(".runner-edited")).toBeVisible({ timeout: 30_000 });
    await expect(runner.locator(".ace_content")).toContainText("// mine");

    await runner.getByRole("button", { name: /^Reset all edited examples of this deck \(2\)/ }).click();
    await expect(runner.locator(".runner-edited")).toHaveCount(0);
    await expect(runner.locator(".ace_content")).not.toContainText("// mine");
    await expect(page.locator("section.present .output .output-note")).toHaveCount(0);
    await page.goto("/decks/04-runnable#/_input");
    await page.reload();
    await ready(page);
    runner = page.locator("section.present:not(.stack) [data-runner]");
    await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
    await expect(runner.locator(".ace_content")).not.toContainText("// mine too");
    await expect(runner.locator(".runner-edited")).toHaveCount(0);
  });
});

test("the speaker view's Upcoming label sits above the next slide's preview, not over its heading", async ({ page, context }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto("/decks/os-processes#/_what_is_a_process");
  await ready(page);
  const [popup] = await Promise.all([context.waitForEvent("page"), page.keyboard.press("s")]);
  await popup.setViewportSize({ width: 1100, height: 700 });
  const label = popup.locator("#upcoming-slide .label");
  const preview = popup.locator("#upcoming-slide iframe");
  await expect(label).toBeVisible({ timeout: 30_000 });
  await expect(preview).toBeAttached({ timeout: 30_000 });
  await expect
    .poll(async () => {
      const [l, f] = [await label.boundingBox(), await preview.boundingBox()];
      return l && f ? Math.round(f.y - (l.y + l.height)) : -1;
    }, { timeout: 10_000 })
    .toBeGreaterThanOrEqual(0);
  await popup.screenshot({ path: path.join(SHOTS, "speaker-view-upcoming.png") });
  await popup.close();
});
