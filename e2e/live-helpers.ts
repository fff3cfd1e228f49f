/** What the live-lecture browser tests share: signing in, opening the deck and the presenter view, where a page is. */
import { expect, type Browser, type BrowserContext, type Page } from "@playwright/test";

export const DECK = "06-live";
export const LECTURER_TOKEN = process.env.LECTURER_TOKEN ?? "e2e-lecturer-token";

/** Signs in through the lecturer page; a refusal asking to wait ("try again in N s") is waited out. */
export async function signInThroughPage(page: Page, token = LECTURER_TOKEN): Promise<void> {
  await page.goto("/lecturer");
  for (let attempt = 0; attempt < 5; attempt++) {
    await page.getByLabel("Lecturer token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
    const outcome = page.getByText("Signed in as the lecturer").or(page.locator(".lecturer-error"));
    await expect(outcome).toBeVisible({ timeout: 30_000 });
    if (await page.getByText("Signed in as the lecturer").isVisible()) return;
    const wait = /try again in (\d+) s/.exec((await page.locator(".lecturer-error").textContent()) ?? "");
    if (!wait) throw new Error(`sign-in refused: ${await page.locator(".lecturer-error").textContent()}`);
    await page.waitForTimeout(Number(wait[1]) * 1000 + 300);
  }
  throw new Error("could not sign in");
}

export async function lecturerContext(browser: Browser, baseURL: string): Promise<BrowserContext> {
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 800 } });
  for (let attempt = 0; attempt < 5; attempt++) {
    const res = await context.request.post("/api/lecturer/sign-in", { data: { token: LECTURER_TOKEN } });
    if (res.ok()) return context;
    const retry = Number(res.headers()["retry-after"] ?? 0);
    if (res.status() !== 429) throw new Error(`sign-in refused: ${res.status()} ${await res.text()}`);
    await new Promise((r) => setTimeout(r, retry * 1000 + 300));
  }
  throw new Error("could not sign in");
}

export async function openDeck(page: Page, hash = ""): Promise<void> {
  await page.goto(`/decks/${DECK}${hash}`);
  await expect(page.locator(".reveal[data-ready=true]").first()).toBeAttached({ timeout: 30_000 });
}

export async function openPresenter(page: Page): Promise<void> {
  await page.goto(`/decks/${DECK}/presenter`);
  await expect(page.locator(".presenter-current .reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
}

/** The title of the slide a page shows, and how many of its fragments are visible. */
export async function where(page: Page, scope = ""): Promise<{ title: string; fragments: number }> {
  const present = page.locator(`${scope} .reveal .slides > section.present`.trim()).first();
  return {
    // The title slide has the deck's h1, the others their h2.
    title: ((await present.locator("h1, h2").first().textContent()) ?? "").trim(),
    fragments: await present.locator(".fragment.visible").count(),
  };
}


/** Starts the session from the presenter view and waits until it says it is live. */
export async function startLive(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Start live session" }).click();
  await expect(page.locator("[data-live-status=live]")).toBeVisible({ timeout: 30_000 });
}

