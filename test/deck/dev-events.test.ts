/** /api/dev/deck-events: the SSE stream an open deck page listens to in development. */
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { GET } from "../../app/api/dev/deck-events/route";
import { loadDeck } from "../../lib/deck/server";

let dir: string;
const env = { ...process.env };

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "deck-events-"));
  await fs.mkdir(path.join(dir, "d"));
  await fs.writeFile(path.join(dir, "d/index.adoc"), "= D\n\n== One\n\ntext\n");
  process.env.CONTENT_DIR = dir;
});
afterEach(async () => {
  process.env = { ...env };
  await fs.rm(dir, { recursive: true, force: true });
});

/** Read the stream until `pattern` shows up (or fail after a while). */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, pattern: RegExp, ms = 4000): Promise<string> {
  let text = "";
  const deadline = Date.now() + ms;
  while (!pattern.test(text)) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no ${pattern} in ${JSON.stringify(text)}`);
    const chunk = await Promise.race([reader.read(), new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`timeout; got ${JSON.stringify(text)}`)), left))]);
    if (chunk.done) break;
    text += new TextDecoder().decode(chunk.value);
  }
  return text;
}

it("is a 404 outside development", async () => {
  (process.env as Record<string, string>).NODE_ENV = "production";
  const res = await GET(new Request("http://x/api/dev/deck-events?deck=d&version=v"));
  expect(res.status).toBe(404);
});

it("announces a change after a save, and right away when the page is already stale", async () => {
  (process.env as Record<string, string>).NODE_ENV = "development";
  const version = (await loadDeck("d"))!.contentHash;

  const abort = new AbortController();
  const res = await GET(new Request(`http://x/api/dev/deck-events?deck=d&version=${version}`, { signal: abort.signal }));
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const reader = res.body!.getReader();
  expect(await readUntil(reader, /: watching/)).not.toMatch(/event: change/);
  await new Promise((r) => setTimeout(r, 150));
  await fs.writeFile(path.join(dir, "d/index.adoc"), "= D\n\n== One, edited\n\ntext\n");
  expect(await readUntil(reader, /event: change\ndata: \{"deck":"d"\}/)).toBeTruthy();
  abort.abort();

  const stale = await GET(new Request(`http://x/api/dev/deck-events?deck=d&version=${version}`));
  const staleReader = stale.body!.getReader();
  expect(await readUntil(staleReader, /event: change/)).toBeTruthy();
  await staleReader.cancel();
});

it("announces a change to a course-wide file the deck includes (a shared folder outside the deck)", async () => {
  (process.env as Record<string, string>).NODE_ENV = "development";
  await fs.mkdir(path.join(dir, "shared"));
  await fs.writeFile(path.join(dir, "shared/attributes.adoc"), ":course: Operating Systems\n");
  await fs.writeFile(path.join(dir, "d/index.adoc"), "= D\ninclude::../shared/attributes.adoc[]\n\n== One\n\n{course}\n");
  const deck = (await loadDeck("d"))!;
  expect(deck.problems).toEqual([]);
  expect(deck.slidesHtml).toContain("Operating Systems");

  const abort = new AbortController();
  const res = await GET(new Request(`http://x/api/dev/deck-events?deck=d&version=${deck.contentHash}`, { signal: abort.signal }));
  const reader = res.body!.getReader();
  expect(await readUntil(reader, /: watching/, 15_000)).not.toMatch(/event: change/);
  await new Promise((r) => setTimeout(r, 150));
  await fs.writeFile(path.join(dir, "shared/attributes.adoc"), ":course: Operating Systems, edited\n");
  expect(await readUntil(reader, /event: change\ndata: \{"deck":"d"\}/, 15_000)).toBeTruthy();
  abort.abort();
  expect((await loadDeck("d"))!.slidesHtml).toContain("Operating Systems, edited");
}, 60_000);
