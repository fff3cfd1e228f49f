/**
 * Runnable examples in real Chromium against the real server and sandbox: edit and run with
 * Ctrl+Enter, stdin from the input line and EOF, compile errors on the right line, Stop and limits,
 * editor keys versus slide keys, edits that survive a reload, Reset.
 */
import { expect, test, type Locator, type Page } from "@playwright/test";
import path from "node:path";

const SHOTS = path.resolve("e2e/screenshots");
const DECK = "/decks/04-runnable";

async function openSlide(page: Page, slide: string): Promise<Locator> {
  await page.goto(`${DECK}#/${slide}`);
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 20_000 });
  const present = page.locator(".reveal .slides section.present");
  // The editor is created once its slide is on screen.
  await expect(present.locator(".ace_editor").first()).toBeVisible({ timeout: 20_000 });
  return present;
}

/** Puts the cursor at the end of the editor's document. */
async function focusEditorEnd(runner: Locator, page: Page): Promise<void> {
  await runner.locator(".ace_content").click();
  await page.keyboard.press("Control+End");
}

test.describe("runnable examples", () => {
  test.beforeEach(async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test("edit the code, Ctrl+Enter, and the output streams in", async ({ page }) => {
    const slide = await openSlide(page, "_hello");
    const runner = slide.locator("[data-runner]");
    // The hidden include is not in the editor, but the program compiles with it.
    await expect(runner.locator(".ace_content")).not.toContainText("#include");
    await runner.locator(".ace_content").click();
    await page.keyboard.press("Control+Home");
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("End");
    await page.keyboard.type('\nprintf("edited\\n");');
    await page.keyboard.press("Control+Enter");
    await expect(runner.locator(".runner-console")).toContainText("hello, world\nedited", { timeout: 30_000 });
    await expect(runner.locator(".runner-status")).toContainText("exited with code 0");
    await page.screenshot({ path: path.join(SHOTS, "runner-hello.png") });

    // Show hidden lines reveals the include.
    await runner.getByRole("button", { name: "Show hidden lines" }).click();
    await expect(runner.locator(".ace_content")).toContainText("#include <stdio.h>");
  });

  test("answer the program's stdin from the input line", async ({ page }) => {
    const slide = await openSlide(page, "_input");
    const runner = slide.locator("[data-runner]");
    await runner.getByRole("button", { name: /Run/ }).click();
    // The prompt arrives before any input: stdout is line-buffered and flushed when the program reads.
    await expect(runner.locator(".runner-console")).toContainText("Your name?", { timeout: 30_000 });
    const input = runner.getByLabel("program input");
    await input.fill("Ada");
    await input.press("Enter");
    await expect(runner.locator(".runner-console")).toContainText("Hello, Ada", { timeout: 10_000 });
    await expect(runner.locator(".runner-status")).toContainText("exited with code 0");
    await page.screenshot({ path: path.join(SHOTS, "runner-stdin.png") });
  });

  test("a compile error is annotated on the right line and clicking it moves the cursor there", async ({ page }) => {
    const slide = await openSlide(page, "_broken");
    const runner = slide.locator("[data-runner]");
    await runner.getByRole("button", { name: /Run/ }).click();
    await expect(runner.locator(".runner-status")).toContainText("compilation failed", { timeout: 60_000 });
    // Line 4 uses the moved vector: error E0382 in the gutter of row 4.
    const errorCell = runner.locator(".ace_gutter-cell.ace_error");
    await expect(errorCell).toHaveCount(1);
    await expect(errorCell).toHaveText("4");
    await expect(runner.locator(".runner-underline-error")).toHaveCount(1);
    await runner.locator("button.runner-line.runner-error").first().click();
    await expect(runner.locator(".ace_gutter-active-line")).toHaveText("4");
    await page.screenshot({ path: path.join(SHOTS, "runner-compile-error.png") });
  });

  test("EOF ends the program's input: a read then sees end-of-file, with or without a last line", async ({ page }) => {
    const slide = await openSlide(page, "_input");
    const runner = slide.locator("[data-runner]");
    // EOF with nothing typed: fgets() sees end-of-file and the program returns 1. Without the
    // end-of-file it would wait until the wall-clock limit, which says so in other words.
    await runner.getByRole("button", { name: /Run/ }).click();
    await expect(runner.locator(".runner-console")).toContainText("Your name?", { timeout: 30_000 });
    await runner.getByRole("button", { name: "EOF" }).click();
    await expect(runner.locator(".runner-status")).toContainText(/^exited with code 1 · /, { timeout: 30_000 });
    // Typed text then Ctrl+D: the line goes first, then end-of-file.
    await runner.getByRole("button", { name: /Run/ }).click();
    await expect(runner.getByLabel("program input")).toBeVisible({ timeout: 30_000 });
    const input = runner.getByLabel("program input");
    await input.fill("Grace");
    await input.press("Control+d");
    await expect(runner.locator(".runner-console")).toContainText("Hello, Grace", { timeout: 30_000 });
    await expect(runner.locator(".runner-status")).toContainText(/^exited with code 0 · /, { timeout: 30_000 });
  });

  test("Stop ends an endless loop; the memory limit stops a greedy program", async ({ page }) => {
    const slide = await openSlide(page, "_forever");
    const [forever, greedy] = [slide.locator("[data-runner]").nth(0), slide.locator("[data-runner]").nth(1)];
    await forever.getByRole("button", { name: /Run/ }).click();
    await expect(forever.locator(".runner-status")).toContainText("running", { timeout: 30_000 });
    await forever.getByRole("button", { name: /Stop/ }).click();
    // The exact reason: the loop would also end at the CPU limit (5 s), in other words
    // ("killed: CPU time limit of 5 s exceeded"); only Stop says "killed on request".
    await expect(forever.locator(".runner-status")).toContainText(/^stopped: killed on request · \d+ ms wall/, { timeout: 30_000 });
    await expect(forever.locator(".runner-console")).toContainText("stopped: killed on request");
    await expect(forever.getByRole("button", { name: /Stop/ })).toBeDisabled();

    await greedy.getByRole("button", { name: /Run/ }).click();
    await expect(greedy.locator(".runner-status")).toContainText("memory limit", { timeout: 30_000 });
    await page.screenshot({ path: path.join(SHOTS, "runner-limits.png") });
  });

  test("in the editor, arrow keys move the cursor, not the slide; Esc gives the keys back", async ({ page }) => {
    const slide = await openSlide(page, "_hello");
    const runner = slide.locator("[data-runner]");
    const hash = () => new URL(page.url()).hash;
    await runner.locator(".ace_content").click();
    await page.keyboard.press("Control+Home");
    const before = hash();
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("Space");
    await page.keyboard.press("PageDown");
    expect(hash()).toBe(before);
    await expect(runner.locator(".ace_gutter-active-line")).not.toHaveText("1");
    await page.keyboard.press("Escape");
    // Esc left the editor without opening the overview.
    await expect(page.locator(".reveal.overview")).toHaveCount(0);
    await page.keyboard.press("ArrowRight");
    await expect.poll(hash).not.toBe(before);
  });

  test("an edit survives a reload and Reset brings back the author's code", async ({ page }) => {
    let slide = await openSlide(page, "_hello");
    let runner = slide.locator("[data-runner]");
    await focusEditorEnd(runner, page);
    await page.keyboard.type("\n// my note");
    await expect(runner.locator(".ace_content")).toContainText("// my note");
    await page.reload();
    slide = await openSlide(page, "_hello");
    runner = slide.locator("[data-runner]");
    await expect(runner.locator(".ace_content")).toContainText("// my note");
    await runner.getByRole("button", { name: /^Reset this example/ }).click();
    await expect(runner.locator(".ace_content")).not.toContainText("// my note");
    await page.reload();
    slide = await openSlide(page, "_hello");
    await expect(slide.locator("[data-runner] .ace_content")).not.toContainText("// my note");
  });

  test("print view shows the code without editor chrome", async ({ page }) => {
    await page.goto(`${DECK}?print-pdf`);
    await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 20_000 });
    await expect(page.locator(".runner-toolbar").first()).toBeHidden();
    await expect(page.locator(".pdf-page").nth(1)).toContainText("hello, world");
    await page.screenshot({ path: path.join(SHOTS, "runner-print.png"), fullPage: true });
  });
});

