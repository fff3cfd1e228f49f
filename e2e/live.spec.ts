/**
 * The live lecture in real Chromium against the real server, with a browser context per person:
 * the lecturer (presenter view, signed in) and students. The student follows slide and fragment
 * changes, detaches and re-follows, a late joiner lands on the current slide, the lecturer's
 * edited code and run output appear at the block and can be copied in while the student's own
 * edit stays restorable, a forged control message is refused, the lecturer's reload keeps the session.
 */
import { expect, test, type Page } from "@playwright/test";
import path from "node:path";
import { DECK, lecturerContext, openDeck, openPresenter, signInThroughPage, startLive, where } from "./live-helpers";

const SHOTS = path.resolve("e2e/screenshots");
const presenterSlide = (page: Page) => where(page, ".presenter-current");

async function endLive(page: Page): Promise<void> {
  const end = page.getByRole("button", { name: "End live session" });
  if (await end.isVisible()) await end.click();
  await expect(page.locator("[data-live-status=off]")).toBeVisible({ timeout: 30_000 });
}

/** Keys go to the presenter's slides, not to a focused button or editor. */
async function presenterKey(page: Page, key: string): Promise<void> {
  await page.locator(".presenter-notes").click();
  await page.keyboard.press(key);
}

test.describe("live lecture", () => {

  test("sign-in: a wrong token is refused in words, the right one signs in; sign-out signs out", async ({ page }) => {
    await page.goto("/lecturer");
    await page.getByLabel("Lecturer token").fill("not the token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.locator(".lecturer-error")).toHaveText(/wrong lecturer token|too many wrong tries/, { timeout: 30_000 });
    await signInThroughPage(page);
    await page.screenshot({ path: path.join(SHOTS, "live-lecturer-home.png") });
    // The cookie is HttpOnly: the page's scripts cannot read it.
    expect(await page.evaluate(() => document.cookie)).not.toContain("osbe_lecturer");
    const cookie = (await page.context().cookies()).find((c) => c.name === "osbe_lecturer");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict" });
    await page.getByRole("button", { name: "Sign out" }).click();
    await expect(page.getByLabel("Lecturer token")).toBeVisible();
    const me = await page.request.get("/api/lecturer/me", { headers: { cookie: `osbe_lecturer=${cookie!.value}` } });
    expect(await me.json()).toEqual({ signedIn: false });
  });

  test("students follow slides and fragments, detach and re-follow; a late joiner lands on the current slide", async ({ browser, baseURL }) => {
    const lecturerCtx = await lecturerContext(browser, baseURL!);
    const studentCtx = await browser.newContext({ baseURL, viewport: { width: 1280, height: 800 } });
    const lecturer = await lecturerCtx.newPage();
    const student = await studentCtx.newPage();
    try {
      await openPresenter(lecturer);
      await startLive(lecturer);
      await openDeck(student);
      await expect(student.locator(".live-bar[data-live=following]")).toBeVisible({ timeout: 30_000 });
      await expect(student.getByText("Following the lecturer")).toBeVisible();

      // Presenter view: notes of the current slide, the next slide, counts, join link and QR code.
      await expect.poll(() => where(student), { timeout: 30_000 }).toEqual({ title: "Live lecture", fragments: 0 });
      await presenterKey(lecturer, "ArrowRight");
      await expect.poll(() => where(student), { timeout: 30_000 }).toEqual({ title: "Welcome", fragments: 0 });
      await expect(lecturer.locator("[data-presenter-notes]")).toContainText("greet the room");
      await presenterKey(lecturer, "ArrowRight");
      await expect.poll(() => presenterSlide(lecturer), { timeout: 30_000 }).toEqual({ title: "Steps", fragments: 0 });
      await expect(lecturer.locator("[data-presenter-notes]")).toContainText("Reveal the points one by one");
      await expect(lecturer.locator("[data-presenter-next] section.present").first()).toContainText("first point");
      await expect(lecturer.locator("[data-counts]")).toHaveText("1 following · 0 detached", { timeout: 30_000 });
      await expect(lecturer.locator(".presenter-join img[data-join-qr]")).toBeVisible();
      await expect(lecturer.locator(".presenter-join a")).toHaveText(new RegExp(`/decks/${DECK}$`));

      // Slide and fragment changes reach the student.
      await expect.poll(() => where(student), { timeout: 30_000 }).toEqual({ title: "Steps", fragments: 0 });
      await presenterKey(lecturer, "ArrowRight");
      await expect.poll(() => where(student), { timeout: 30_000 }).toEqual({ title: "Steps", fragments: 1 });
      await presenterKey(lecturer, "ArrowRight");
      await expect.poll(() => where(student), { timeout: 30_000 }).toEqual({ title: "Steps", fragments: 2 });
      await lecturer.screenshot({ path: path.join(SHOTS, "live-presenter.png") });

      // The student navigates away: detached, and the lecturer's count says so.
      await student.keyboard.press("ArrowLeft");
      await student.keyboard.press("ArrowLeft");
      await student.keyboard.press("ArrowLeft");
      await expect(student.locator(".live-bar[data-live=detached]")).toBeVisible({ timeout: 30_000 });
      await expect(lecturer.locator("[data-counts]")).toHaveText("0 following · 1 detached", { timeout: 30_000 });
      await student.screenshot({ path: path.join(SHOTS, "live-student-detached.png") });
      // Detached, the student stays where they are while the lecturer moves on.
      await presenterKey(lecturer, "ArrowRight");
      await expect.poll(() => presenterSlide(lecturer), { timeout: 30_000 }).toEqual({ title: "Example", fragments: 0 });
      expect((await where(student)).title).toBe("Welcome");
      // One key re-follows.
      await student.keyboard.press("r");
      await expect.poll(() => where(student), { timeout: 30_000 }).toEqual({ title: "Example", fragments: 0 });
      await expect(student.locator(".live-bar[data-live=following]")).toBeVisible();
      await expect(lecturer.locator("[data-counts]")).toHaveText("1 following · 0 detached", { timeout: 30_000 });
      // And one click does too.
      await student.keyboard.press("ArrowLeft");
      await expect(student.locator(".live-bar[data-live=detached]")).toBeVisible({ timeout: 30_000 });
      await student.getByRole("button", { name: /Follow the lecturer/ }).click();
      await expect.poll(() => where(student), { timeout: 30_000 }).toEqual({ title: "Example", fragments: 0 });

      // A late joiner (a link to another slide) lands on the lecturer's slide.
      const lateCtx = await browser.newContext({ baseURL, viewport: { width: 390, height: 844 } });
      const late = await lateCtx.newPage();
      await openDeck(late, "#/_welcome");
      await expect(late.locator(".live-bar[data-live=following]")).toBeVisible({ timeout: 30_000 });
      await expect.poll(async () => (await late.locator(".reveal .slides section").filter({ hasText: "hello, room" }).first().isVisible()), { timeout: 30_000 }).toBe(true);
      await expect(lecturer.locator("[data-counts]")).toHaveText("2 following · 0 detached", { timeout: 30_000 });
      await late.screenshot({ path: path.join(SHOTS, "live-late-joiner-phone.png") });

      // The join code on the room's slide.
      const joinCode = lecturer.getByLabel(/Join code on the/);
      await joinCode.click();
      await expect(joinCode).toBeChecked({ timeout: 30_000 });
      await expect(student.locator("[data-live-join] img[data-join-qr]")).toBeVisible({ timeout: 30_000 });
      await student.screenshot({ path: path.join(SHOTS, "live-join-code.png") });
      await joinCode.click();
      await expect(joinCode).not.toBeChecked({ timeout: 30_000 });
      await expect(student.locator("[data-live-join]")).toHaveCount(0, { timeout: 30_000 });

      await endLive(lecturer);
      await expect(student.getByText("The lecturer ended the live session.")).toBeVisible({ timeout: 30_000 });
      await lateCtx.close();
    } finally {
      await endLive(lecturer).catch(() => {});
      await lecturerCtx.close();
      await studentCtx.close();
    }
  });

  test("the lecturer's edits and streamed run output appear at the block; the student copies them in and can restore their own", async ({
    browser,
    baseURL,
  }) => {
    const lecturerCtx = await lecturerContext(browser, baseURL!);
    const studentCtx = await browser.newContext({ baseURL, viewport: { width: 1280, height: 800 } });
    const lecturer = await lecturerCtx.newPage();
    const student = await studentCtx.newPage();
    try {
      await openPresenter(lecturer);
      await startLive(lecturer);
      await presenterKey(lecturer, "End");
      await presenterKey(lecturer, "ArrowLeft");
      await expect.poll(() => presenterSlide(lecturer), { timeout: 30_000 }).toEqual({ title: "Example", fragments: 0 });

      await openDeck(student);
      const studentRunner = student.locator("section.present .runnable");
      await expect(studentRunner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
      // The student's own edit first.
      await studentRunner.locator(".ace_content").click();
      await student.keyboard.press("Control+End");
      await student.keyboard.type("\n// my own note");
      await student.keyboard.press("Escape");

      // The projector: the deck itself in the lecturer's browser, following the presenter view.
      const projector = await lecturerCtx.newPage();
      await openDeck(projector);
      const projectorRunner = projector.locator("section.present [data-runner]");
      await expect(projectorRunner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });

      // The lecturer edits and runs on the presenter view.
      const lecturerRunner = lecturer.locator(".presenter-current section.present [data-runner]");
      await expect(lecturerRunner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
      await lecturerRunner.locator(".ace_content").click();
      await lecturer.keyboard.press("Control+Home");
      await lecturer.keyboard.press("ArrowDown");
      await lecturer.keyboard.press("ArrowDown");
      await lecturer.keyboard.press("End");
      await lecturer.keyboard.type('\n    printf("edited live\\n");');

      // The student sees the lecturer's version at that block, beside their own.
      await expect(studentRunner.getByRole("tab", { name: /Lecturer/ })).toBeVisible({ timeout: 30_000 });
      await studentRunner.getByRole("tab", { name: /Lecturer/ }).click();
      await expect(studentRunner.locator("[data-live-code]")).toContainText('printf("edited live\\n");', { timeout: 30_000 });

      // The projector shows the lecturer's code in its editor, as typed on the laptop.
      await expect(projectorRunner.locator(".ace_content")).toContainText('printf("edited live\\n");', { timeout: 30_000 });
      await lecturer.keyboard.press("Control+Enter");
      await expect(studentRunner.locator("[data-live-output]")).toContainText("hello, room\nedited live", { timeout: 60_000 });
      await expect(studentRunner.locator("[data-live-run-status]")).toContainText("exited with code 0", { timeout: 30_000 });
      await expect(lecturerRunner.locator(".runner-console")).toContainText("edited live");
      await student.screenshot({ path: path.join(SHOTS, "live-mirrored-code.png") });

      // Copy it into the student's editor; the student's edit is kept to restore.
      await studentRunner.getByRole("button", { name: "Copy into my editor" }).click();
      await expect(studentRunner.locator("[data-runner] .ace_content")).toContainText('printf("edited live\\n");');
      await expect(studentRunner.locator("[data-runner] .ace_content")).not.toContainText("my own note");
      await studentRunner.locator("[data-runner]").getByRole("button", { name: /Run/ }).click();
      await expect(studentRunner.locator("[data-runner] .runner-console")).toContainText("edited live", { timeout: 60_000 });
      // The copy survives a reload like any edit; so does the version to restore.
      await student.reload();
      await expect(student.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
      const again = student.locator("section.present .runnable");
      await expect(again.locator("[data-runner] .ace_content")).toContainText("edited live", { timeout: 30_000 });
      await again.getByRole("button", { name: "Restore my version" }).click();
      await expect(again.locator("[data-runner] .ace_content")).toContainText("my own note");
      await expect(again.locator("[data-runner] .ace_content")).not.toContainText("edited live");
    } finally {
      await endLive(lecturer).catch(() => {});
      await lecturerCtx.close();
      await studentCtx.close();
    }
  });

  test("a student's forged control message is refused; the lecturer's reload keeps the session", async ({ browser, baseURL }) => {
    const lecturerCtx = await lecturerContext(browser, baseURL!);
    const studentCtx = await browser.newContext({ baseURL, viewport: { width: 1280, height: 800 } });
    const lecturer = await lecturerCtx.newPage();
    const student = await studentCtx.newPage();
    try {
      await openPresenter(lecturer);
      await startLive(lecturer);
      await presenterKey(lecturer, "ArrowRight");
      await presenterKey(lecturer, "ArrowRight");
      await expect.poll(() => presenterSlide(lecturer), { timeout: 30_000 }).toEqual({ title: "Steps", fragments: 0 });
      await openDeck(student);
      await expect.poll(() => where(student), { timeout: 30_000 }).toEqual({ title: "Steps", fragments: 0 });

      // From the student's page, a hand-made socket tries to drive the room.
      const answers = await student.evaluate(async (deck) => {
        const ws = new WebSocket(`${location.origin.replace("http", "ws")}/ws`);
        const got: string[] = [];
        await new Promise((resolve) => ws.addEventListener("open", resolve));
        ws.addEventListener("message", (e) => got.push(String(e.data)));
        ws.send(JSON.stringify({ type: "live-slide", deck, slide: { h: 3, v: 0, f: -1 } }));
        ws.send(JSON.stringify({ type: "live-end", deck }));
        for (let i = 0; i < 200 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
        ws.close();
        return got;
      }, DECK);
      expect(answers.map((a) => JSON.parse(a))).toEqual([
        { type: "live-refused", deck: DECK, message: "only the signed-in lecturer can change the live session" },
        { type: "live-refused", deck: DECK, message: "only the signed-in lecturer can change the live session" },
      ]);
      // Nothing moved, nothing ended.
      await student.waitForTimeout(500);
      expect(await where(student)).toEqual({ title: "Steps", fragments: 0 });
      await expect(student.locator(".live-bar[data-live=following]")).toBeVisible();

      // The lecturer's page reloads: still live, still on the same slide, and driving.
      await lecturer.reload();
      await expect(lecturer.locator(".presenter-current .reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
      await expect(lecturer.locator("[data-live-status=live]")).toBeVisible({ timeout: 30_000 });
      await expect.poll(() => presenterSlide(lecturer), { timeout: 30_000 }).toEqual({ title: "Steps", fragments: 0 });
      await presenterKey(lecturer, "ArrowRight");
      await expect.poll(() => where(student), { timeout: 30_000 }).toEqual({ title: "Steps", fragments: 1 });
    } finally {
      await endLive(lecturer).catch(() => {});
      await lecturerCtx.close();
      await studentCtx.close();
    }
  });
});
