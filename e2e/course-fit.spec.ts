/**
 * The sample course keeps fitting its slides (issue 14): on every slide of every deck in content/, at
 * the default 1280×800, nothing runs off the slide and every runnable example shows all its code
 * (also one whose author fixed its height with `lines=`: no example of the course is cut); in
 * `?print-pdf` every slide is one page.
 *
 * Layout is measured, nothing is run. The course is served by a server of this file's own
 * (CONTENT_DIR=content) on E2E_PORT + 2.
 */
import { expect, test } from "@playwright/test";
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const PORT = Number(process.env.E2E_PORT ?? 3210) + 2;
const BASE = `http://127.0.0.1:${PORT}`;
const CONTENT = path.resolve("content");
const DECKS = fs
  .readdirSync(CONTENT, { withFileTypes: true })
  .filter((d) => d.isDirectory() && fs.existsSync(path.join(CONTENT, d.name, "index.adoc")))
  .map((d) => d.name)
  .sort();

let server: ChildProcess | null = null;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  // A failed test restarts the worker: the previous worker's server may still be shutting down.
  for (let i = 0; i < 120 && (await fetch(`${BASE}/api/health`).then(() => true, () => false)); i++) {
    await new Promise((r) => setTimeout(r, 250));
  }
  const child = spawn("node_modules/.bin/tsx", ["server/index.ts"], {
    env: { ...process.env, PORT: String(PORT), HOST: "127.0.0.1", NODE_ENV: "production", CONTENT_DIR: "content" },
    stdio: "ignore",
  });
  server = child;
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });
  for (let i = 0; i < 600 && !exited; i++) {
    try {
      if ((await fetch(`${BASE}/api/health`)).ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(exited ? "the course server exited at start" : "the course server did not come up");
});

test.afterAll(async () => {
  const child = server;
  server = null;
  if (!child || child.exitCode !== null) return;
  const gone = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGINT"); // stop now (SIGTERM would drain), so a restarted worker finds the port free
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  await gone;
  clearTimeout(timer);
});

test("the sample course has decks", () => {
  expect(DECKS.length).toBeGreaterThan(0);
});

for (const deck of DECKS) {
  test(`${deck}: every slide fits 1280×800 with all its code; one PDF page per slide`, async ({ page }) => {
    test.setTimeout(300_000);
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${BASE}/decks/${deck}`);
    await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 60_000 });
    // Number the slides (vertical ones too) and list their indices for reveal.js's hash URLs;
    // no slide transitions (the page's reveal.js is window.Reveal, as on the converter's pages).
    const slides = await page.evaluate(() => {
      const reveal = (window as unknown as { Reveal?: { configure?(o: Record<string, unknown>): void } }).Reveal;
      reveal?.configure?.({ transition: "none", backgroundTransition: "none" });
      const list: Array<{ k: number; h: number; v: number; id: string }> = [];
      document.querySelectorAll<HTMLElement>(".reveal .slides > section").forEach((top, h) => {
        const inner = top.querySelectorAll<HTMLElement>(":scope > section");
        const all = inner.length ? [...inner] : [top];
        all.forEach((s, v) => {
          s.dataset.fitIndex = String(list.length);
          list.push({ k: list.length, h, v, id: s.id });
        });
      });
      return list;
    });
    expect(slides.length).toBeGreaterThan(0);

    const problems: string[] = [];
    for (const slide of slides) {
      const name = `${deck} slide ${slide.k + 1} (${slide.id || `${slide.h}/${slide.v}`})`;
      await page.evaluate(({ h, v }) => {
        const reveal = (window as unknown as { Reveal?: { slide?(h: number, v: number): void } }).Reveal;
        if (reveal?.slide) reveal.slide(h, v);
        else window.location.hash = `#/${h}/${v}`;
      }, slide);
      const section = page.locator(`section.present[data-fit-index="${slide.k}"]`);
      await expect(section, name).toBeAttached({ timeout: 30_000 });
      // Editors are created when their slide shows.
      const runners = section.locator("[data-runner]");
      const count = await runners.count();
      // (an example of several files has an editor per file)
      if (count > 0) await expect(section.locator("[data-runner]:has(.ace_editor)"), name).toHaveCount(count, { timeout: 60_000 });
      // The fit settles within a few frames; a slide that does not fit never gets there.
      const measure = () =>
        section.evaluate((s) => {
          const found: string[] = [];
          const slideHeight = Number.parseFloat((s.closest(".slides") as HTMLElement).style.height);
          if (s.scrollHeight > slideHeight + 1) found.push(`content is ${s.scrollHeight} px tall, the slide ${slideHeight} px`);
          type Editor = {
            session: { getScreenLength(): number; getScreenWidth(): number };
            renderer: { lineHeight: number; characterWidth: number; scroller: HTMLElement };
            container: HTMLElement;
          };
          const ace = (window as unknown as { ace: { edit(el: Element): Editor } }).ace;
          s.querySelectorAll<HTMLElement>("[data-runner]").forEach((runner, i) => {
            // The editor of the file on show (the others are hidden).
            const editor = ace.edit(runner.querySelector(".runner-editor.ace_editor:not([hidden])")!);
            const rows = editor.session.getScreenLength();
            const shown = Math.floor((editor.container.clientHeight + 1) / editor.renderer.lineHeight);
            if (shown < rows) found.push(`example ${i + 1} shows ${shown} of its ${rows} lines`);
            // Nor cut on the right (an expected output beside the code leaves it less width).
            const columns = Math.floor((editor.renderer.scroller.clientWidth + 1) / editor.renderer.characterWidth);
            const wide = editor.session.getScreenWidth();
            if (columns < wide) found.push(`example ${i + 1} shows ${columns} of its ${wide} columns`);
          });
          return found;
        });
      try {
        await expect.poll(measure, { timeout: 15_000 }).toEqual([]);
      } catch {
        problems.push(...(await measure()).map((p) => `${name}: ${p}`));
      }
    }
    expect(problems).toEqual([]);

    // Print: reveal.js gives a slide as many pages as its content needs. An example with several
    // files prints all its code, which may take a second page.
    await page.goto(`${BASE}/decks/${deck}?print-pdf`);
    await expect(page.locator(".reveal[data-ready=true]")).toBeAttached({ timeout: 60_000 });
    await expect(page.locator(".pdf-page")).toHaveCount(slides.length, { timeout: 30_000 });
    const tall = await page.evaluate(() => {
      const pages = [...document.querySelectorAll<HTMLElement>(".pdf-page")];
      const one = Math.min(...pages.map((p) => p.offsetHeight));
      const scrolls = (p: HTMLElement) =>
        [...p.querySelectorAll<HTMLElement>("[data-runnable]")].some((r) => {
          const block = JSON.parse(r.dataset.runnable ?? "{}") as { files?: Array<{ visible: boolean }> };
          // several files: on the slide one at a time, in print one after another
          return (block.files ?? []).filter((f) => f.visible).length > 1;
        });
      return pages.flatMap((p, i) => (p.offsetHeight > one + 1 && !scrolls(p) ? [`page ${i + 1}: ${p.querySelector("section")?.id}`] : []));
    });
    expect(tall).toEqual([]);
  });
}
