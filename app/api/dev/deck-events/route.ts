import { loadDeck } from "@/lib/deck/server";
import { watchDecks } from "@/lib/deck/server/watch";

export const dynamic = "force-dynamic";

/**
 * Development only: server-sent events for one open deck page (`?deck=<name>&version=<contentHash>`). A
 * `change` event `{"deck": name}` is sent when the deck's content no longer has the page's version — also
 * right after connecting, so a save made while the page was (re)loading is not missed. A 404 in production.
 */
export async function GET(req: Request) {
  if (process.env.NODE_ENV !== "development") return new Response("Not found", { status: 404 });
  const url = new URL(req.url);
  const name = url.searchParams.get("deck") ?? "";
  const version = url.searchParams.get("version") ?? "";
  /** Has the deck changed since the page was rendered? (cheap: the loader's cache answers unchanged decks) */
  const changed = async () => (await loadDeck(name))?.contentHash !== version;
  const encoder = new TextEncoder();
  let cleanup = () => {};
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (text: string) => {
        try {
          controller.enqueue(encoder.encode(text));
        } catch {
          cleanup();
        }
      };
      const announce = async () => {
        if (await changed().catch(() => true)) send(`event: change\ndata: ${JSON.stringify({ deck: name })}\n\n`);
      };
      // Any change in the course may concern this deck: its own folder, or a shared file it includes (the
      // loader's fingerprint covers both, so `changed()` answers cheaply and only this deck's files count).
      const unwatch = watchDecks(() => void announce());
      void announce();
      const heartbeat = setInterval(() => send(": keep-alive\n\n"), 20_000);
      cleanup = () => {
        clearInterval(heartbeat);
        unwatch();
      };
      req.signal.addEventListener("abort", () => {
        cleanup();
        try {
          controller.close();
        } catch {
          /* already closed */
        }
      });
      send(": watching\n\n");
    },
    cancel() {
      cleanup();
    },
  });
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      // keep Next's gzip (and proxies) from buffering the stream
      "content-encoding": "none",
      "x-accel-buffering": "no",
    },
  });
}
