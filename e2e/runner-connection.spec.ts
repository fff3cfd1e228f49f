/**
 * A run always reaches a visible state: refused connections, offline and a server that is back
 * all say so in the runner's status in words, and the run goes out by itself when it can.
 */
import { expect, test, type Page } from "@playwright/test";
import path from "node:path";
import WebSocket from "ws";

const SHOTS = path.resolve("e2e/screenshots");
const DECK = "/decks/08-console";

async function openCountSlide(page: Page) {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`${DECK}#/_ten_lines`);
  await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
  const runner = page.locator("section.present [data-runner]").first();
  await expect(runner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
  return runner;
}

test("the 17th tab from one address is told it was refused and why, and runs once a tab closes", async ({ page, baseURL }) => {
  const runner = await openCountSlide(page);
  // Sixteen other "tabs" of the same address hold every connection the server allows it
  // (playwright.config.ts sets CLIENT_LIMITS to 16); the page is the seventeenth.
  const wsURL = `${baseURL!.replace(/^http/, "ws")}/ws`;
  const tabs: WebSocket[] = [];
  try {
    for (let i = 0; i < 16; i++) {
      const ws = new WebSocket(wsURL);
      const code = await new Promise<number>((resolve) => {
        ws.once("open", () => setTimeout(() => resolve(ws.readyState === ws.OPEN ? 0 : -1), 200));
        ws.once("close", (c) => resolve(c));
      });
      if (code !== 0) break; // a connection of an earlier test may still be counted: 16 is the most we can hold
      tabs.push(ws);
    }
    expect(tabs.length).toBeGreaterThan(0);

    await runner.getByRole("button", { name: /Run/ }).click();
    const status = runner.locator(".runner-status");
    await expect(status).toContainText("connection refused by the server: too many open connections from your address (at most 16)", {
      timeout: 30_000,
    });
    await expect(status).toContainText(/Retrying in \d+ s/);
    await expect(runner.getByRole("button", { name: /Stop/ })).toBeEnabled();
    await page.screenshot({ path: path.join(SHOTS, "runner-refused.png") });

    // One tab closes: the run goes out by itself, without a click.
    tabs.pop()!.close();
    await expect(runner.locator(".runner-console")).toContainText("line 30", { timeout: 60_000 });
    await expect(status).toContainText("exited with code 0", { timeout: 30_000 });
  } finally {
    for (const ws of tabs) ws.close();
  }
});

test("offline, the run says so and starts when the network is back", async ({ page, context }) => {
  const runner = await openCountSlide(page);
  await context.setOffline(true);
  try {
    await runner.getByRole("button", { name: /Run/ }).click();
    await expect(runner.locator(".runner-status")).toContainText("offline", { timeout: 30_000 });
    await page.screenshot({ path: path.join(SHOTS, "runner-offline.png") });
  } finally {
    await context.setOffline(false);
  }
  await expect(runner.locator(".runner-console")).toContainText("line 30", { timeout: 60_000 });
  await expect(runner.locator(".runner-status")).toContainText("exited with code 0", { timeout: 30_000 });
});
