import { watchDecks } from "@/lib/deck/server/watch";

export const dynamic = "force-dynamic";

/**
 * Development only: server-sent events, one `change` event `{"deck": name}` per saved deck, so an open deck
 * page can reload itself. A 404 in production.
 */
export async function GET(req: Request) {
  if (process.env.NODE_ENV !== "development") return new Response("Not found", { status: 404 });
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
      const unwatch = watchDecks((deck) => send(`event: change\ndata: ${JSON.stringify({ deck })}\n\n`));
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
