/**
 * C and assembly on one slide, in real Chromium against the real server and sandbox: the group's
 * tabs, each file in its own ACE mode (NASM, GNU as, C), a run that links them, and an assembler
 * error marked on its line in the .asm tab. Served from test/fixtures/e2e-content (a link to the
 * sample course's calling-conventions deck).
 */
import { expect, test, type Locator, type Page } from "@playwright/test";
import path from "node:path";

const SHOTS = path.resolve("e2e/screenshots");
const DECK = "/decks/calling-conventions";

async function openSlide(page: Page, slide: string): Promise<Locator> {
  await page.goto(`${DECK}#/${slide}`);
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
  const present = page.locator(".reveal .slides section.present:not(.stack)");
  await expect(present.locator(".ace_editor").first()).toBeVisible({ timeout: 30_000 });
  return present;
}

/** The ACE mode of the visible editor of a runner. */
async function visibleMode(page: Page): Promise<string> {
  return page.evaluate(() => {
    const el = [...document.querySelectorAll("section.present:not(.stack) [data-runner] .runner-editor")].find((e) => !(e as HTMLElement).hidden);
    const ace = (window as unknown as { ace: { edit(el: Element): { session: { getMode(): { $id: string } } } } }).ace;
    return ace.edit(el!.querySelector(".ace_editor") ?? el!).session.getMode().$id;
  });
}

test.beforeEach(async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
});

test("a C + NASM group: two tabs in their own modes, Run links them, an asm error is marked on its line", async ({ page }) => {
  const slide = await openSlide(page, "_maximum_in_assembly_called_from_c");
  const runner = slide.locator("[data-runner]");
  await expect(runner.locator(".runner-tab")).toHaveText(["main.c", "maximum.asm"]);
  await expect.poll(() => visibleMode(page), { timeout: 30_000 }).toBe("ace/mode/c_cpp");

  await runner.getByRole("button", { name: /Run/ }).click();
  await expect(runner.locator(".runner-console")).toContainText("maximum(3, 7)   = 7\nmaximum(-2, -9) = -2", { timeout: 60_000 });
  await expect(runner.locator(".runner-status")).toContainText("exited with code 0", { timeout: 30_000 });

  // The assembly tab: NASM highlighting, then a typo in an instruction.
  await runner.locator(".runner-tab", { hasText: "maximum.asm" }).click();
  await expect.poll(() => visibleMode(page), { timeout: 30_000 }).toBe("ace/mode/assembly_x86");
  const asmEditor = runner.locator(".runner-editor:not([hidden])");
  await expect(asmEditor.locator(".ace_keyword").first()).toBeVisible();
  await page.evaluate(() => {
    const el = [...document.querySelectorAll("section.present:not(.stack) [data-runner] .runner-editor")].find((e) => !(e as HTMLElement).hidden)!;
    const ace = (window as unknown as { ace: { edit(el: Element): { find(s: string): unknown; replace(s: string): void } } }).ace;
    const ed = ace.edit(el.querySelector(".ace_editor") ?? el);
    ed.find("cmovl rax, rsi");
    ed.replace("cmovl rax, rsi, rdx");
  });
  await page.screenshot({ path: path.join(SHOTS, "runner-asm-edit.png") });
  await runner.getByRole("button", { name: /Run/ }).click();
  await expect(runner.locator(".runner-status")).toContainText("compilation failed", { timeout: 60_000 });
  await expect(runner.locator(".runner-console")).toContainText("maximum.asm:9: error:");
  const errorCell = asmEditor.locator(".ace_gutter-cell.ace_error");
  await expect(errorCell).toHaveCount(1);
  await expect(errorCell).toHaveText("9");
  await page.screenshot({ path: path.join(SHOTS, "runner-asm-error.png") });
});

test("GNU as files get their own highlighting and link with C", async ({ page }) => {
  const slide = await openSlide(page, "_the_same_function_in_gnu_as");
  const runner = slide.locator("[data-runner]");
  await runner.locator(".runner-tab", { hasText: "maximum.s" }).click();
  await expect.poll(() => visibleMode(page), { timeout: 30_000 }).toBe("ace/mode/gas");
  const editor = runner.locator(".runner-editor:not([hidden])");
  await expect(editor.locator(".ace_variable").first()).toHaveText("%rdi");
  await runner.getByRole("button", { name: /Run/ }).click();
  await expect(runner.locator(".runner-console")).toContainText("40", { timeout: 60_000 });
  await expect(runner.locator(".runner-status")).toContainText("exited with code 0", { timeout: 30_000 });
  // The editor's text has no final newline; GNU as gets one, so it has nothing to warn about.
  await expect(runner.locator(".runner-console")).not.toContainText("Warning");
  await page.screenshot({ path: path.join(SHOTS, "runner-gas.png") });
});
