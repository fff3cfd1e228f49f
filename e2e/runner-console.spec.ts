/**
 * The runner's console: output over the limit keeps its first part and the limit message; a
 * 100k-line output is received whole but only the rows in view are in the page, and the view
 * follows the end; at least ten lines show on a 1280×800 slide without touching reveal.js's
 * controls; compile errors are underlined with a style the browser accepts.
 * How fast a big output renders is measured in bench/console-render.ts, not asserted here.
 */
import { expect, test, type Locator, type Page } from "@playwright/test";
import path from "node:path";

const SHOTS = path.resolve("e2e/screenshots");
const DECK = "/decks/08-console";

async function openSlide(page: Page, slide: string, viewport = { width: 1280, height: 800 }): Promise<Locator> {
  await page.setViewportSize(viewport);
  await page.goto(`${DECK}#/${slide}`);
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
  const runner = page.locator("section.present [data-runner]").first();
  await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
  return runner;
}

/** The console's rows that are inside its visible box. */
async function rowsInView(console: Locator): Promise<string[]> {
  return console.evaluate((el) => {
    const box = el.getBoundingClientRect();
    return [...el.querySelectorAll<HTMLElement>(".runner-console-row")]
      .filter((row) => {
        const r = row.getBoundingClientRect();
        return r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
      })
      .map((row) => (row.textContent ?? "").replace(/\n$/, ""));
  });
}

/** The runner is clear of reveal.js's arrows and slide number (the ones the page shows). */
async function expectClearOfControls(page: Page, runner: Locator): Promise<void> {
  const runnerBox = (await runner.boundingBox())!;
  const controls = await page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>(".reveal .controls button, .reveal .slide-number")]
      .filter((el) => {
        const s = getComputedStyle(el);
        return s.display !== "none" && s.visibility !== "hidden" && Number(s.opacity) > 0;
      })
      .map((el) => {
        const r = el.getBoundingClientRect();
        return { name: el.className, x: r.x, y: r.y, width: r.width, height: r.height };
      })
      .filter((b) => b.width > 0 && b.height > 0),
  );
  expect(controls.length).toBeGreaterThan(0);
  for (const box of controls) expect(overlaps(runnerBox, box), `runner overlaps ${box.name}`).toBe(false);
}

function overlaps(a: { x: number; y: number; width: number; height: number }, b: { x: number; y: number; width: number; height: number }) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

test("a 2 MiB flood shows its first part, then the output limit", async ({ page }) => {
  const runner = await openSlide(page, "_flood");
  await runner.getByRole("button", { name: /Run/ }).click();
  const console = runner.locator(".runner-console");
  await expect(runner.locator(".runner-status")).toContainText("output limit of 1 MiB exceeded", { timeout: 90_000 });
  // The first MiB is kept (16384 lines of 64 bytes), and the limit message comes after it.
  await expect.poll(async () => Number(await console.getAttribute("data-lines")), { timeout: 30_000 }).toBeGreaterThan(16_000);
  await expect.poll(async () => (await rowsInView(console)).at(-1), { timeout: 30_000 }).toContain("output limit of 1 MiB exceeded");
  await expectClearOfControls(page, runner);
  await page.screenshot({ path: path.join(SHOTS, "runner-flood-end.png") });
  await console.evaluate((el) => {
    el.scrollTop = 0;
  });
  await expect.poll(async () => (await rowsInView(console))[0], { timeout: 30_000 }).toBe(
    "flood line 000001 ..........................................",
  );
  await page.screenshot({ path: path.join(SHOTS, "runner-flood-start.png") });
});

test("100k lines are all received, only the rows in view are in the page, and the view follows the end", async ({ page }) => {
  const runner = await openSlide(page, "_many_lines");
  await runner.getByRole("button", { name: /Run/ }).click();
  const console = runner.locator(".runner-console");
  await expect(runner.locator(".runner-status")).toContainText("exited with code 0", { timeout: 90_000 });
  await expect(console).toHaveAttribute("data-lines", "100000", { timeout: 30_000 });
  // Following: the last line is the last row in view.
  await expect.poll(async () => (await rowsInView(console)).at(-1), { timeout: 30_000 }).toBe("100000");
  // Rendering only what is visible: a bounded number of rows in the page, not 100k.
  expect(await console.locator(".runner-console-row").count()).toBeLessThan(100);
  // Scrolled up, the view stays where the reader put it; scrolled back down, it follows again.
  await console.evaluate((el) => {
    el.scrollTop = el.scrollHeight / 2;
  });
  await expect.poll(async () => Number((await rowsInView(console))[0]), { timeout: 30_000 }).toBeGreaterThan(40_000);
  expect(Number((await rowsInView(console))[0])).toBeLessThan(60_000);
  await expectClearOfControls(page, runner);
  await page.screenshot({ path: path.join(SHOTS, "runner-100k.png") });
});

test("the console shows at least ten lines at 1280×800, the status line is visible, nothing touches the slide controls", async ({ page }) => {
  const runner = await openSlide(page, "_ten_lines");
  await runner.getByRole("button", { name: /Run/ }).click();
  const console = runner.locator(".runner-console");
  await expect(runner.locator(".runner-status")).toContainText("exited with code 0", { timeout: 60_000 });
  await expect.poll(async () => (await rowsInView(console)).length, { timeout: 30_000 }).toBeGreaterThanOrEqual(10);
  await expect.poll(async () => (await rowsInView(console)).at(-1), { timeout: 30_000 }).toBe("line 30");
  const status = runner.locator(".runner-status");
  await expect(status).toBeInViewport({ ratio: 1 });
  await expectClearOfControls(page, runner);
  await page.screenshot({ path: path.join(SHOTS, "runner-console-10-lines.png") });
});

