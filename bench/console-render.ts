/**
 * The runner's console under big outputs, in real Chromium against the real server:
 * 100k short lines, and a 2 MiB flood (cut at the 1 MiB output limit). For each, from the click on
 * Run: the time until the last line (or the limit message) is in view, the longest animation
 * frame while it streamed (requestAnimationFrame deltas), how many frames took over 50 ms and
 * over 100 ms, and how many console rows were in the page at the end.
 *
 *   npm run bench:console          (ROUNDS=3 by default; BENCH_PORT, default 3469)
 *
 * Frame times on a loaded machine are noisy: compare runs on the same machine, and read the
 * median of the rounds.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chromium, type Page } from "@playwright/test";

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const PORT = Number(process.env.BENCH_PORT ?? 3469);
const BASE = `http://127.0.0.1:${PORT}`;

interface Figures {
  msToEnd: number;
  longestFrameMs: number;
  framesOver50: number;
  framesOver100: number;
  rowsInPage: number;
  lines: number;
  /** The scripts long frames (over 50 ms) spent most time in. */
  inLongFrames: string;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function startServer(): Promise<ChildProcess> {
  const child = spawn("node_modules/.bin/tsx", ["server/index.ts"], {
    env: { ...process.env, PORT: String(PORT), HOST: "127.0.0.1", NODE_ENV: "production", CONTENT_DIR: "test/fixtures/e2e-content" },
    stdio: "ignore",
  });
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${BASE}/api/health`)).ok) return child;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill("SIGTERM");
  throw new Error("server did not come up");
}

async function measure(page: Page, slide: string, endText: string): Promise<Figures> {
  await page.goto(`${BASE}/decks/08-console#/${slide}`);
  await page.waitForSelector(".reveal[data-ready=true]", { state: "attached", timeout: 60_000 });
  const runner = page.locator("section.present [data-runner]").first();
  await runner.locator(".ace_editor").waitFor({ timeout: 60_000 });
  return page.evaluate(
    ({ endText }) =>
      new Promise<Figures>((resolve, reject) => {
        const root = document.querySelector<HTMLElement>("section.present [data-runner]")!;
        const frames: number[] = [];
        let last = performance.now();
        let running = true;
        const tick = (t: number) => {
          frames.push(t - last);
          last = t;
          if (running) requestAnimationFrame(tick);
        };
        // Which scripts the long frames spent their time in (Chrome's Long Animation Frames API).
        const culprits = new Map<string, number>();
        const observer = new PerformanceObserver((list) => {
          for (const entry of list.getEntries() as unknown as Array<{ duration: number; scripts?: Array<{ invoker: string; sourceFunctionName: string; duration: number }> }>) {
            if (entry.duration < 50) continue;
            for (const script of entry.scripts ?? []) {
              const key = `${script.invoker} ${script.sourceFunctionName}`.trim();
              culprits.set(key, (culprits.get(key) ?? 0) + script.duration);
            }
          }
        });
        try {
          observer.observe({ type: "long-animation-frame", buffered: false });
        } catch {
          /* older Chromium: frame deltas only */
        }
        const start = performance.now();
        requestAnimationFrame((t) => {
          last = t;
          requestAnimationFrame(tick);
        });
        root.querySelector<HTMLButtonElement>(".runner-run")!.click();
        const timeout = setTimeout(() => reject(new Error(`no '${endText}' within 120 s`)), 120_000);
        let sawRun = false;
        const check = () => {
          // The previous run's console stays until this run has started.
          if (root.dataset.phase !== "done" && root.dataset.phase !== "idle") sawRun = true;
          if (!sawRun || root.dataset.phase !== "done") return void setTimeout(check, 20);
          const console = root.querySelector<HTMLElement>(".runner-console");
          const rows = console ? [...console.querySelectorAll<HTMLElement>(".runner-console-row")] : [];
          const box = console?.getBoundingClientRect();
          const lastInView = rows.filter((r) => box && r.getBoundingClientRect().bottom <= box.bottom + 1).at(-1);
          if (lastInView?.textContent?.includes(endText)) {
            running = false;
            clearTimeout(timeout);
            observer.disconnect();
            const top = [...culprits].sort((a, b) => b[1] - a[1]).slice(0, 3);
            resolve({
              msToEnd: performance.now() - start,
              longestFrameMs: Math.max(...frames),
              framesOver50: frames.filter((f) => f > 50).length,
              framesOver100: frames.filter((f) => f > 100).length,
              rowsInPage: rows.length,
              lines: Number(console?.dataset.lines ?? 0),
              inLongFrames: top.map(([k, ms]) => `${k} ${ms.toFixed(0)} ms`).join("; "),
            });
          } else setTimeout(check, 20);
        };
        check();
      }),
    { endText },
  );
}

async function main(): Promise<void> {
  const server = await startServer();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // tsx keeps function names with a helper that the page does not have.
    await page.addInitScript("window.__name = (f) => f;");
    const cases = [
      { name: "100k lines (588 KB)", slide: "_many_lines", end: "100000" },
      { name: "2 MiB flood, cut at 1 MiB", slide: "_flood", end: "output limit" },
    ];
    console.log(`console rendering in Chromium, median of ${ROUNDS} (first a warm-up run of each)`);
    console.log("| output | to last line in view | longest frame | frames > 50 ms | frames > 100 ms | rows in page | lines held |");
    console.log("|---|---|---|---|---|---|---|");
    for (const c of cases) {
      await measure(page, c.slide, c.end); // warm-up: compile cache, ACE loaded
      const results: Figures[] = [];
      for (let i = 0; i < ROUNDS; i++) results.push(await measure(page, c.slide, c.end));
      const m = (f: (r: Figures) => number) => median(results.map(f));
      for (const r of results) if (r.inLongFrames) console.error(`  ${c.name}: long frames spent time in ${r.inLongFrames}`);
      console.log(
        `| ${c.name} | ${m((r) => r.msToEnd).toFixed(0)} ms | ${m((r) => r.longestFrameMs).toFixed(0)} ms | ${m((r) => r.framesOver50)} | ${m((r) => r.framesOver100)} | ${m((r) => r.rowsInPage)} | ${m((r) => r.lines)} |`,
      );
    }
  } finally {
    await browser.close();
    server.kill("SIGTERM");
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
