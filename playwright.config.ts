import { defineConfig } from "@playwright/test";

/** Browser tests drive Debian's chromium (Playwright's own browser download is not available here). */
const PORT = Number(process.env.E2E_PORT ?? 3210);

export default defineConfig({
  testDir: "e2e",
  timeout: 60_000,
  workers: 1,
  // No retries: a test that fails once fails the run. (The slide fit's "2 lines short" was a fit
  // measured while reveal.js slid an arrow into place; components/runner/console-fit.ts now reads
  // the arrows' layout boxes.)
  reporter: [["list"]],
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  webServer: {
    command: "tsx server/index.ts",
    // The deck tests need stable decks, a broken one and a folder without index.adoc:
    // test/fixtures/e2e-content holds those (symlinks to test/fixtures/decks) plus a link to a real course deck.
    // CLIENT_LIMITS: 16 connections per address, so a test can be the 17th "tab" (the defaults fit a class behind one address).
    env: {
      PORT: String(PORT),
      HOST: "127.0.0.1",
      NODE_ENV: "production",
      CONTENT_DIR: process.env.E2E_CONTENT_DIR ?? "test/fixtures/e2e-content",
      CLIENT_LIMITS: JSON.stringify({ maxConnectionsPerClient: 16 }),
      // Decks' warnings listed on the index and the deck page, as in `npm run dev` (e2e/course.spec.ts).
      DECK_WARNINGS: "show",
      // The live-lecture tests sign in with it (e2e/live.spec.ts).
      LECTURER_TOKEN: process.env.LECTURER_TOKEN ?? "e2e-lecturer-token",
      // An operator's extra origin (e2e/web-origin.spec.ts).
      ALLOWED_ORIGINS: "https://mirror.example",
    },
    url: `http://127.0.0.1:${PORT}/`,
    reuseExistingServer: false,
    // SIGINT: the server stops its runs and removes its prepared sandboxes (their cgroups and tmpfs
    // mounts). Playwright's default, SIGKILL, left them behind after every run.
    gracefulShutdown: { signal: "SIGINT", timeout: 20_000 },
    timeout: 120_000,
  },
});