test("a compile error underlines its range with a wave the browser draws", async ({ page }) => {
  const runner = await openSlide(page, "_underlines");
  await runner.getByRole("button", { name: /Run/ }).click();
  await expect(runner.locator(".runner-status")).toContainText("compilation failed", { timeout: 60_000 });
  const underline = runner.locator(".runner-underline-error");
  await expect(underline).toHaveCount(1, { timeout: 30_000 });
  const style = await underline.evaluate((el) => {
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return { image: s.backgroundImage, repeat: s.backgroundRepeat, width: r.width, height: r.height };
  });
  expect(style.image).toContain("data:image/svg+xml");
  expect(style.repeat).toContain("repeat-x");
  expect(style.width).toBeGreaterThan(10);
  expect(style.height).toBeGreaterThan(5);
  // Under the name gcc points at, on the scaled slide: its ends within a few pixels of the word's.
  const word = await runner.evaluate((root) => {
    const line = [...root.querySelectorAll(".ace_line")].find((l) => l.textContent?.includes("undeclared_name"))!;
    const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const at = node.nodeValue!.indexOf("undeclared_name");
      if (at < 0) continue;
      const range = document.createRange();
      range.setStart(node, at);
      range.setEnd(node, at + "undeclared_name".length);
      const r = range.getBoundingClientRect();
      return { left: r.left, right: r.right };
    }
    return null;
  });
  expect(word).not.toBeNull();
  const box = (await underline.boundingBox())!;
  expect(Math.abs(box.x - word!.left)).toBeLessThan(4);
  expect(Math.abs(box.x + box.width - word!.right)).toBeLessThan(4);
  await runner.locator(".runner-underline-error").scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(SHOTS, "runner-underline.png") });
});

test("on a full course slide, and with the input line open, the runner stays clear of the controls with its status in view", async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto("/decks/os-processes#/_wait_and_the_exit_status");
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
  let runner = page.locator("section.present [data-runner]").first();
  await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
  await runner.getByRole("button", { name: /Run/ }).click();
  await expect(runner.locator(".runner-status")).toContainText("exited with code 0", { timeout: 60_000 });
  await expect(runner.locator(".runner-console")).toContainText("child 2 was killed by signal 9", { timeout: 30_000 });
  await expect(runner.locator(".runner-status")).toBeInViewport({ ratio: 1 });
  await expect.poll(async () => (await runner.boundingBox())!.y, { timeout: 10_000 }).toBeGreaterThan(0);
  await expectClearOfControls(page, runner);
  await page.screenshot({ path: path.join(SHOTS, "runner-course-slide.png") });

  // A program waiting for input: the input line is open under the console.
  await page.goto("/decks/04-runnable#/_input");
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
  runner = page.locator("section.present [data-runner]").first();
  await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
  await runner.getByRole("button", { name: /Run/ }).click();
  await expect(runner.getByLabel("program input")).toBeVisible({ timeout: 60_000 });
  await expect(runner.locator(".runner-console")).toContainText("Your name?", { timeout: 30_000 });
  await expect(runner.locator(".runner-status")).toBeInViewport({ ratio: 1 });
  await expectClearOfControls(page, runner);
  await page.screenshot({ path: path.join(SHOTS, "runner-input-open.png") });
  await runner.getByRole("button", { name: /Stop/ }).click();
});

test("copying from the console gives the whole selection, also the rows that were never or no longer drawn", async ({ page, context }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  const runner = await openSlide(page, "_many_lines");
  await runner.getByRole("button", { name: /Run/ }).click();
  const console = runner.locator(".runner-console");
  await expect(runner.locator(".runner-status")).toContainText("exited with code 0", { timeout: 90_000 });
  await expect(console).toHaveAttribute("data-lines", "100000", { timeout: 30_000 });
  const clipboard = () => page.evaluate(() => navigator.clipboard.readText());

  // Ctrl+A in the console, Ctrl+C: all 100k lines, though fewer than 100 rows are in the page.
  await page.evaluate(() => navigator.clipboard.writeText("before"));
  await console.focus();
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Control+C");
  await expect.poll(async () => (await clipboard()).split("\n").length, { timeout: 10_000 }).toBe(100_000);
  const all = (await clipboard()).split("\n");
  expect(all[0]).toBe("1");
  expect(all[99_999]).toBe("100000");
  expect(all[50_000]).toBe("50001");
  expect(await console.locator(".runner-console-row").count()).toBeLessThan(100);

  // A selection made with the mouse at the top, then scrolled out of the page, still copies.
  await console.evaluate((el) => {
    el.scrollTop = 0;
  });
  await expect.poll(async () => (await rowsInView(console))[0], { timeout: 30_000 }).toBe("1");
  const row = (text: string) => console.locator(".runner-console-row", { hasText: new RegExp(`^${text}\\n?$`) });
  const from = (await row("2").boundingBox())!;
  const to = (await row("5").boundingBox())!;
  // A click first: pressing inside the select-all would drag the selected text instead.
  await page.mouse.click(to.x + to.width / 2, to.y + to.height / 2);
  await page.mouse.move(from.x + 1, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(to.x + to.width - 2, to.y + to.height / 2, { steps: 5 });
  await page.mouse.up();
  await console.evaluate((el) => {
    el.scrollTop = el.scrollHeight / 2;
  });
  await expect.poll(async () => Number((await rowsInView(console))[0]), { timeout: 30_000 }).toBeGreaterThan(40_000);
  await expect(row("2")).toHaveCount(0);
  await page.keyboard.press("Control+C");
  await expect.poll(clipboard, { timeout: 10_000 }).toBe("2\n3\n4\n5");
});
