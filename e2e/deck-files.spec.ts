/**
 * Issue 16, finding 10, against the real server: a deck folder serves what slides need (images, styles…)
 * and what the author marks (files the slides link to, `:downloads:`), never the AsciiDoc sources,
 * unmarked examples or private files; nor does /course-files/ hand out another way in. Deck:
 * test/fixtures/e2e-content/16-files.
 */
import { expect, test } from "@playwright/test";

const DECK = "/decks/16-files/assets";

test.describe("what deck folders serve (issue 16, finding 10)", () => {
  test("slides' images and the author's marked files are served; sources and private files are not", async ({ request }) => {
    const served: Record<string, string> = {
      [`${DECK}/images/diagram.svg`]: "image/svg+xml",
      // linked from a slide
      [`${DECK}/examples/linked.c`]: "text/plain; charset=utf-8",
      // :downloads: handouts/ (a folder) and examples/listed-*.c (a pattern)
      [`${DECK}/handouts/sheet.txt`]: "text/plain; charset=utf-8",
      [`${DECK}/handouts/more.txt`]: "text/plain; charset=utf-8",
      [`${DECK}/examples/listed-1.c`]: "text/plain; charset=utf-8",
      // a course deck's picture, and a shared image through /course-files/
      "/decks/os-processes/assets/images/process-states.svg": "image/svg+xml",
      "/course-files/shared/images/logo.svg": "image/svg+xml",
    };
    for (const [url, type] of Object.entries(served)) {
      const res = await request.get(url);
      expect(res.status(), url).toBe(200);
      expect(res.headers()["content-type"], url).toBe(type);
      // Opened directly, a file runs no script and has no origin (finding 7).
      expect(res.headers()["content-security-policy"], url).toBe("sandbox");
      expect(res.headers()["x-content-type-options"], url).toBe("nosniff");
    }

    const refused = [
      // the AsciiDoc sources, the issue's own examples
      `${DECK}/index.adoc`,
      `${DECK}/lecture-notes.adoc`,
      "/decks/os-processes/assets/index.adoc",
      "/decks/os-processes/assets/examples/pipe.c",
      // an example nobody linked or listed
      `${DECK}/examples/unmarked.c`,
      // private: a name beginning with _ or ., a private/ folder (an image too)
      `${DECK}/_solutions/answer.c`,
      `${DECK}/private/notes.txt`,
      `${DECK}/private/diagram.svg`,
      // the course folder is no way around it
      "/course-files/16-files/index.adoc",
      "/course-files/16-files/examples/unmarked.c",
      "/course-files/16-files/_solutions/answer.c",
      "/course-files/15-shared/index.adoc",
      "/course-files/shared/attributes.adoc",
      "/course-files/shared/snippets/hello.c",
    ];
    for (const url of refused) {
      const res = await request.get(url);
      expect(res.status(), url).toBe(404);
      expect(await res.text(), url).not.toMatch(/answer|exam|#include/i);
    }
  });

  test("the deck's slide shows its picture and links its marked files", async ({ page }) => {
    await page.goto("/decks/16-files#/_pictures_and_downloads");
    await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 30_000 });
    const img = page.locator("section.present img");
    await expect(img).toHaveAttribute("src", `${DECK}/images/diagram.svg`);
    await expect.poll(() => img.evaluate((el) => (el as HTMLImageElement).naturalWidth), { timeout: 30_000 }).toBeGreaterThan(0);
    await expect(page.locator("section.present a", { hasText: "The example, linked" })).toHaveAttribute("href", `${DECK}/examples/linked.c`);
  });
});
