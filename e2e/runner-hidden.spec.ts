/**
 * Hidden lines survive any edit: replacing the whole buffer, a paste over a selection that spans
 * a hidden group, undo and redo, Reset. What runs is the student's visible code with the hidden
 * lines where the author put them (the fixture's `twice` and `#include` are hidden).
 */
import { expect, test, type Locator, type Page } from "@playwright/test";
import path from "node:path";

const SHOTS = path.resolve("e2e/screenshots");

async function openHidden(page: Page): Promise<Locator> {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto("/decks/08-console#/_hidden_lines");
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
  const runner = page.locator("section.present [data-runner]").first();
  await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
  await expect(runner.locator(".ace_content")).not.toContainText("twice(int x)");
  return runner;
}

/** Clicks into the editor until it has the keyboard (after a run the console grows and the editor moves). */
async function focusEditor(runner: Locator): Promise<void> {
  await expect(async () => {
    await runner.locator(".ace_content").click();
    await expect(runner.locator("textarea.ace_text-input")).toBeFocused({ timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
}

async function runAndExpect(runner: Locator, output: string): Promise<void> {
  await runner.getByRole("button", { name: /Run/ }).click();
  await expect(runner.locator(".runner-status")).toContainText("exited with code 0", { timeout: 60_000 });
  await expect(runner.locator(".runner-console")).toHaveText(output, { timeout: 30_000 });
}

test.beforeEach(async ({ context }) => {
  // Each test starts from the author's code (edits are kept in localStorage per origin).
  await context.clearCookies();
});

test("Ctrl+A and typing a new program keeps the hidden prelude first and the postlude last", async ({ page }) => {
  const runner = await openHidden(page);
  await page.evaluate(() => localStorage.clear());
  await focusEditor(runner);
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  // One line: the editor closes brackets by itself, and typing the closer steps over it.
  await page.keyboard.type('int value(void) { return 5; } int main(void) { printf("%d\\n", twice(value())); return 0; }');
  await expect(runner.locator(".ace_content")).toContainText("return 5;");
  await runAndExpect(runner, "10");
  await page.screenshot({ path: path.join(SHOTS, "runner-hidden-replaced.png") });
});

test("a paste over a hidden group, then undo, redo and Reset: each runs with the hidden lines in place", async ({ page, context }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  const runner = await openHidden(page);
  await page.evaluate(() => localStorage.clear());
  await focusEditor(runner);
  // From the end of value()'s closing brace (row 3) to the end: the hidden helper group that
  // stands before main() is inside the selection.
  await page.keyboard.press("Control+Home");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("End");
  await page.keyboard.press("Control+Shift+End");
  await page.evaluate(() => navigator.clipboard.writeText('\nint main(void) {\n    printf("%d!\\n", twice(value()) + 1);\n    return 0;\n}'));
  await page.keyboard.press("Control+V");
  await expect(runner.locator(".ace_content")).toContainText("+ 1");
  await runAndExpect(runner, "43!");

  await focusEditor(runner);
  await page.keyboard.press("Control+Z");
  await expect(runner.locator(".ace_content")).not.toContainText("+ 1");
  await runAndExpect(runner, "42");

  await focusEditor(runner);
  await page.keyboard.press("Control+Shift+Z");
  await expect(runner.locator(".ace_content")).toContainText("+ 1");
  await runAndExpect(runner, "43!");

  // A second Ctrl+A replacement, undone: the groups come back to where they were.
  await focusEditor(runner);
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  await page.keyboard.press("Control+Z");
  await runAndExpect(runner, "43!");

  await runner.getByRole("button", { name: /Reset/ }).click();
  await expect(runner.locator(".ace_content")).toContainText("return 21;");
  await runAndExpect(runner, "42");
  // Show hidden lines: the author's order, hidden lines where they were written.
  await runner.getByRole("button", { name: "Show hidden lines" }).click();
  await expect(runner.locator(".ace_content")).toContainText("static int unused_helper(void)");
  const text = (await runner.locator(".ace_content").textContent()) ?? "";
  expect(text.indexOf("twice(int x)")).toBeLessThan(text.indexOf("int value(void)"));
  expect(text.indexOf("unused_helper(void)")).toBeGreaterThan(text.indexOf("return 21;"));
  expect(text.indexOf("unused_helper(void)")).toBeLessThan(text.indexOf("int main(void)"));
});