test.describe("runnable examples, read other ways", () => {
  test("a deck with 30 runnable blocks creates editors only for slides that were shown", async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto("/decks/05-many-runnable#/_example_10");
    await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 20_000 });
    await expect(page.locator("section.present .ace_editor")).toBeVisible({ timeout: 20_000 });
    expect(await page.locator("[data-runner]").count()).toBe(30);
    // The current slide's editor, perhaps a neighbour's: far fewer than 30.
    expect(await page.locator(".ace_editor").count()).toBeLessThanOrEqual(3);
    await page.keyboard.press("ArrowRight");
    await expect(page.locator("section.present .ace_editor")).toBeVisible({ timeout: 20_000 });
    await page.locator("section.present").getByRole("button", { name: /Run/ }).click();
    await expect(page.locator("section.present .runner-console")).toContainText("example 11", { timeout: 30_000 });
  });

  test("without JavaScript the code is still readable", async ({ browser }) => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(DECK);
    await expect(page.locator(".runnable").first()).toContainText('printf("hello, world\\n");');
    await context.close();
  });

  test("the scroll view shows the runners as part of the page", async ({ page }) => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${DECK}?view=scroll`);
    await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 20_000 });
    const runner = page.locator("[data-runner]").first();
    await runner.scrollIntoViewIfNeeded();
    await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 20_000 });
    await expect(runner).toContainText("hello, world");
    await page.screenshot({ path: path.join(SHOTS, "runner-scroll-phone.png") });
  });
});

test("kernel lab: Run builds the teaching kernel with the slide's file and streams its serial console", async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto("/decks/kernel-lab#/_the_tasks");
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 20_000 });
  const runner = page.locator("section.present [data-runner]");
  await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 20_000 });
  // Give task B a third step, then run: the new line comes from the kernel booted in QEMU.
  await runner.locator(".ace_content").click();
  await page.keyboard.press("Control+Home");
  const editor = runner.locator(".ace_content");
  await expect(editor).toContainText(`steps("B", 2)`);
  await page.evaluate(() => {
    // ACE's own API: replace the range text the way a student's typing would.
    const ace = (window as unknown as { ace: { edit(el: Element): { find(s: string): unknown; replace(s: string): void } } }).ace;
    const ed = ace.edit(document.querySelector("section.present .ace_editor")!);
    ed.find(`steps("B", 2)`);
    ed.replace(`steps("B", 3)`);
  });
  await runner.getByRole("button", { name: /Run/ }).click();
  await expect(runner.locator(".runner-console")).toContainText("task B: step 3", { timeout: 60_000 });
  await expect(runner.locator(".runner-status")).toContainText("kernel exited: success", { timeout: 30_000 });
  await page.screenshot({ path: path.join(SHOTS, "runner-kernel.png") });
});

test("a server restart cuts a run off with 'connection lost'; the page reconnects by itself", async ({ page }) => {
  // A server of its own, so that the test can stop and start it.
  const { spawn } = await import("node:child_process");
  const port = Number(process.env.E2E_PORT ?? 3210) + 1; // beside the suite's server, in the same range
  const start = () => {
    const child = spawn("node_modules/.bin/tsx", ["server/index.ts"], {
      env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", NODE_ENV: "production", CONTENT_DIR: "test/fixtures/e2e-content" },
      stdio: "ignore",
    });
    return child;
  };
  const waitUp = async () => {
    for (let i = 0; i < 100; i++) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/api/health`)).ok) return;
      } catch {
        /* not yet */
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error("server did not come up");
  };
  let server = start();
  try {
    await waitUp();
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`http://127.0.0.1:${port}${DECK}#/_forever`);
    const runner = page.locator("section.present [data-runner]").first();
    await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 20_000 });
    await runner.getByRole("button", { name: /Run/ }).click();
    await expect(runner.locator(".runner-status")).toContainText("running", { timeout: 30_000 });

    const exited = new Promise((resolve) => server.once("exit", resolve));
    // SIGINT stops at once (SIGTERM would drain: let the run end first, see e2e/replicas.spec.ts).
    server.kill("SIGINT");
    await exited;
    await expect(runner.locator(".runner-console")).toContainText("connection lost", { timeout: 10_000 });
    await expect(runner.getByRole("button", { name: /Stop/ })).toBeDisabled();

    server = start();
    await waitUp();
    // The same page, no reload: the next run goes through the new server.
    await page.locator("section.present [data-runner]").nth(1).getByRole("button", { name: /Run/ }).click();
    await expect(page.locator("section.present [data-runner]").nth(1).locator(".runner-status")).toContainText("memory limit", {
      timeout: 30_000,
    });
  } finally {
    // Stopped and gone before the test ends: its engine removes its prepared sandboxes on the way out.
    if (server.exitCode === null && server.signalCode === null) {
      const gone = new Promise((resolve) => server.once("exit", resolve));
      server.kill("SIGINT");
      await gone;
    }
  }
});
