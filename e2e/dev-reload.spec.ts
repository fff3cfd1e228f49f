/**
 * `npm run dev` in the browser (README: "reloads the open deck on save"): a development server on
 * a content folder of its own; saving the deck's file reloads the open page by itself, on the slide
 * the author was looking at, and a broken deck's page comes back once the file is fixed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect, test } from "@playwright/test";

const PORT = Number(process.env.E2E_PORT ?? 3210) + 2; // beside the suite's server, in the same range
const DECK = `= Dev reload\n\n== First\n\nThe first slide.\n\n== Second\n\nWORDS\n`;

test.describe("npm run dev", () => {
  // A development server compiles each page on its first visit: generous on a loaded machine.
  test.setTimeout(420_000);
  let content: string;
  let server: ChildProcess | undefined;
  let log = "";

  test.beforeAll(async () => {
    content = fs.mkdtempSync(path.join(os.tmpdir(), "osbe-dev-content-"));
    fs.mkdirSync(path.join(content, "01-dev"));
    fs.writeFileSync(path.join(content, "01-dev/index.adoc"), DECK.replace("WORDS", "Words as first written."));
    server = spawn(process.execPath, ["--import", "tsx", "server/index.ts", "--dev"], {
      env: { ...process.env, PORT: String(PORT), HOST: "127.0.0.1", CONTENT_DIR: content, NEXT_TELEMETRY_DISABLED: "1", PREWARM: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    server.stdout!.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    server.stderr!.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    for (let i = 0; ; i++) {
      if (server.exitCode !== null) throw new Error(`the development server exited: ${log}`);
      try {
        if ((await fetch(`http://127.0.0.1:${PORT}/api/health`)).status < 500) break;
      } catch {
        /* not yet */
      }
      if (i > 900) throw new Error(`the development server did not come up: ${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  test.afterAll(async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      const gone = new Promise((resolve) => server!.once("exit", resolve));
      server.kill("SIGINT");
      await gone;
    }
    fs.rmSync(content, { recursive: true, force: true });
  });

  test("saving the deck reloads the open page on the same slide; a broken deck's page comes back when fixed", async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`http://127.0.0.1:${PORT}/decks/01-dev#/_second`, { timeout: 300_000 });
    const present = page.locator(".reveal .slides section.present");
    await expect(present).toContainText("Words as first written.", { timeout: 300_000 });

    // The page must reload by itself: a mark set in it now is gone after a reload.
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    fs.writeFileSync(path.join(content, "01-dev/index.adoc"), DECK.replace("WORDS", "Words saved later."));
    await expect(present).toContainText("Words saved later.", { timeout: 120_000 });
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBeUndefined();
    expect(new URL(page.url()).hash).toBe("#/_second");

    // A broken deck shows its problem with file and line; fixing the file brings the slides back.
    fs.writeFileSync(path.join(content, "01-dev/index.adoc"), `${DECK.replace("WORDS", "Broken now.")}\ninclude::missing.adoc[]\n`);
    await expect(page.getByText(/index\.adoc:\d+/).first()).toBeVisible({ timeout: 120_000 });
    fs.writeFileSync(path.join(content, "01-dev/index.adoc"), DECK.replace("WORDS", "Fixed again."));
    await expect(page.locator(".reveal .slides section.present")).toContainText("Fixed again.", { timeout: 120_000 });
  });
});
