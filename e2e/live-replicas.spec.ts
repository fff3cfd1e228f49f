/**
 * One lecture served by two real server instances sharing a real Redis (test/helpers/cluster.ts):
 * the lecturer presents on one, students follow on the other, in Chromium, and stay in step:
 * slides and fragments, the lecturer's code and run output, a late joiner, the lecturer moving
 * to the other instance (another device).
 */
import { expect, test } from "@playwright/test";
import { type Cluster, startCluster } from "../test/helpers/cluster";
import { LECTURER_TOKEN, lecturerContext, openDeck, openPresenter, startLive, where } from "./live-helpers";

// Ports of this test's own: two replicas, the proxy the helper puts in front, and Redis.
const BASE_PORT = Number(process.env.E2E_PORT ?? 3210);
const REPLICA_PORTS = [BASE_PORT + 5, BASE_PORT + 6];
const PROXY_PORT = BASE_PORT + 7;
const REDIS_PORT = 6400 + (BASE_PORT % 100) + 1;

let cluster: Cluster;

test.describe("a live lecture over two instances with Redis", () => {
  test.setTimeout(600_000);

  test.beforeAll(async () => {
    test.setTimeout(600_000);
    cluster = await startCluster({
      proxyPort: PROXY_PORT,
      replicaPorts: REPLICA_PORTS,
      redisPort: REDIS_PORT,
      contentDir: "test/fixtures/e2e-content",
      env: { LECTURER_TOKEN, CLIENT_LIMITS: JSON.stringify({ maxConnectionsPerClient: 64 }) },
    });
  });

  test.afterAll(async () => {
    await cluster?.stop();
  });

  test("the lecturer on one instance and students on the other stay in step", async ({ browser }) => {
    const [one, two] = cluster.replicas;
    const lecturerCtx = await lecturerContext(browser, one.url);
    const studentCtx = await browser.newContext({ baseURL: two.url, viewport: { width: 1280, height: 800 } });
    const lecturer = await lecturerCtx.newPage();
    const student = await studentCtx.newPage();
    const key = async (k: string) => {
      await lecturer.locator(".presenter-notes").click();
      await lecturer.keyboard.press(k);
    };
    try {
      await openPresenter(lecturer);
      await startLive(lecturer);
      await openDeck(student);
      await expect(student.locator(".live-bar[data-live=following]")).toBeVisible({ timeout: 30_000 });
      await expect(lecturer.locator("[data-counts]")).toHaveText("1 following · 0 detached", { timeout: 30_000 });

      await key("ArrowRight");
      await key("ArrowRight");
      await key("ArrowRight");
      await expect.poll(() => where(student), { timeout: 30_000 }).toEqual({ title: "Steps", fragments: 1 });
      await key("ArrowRight");
      await key("ArrowRight");
      await expect.poll(() => where(student), { timeout: 30_000 }).toEqual({ title: "Example", fragments: 0 });

      // The lecturer's edit and run, seen on the other instance at the block.
      const lecturerRunner = lecturer.locator(".presenter-current section.present [data-runner]");
      await expect(lecturerRunner.locator(".ace_editor")).toBeVisible({ timeout: 30_000 });
      await lecturerRunner.locator(".ace_content").click();
      await lecturer.keyboard.press("Control+Home");
      await lecturer.keyboard.press("ArrowDown");
      await lecturer.keyboard.press("ArrowDown");
      await lecturer.keyboard.press("End");
      await lecturer.keyboard.type('\n    printf("across instances\\n");');
      await lecturer.keyboard.press("Control+Enter");
      const studentRunner = student.locator("section.present .runnable");
      await expect(studentRunner.locator("[data-live-code]")).toContainText("across instances", { timeout: 30_000 });
      await expect(studentRunner.locator("[data-live-output]")).toContainText("hello, room\nacross instances", { timeout: 60_000 });

      // A late joiner on the second instance gets slide, code and output from Redis.
      const late = await studentCtx.newPage();
      await openDeck(late, "#/_welcome");
      await expect.poll(() => where(late), { timeout: 30_000 }).toEqual({ title: "Example", fragments: 0 });
      const lateRunner = late.locator("section.present .runnable");
      await lateRunner.getByRole("tab", { name: /Lecturer/ }).click();
      await expect(lateRunner.locator("[data-live-output]")).toContainText("across instances", { timeout: 30_000 });

      // The lecturer continues on the other instance (another device): same session.
      const secondDevice = await lecturerCtx.newPage();
      await secondDevice.goto(`${two.url}/decks/06-live/presenter`);
      await expect(secondDevice.locator("[data-live-status=live]")).toBeVisible({ timeout: 30_000 });
      await secondDevice.locator(".presenter-notes").click();
      await secondDevice.keyboard.press("ArrowLeft");
      await expect.poll(() => where(student), { timeout: 30_000 }).toEqual({ title: "Steps", fragments: 2 });
      // …and the first device follows it.
      await expect.poll(() => where(lecturer, ".presenter-current"), { timeout: 30_000 }).toEqual({ title: "Steps", fragments: 2 });

      await secondDevice.getByRole("button", { name: "End live session" }).click();
      await expect(student.getByText("The lecturer ended the live session.")).toBeVisible({ timeout: 30_000 });
    } finally {
      await lecturerCtx.close();
      await studentCtx.close();
    }
  });
});
