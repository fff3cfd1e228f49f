/**
 * The web layer against what an attacker on the course's network would try (issue 16, findings
 * 1–4, 6, 8, 9), each against the real production server in a process of its own (its pid for
 * descriptors and RSS), started with short timeouts and small bounds so the tests need not wait
 * minutes. Clients are told apart by X-Forwarded-For (TRUST_PROXY=1: the rightmost entry, the one
 * "our proxy" appended, is the client; whatever is left of it is the client's own word).
 *
 * No browser: these are raw sockets, HTTP and WebSockets, as an attacker's script would be.
 */
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { expect, test } from "@playwright/test";
import WebSocket from "ws";
import { WS_CLOSE } from "../lib/protocol";
import { openDescriptors, residentBytes, type ServerProcess, sleep, spawnServer, startServer } from "./server-process";

const MiB = 1024 * 1024;

let server: ServerProcess;
let contentDir: string;

test.beforeAll(async () => {
  test.setTimeout(240_000);
  // A course with one deck holding two files whose names differ only in a percent sign.
  contentDir = fs.mkdtempSync(path.join(os.tmpdir(), "osbe-hardening-"));
  const deck = path.join(contentDir, "decode");
  fs.mkdirSync(deck);
  fs.writeFileSync(path.join(deck, "index.adoc"), "= Decoding\n\n== One slide\n\nNothing here.\n");
  fs.writeFileSync(path.join(deck, "a%2D.svg"), '<svg xmlns="http://www.w3.org/2000/svg" id="the-literal-name"/>\n');
  fs.writeFileSync(path.join(deck, "a-.svg"), '<svg xmlns="http://www.w3.org/2000/svg" id="decoded-twice"/>\n');
  server = await startServer({
    CONTENT_DIR: contentDir,
    TRUST_PROXY: "1",
    WEB_LIMITS: JSON.stringify({
      headersTimeoutSeconds: 2,
      requestTimeoutSeconds: 4,
      idleTimeoutSeconds: 3,
      wsBufferedBytesPerConnection: 16 * MiB,
      wsBufferedBytesTotal: 32 * MiB,
    }),
    CLIENT_LIMITS: JSON.stringify({ maxConnectionsPerClient: 6, maxRunsGoingPerClient: 4 }),
    // One sandbox and a small queue: one client's waiting runs could fill it on their own.
    SANDBOX_CONCURRENCY: "1",
    SANDBOX_QUEUE_MEMORY_MIB: "1",
    SANDBOX_MAX_WAIT_SECONDS: "600",
  });
});

test.afterAll(async () => {
  await server?.stop();
  if (contentDir) fs.rmSync(contentDir, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------------------
// helpers

interface Message {
  type: string;
  id?: string | null;
  data?: string;
  code?: string;
  message?: string;
  exitCode?: number | null;
}

/** A WebSocket to /ws as client `address` (the entry "our proxy" appended), after `forged` entries the client wrote itself. */
function connect(address: string, forged: string[] = []): Promise<{ ws: WebSocket; messages: Message[]; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(`${server.url.replace("http", "ws")}/ws`, { headers: { "X-Forwarded-For": [...forged, address].join(", ") } });
  const messages: Message[] = [];
  ws.on("message", (data) => messages.push(JSON.parse(String(data)) as Message));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: String(reason) })));
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, messages, closed }));
    ws.once("error", reject);
    // Refused connections are accepted and closed at once with the reason: that is an answer too.
    void closed.then((c) => (ws.readyState === WebSocket.CLOSED ? resolve({ ws, messages, closed: Promise.resolve(c) }) : undefined));
  });
}

const cRun = (id: string, code: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ type: "run", id, language: "c", files: [{ name: "main.c", content: code }], flags: [], args: [], ...extra });

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Resolves when the server closes the socket (its 'close'), with whatever it answered. */
function closedByServer(socket: net.Socket): Promise<string> {
  let answer = "";
  socket.on("data", (d) => (answer += d.toString()));
  return new Promise((resolve) => socket.once("close", () => resolve(answer)));
}

function rawConnection(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, "127.0.0.1", () => resolve(socket));
    socket.on("error", reject);
  });
}

/** Waits until a server-side count settles at or below `bound` (background work may open a descriptor now and then). */
async function descriptorsBackTo(bound: number): Promise<number> {
  let now = openDescriptors(server.pid);
  await waitFor(
    `descriptors back to ≤ ${bound}`,
    () => {
      now = openDescriptors(server.pid);
      return now <= bound;
    },
    60_000,
  );
  return now;
}

/** The state of the server's end of the loopback connection from `clientPort` (Linux /proc/net/tcp). */
function serverSideState(clientPort: number): string {
  const hexPort = (port: number) => port.toString(16).toUpperCase().padStart(4, "0");
  const states: Record<string, string> = { "01": "ESTABLISHED", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0B": "CLOSING" };
  for (const line of fs.readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const [, local, remote, state] = line.trim().split(/\s+/);
    if (local?.endsWith(`:${hexPort(server.port)}`) && remote?.endsWith(`:${hexPort(clientPort)}`)) return states[state!] ?? state!;
  }
  return "gone";
}

// ------------------------------------------------------------------------------------------------
// 1. Upgrades to other paths

test("1: 200 upgrade requests to paths other than /ws are answered and closed; the descriptors are given back", async () => {
  test.setTimeout(180_000);
  // The count while nothing happens (the sandbox pool's work settles first).
  await sleep(1000);
  const before = openDescriptors(server.pid);
  const sockets = await Promise.all(Array.from({ length: 200 }, () => rawConnection()));
  const answers = sockets.map((socket) => closedByServer(socket));
  for (const [i, socket] of sockets.entries()) {
    socket.write(
      `GET /x${i} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
  }
  // The client never closes: the server must.
  const texts = await Promise.race([
    Promise.all(answers),
    sleep(60_000).then(() => {
      throw new Error("the server left upgrade sockets open for 60 s");
    }),
  ]);
  for (const text of texts) expect(text).toMatch(/^HTTP\/1\.1 404 /);
  // Slack for the sandbox pool, which prepares sandboxes (pipes, pidfds) on its own.
  const after = await descriptorsBackTo(before + 40);
  console.log(`descriptors: ${before} before, ${after} after 200 refused upgrades`);
  // The run socket still works.
  const { ws } = await connect("10.1.0.1");
  expect(ws.readyState).toBe(WebSocket.OPEN);
  ws.close();
});

// ------------------------------------------------------------------------------------------------
// 9. Malformed paths; decoding once

test("9: a malformed path answers 400 and is logged; a deck asset's name is decoded once", async () => {
  for (const target of ["/decks/%E0%A4%A", "/decks/decode/assets/%E0%A4%A", "/%ZZ"]) {
    const res = await fetch(`${server.url}${target}`);
    expect(res.status, target).toBe(400);
    expect(await res.text()).toMatch(/malformed/);
  }
  await waitFor("the log line", () => server.log().includes('"event":"malformed-path"') && server.log().includes("/decks/%E0%A4%A"), 10_000);
  // %252D is "%2D" once decoded: the file whose name holds a percent sign, not "a-.svg".
  const literal = await fetch(`${server.url}/decks/decode/assets/a%252D.svg`);
  expect(literal.status).toBe(200);
  expect(await literal.text()).toContain("the-literal-name");
});

// ------------------------------------------------------------------------------------------------
// 8. Slow clients

test("8: slow headers, a slow body, headers without a body and a silent connection are cut off within the timeouts", async () => {
  test.setTimeout(120_000);
  const probe = async (start: string | null, drip: string | null) => {
    const socket = await rawConnection();
    const closed = closedByServer(socket);
    if (start) socket.write(start);
    // A byte every 500 ms: never idle, never done.
    const timer = drip ? setInterval(() => socket.writable && socket.write(drip), 500) : null;
    const answer = await Promise.race([closed, sleep(45_000).then(() => "still open after 45 s")]);
    if (timer) clearInterval(timer);
    socket.destroy();
    return answer;
  };
  // The server runs with 2 s for headers, 4 s for a request, 3 s idle; Node's defaults are 60 s and 300 s.
  const [silent, slowHeaders, slowPageBody, slowApiBody, noBody] = await Promise.all([
    probe(null, null),
    probe("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n", "X-Slow: 1\r\n"),
    probe("POST /decks/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n", " "),
    probe("POST /api/run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n", " "),
    probe("POST /decks/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n", null),
  ]);
  for (const [what, answer] of Object.entries({ silent, slowHeaders, slowPageBody, slowApiBody, noBody })) {
    expect(answer, what).not.toBe("still open after 45 s");
  }
  // Node answers 408 while nothing has been answered yet; Next may already have answered a page
  // before its body was in, and then the connection is just closed.
  for (const [what, answer] of Object.entries({ silent, slowHeaders, slowApiBody })) {
    if (answer) expect(answer, what).toMatch(/^HTTP\/1\.1 408 /);
  }
});

// ------------------------------------------------------------------------------------------------
// 4. TRUST_PROXY

test("4: X-Forwarded-For entries the client wrote are not believed; IPv6 clients count by /64", async () => {
  test.setTimeout(120_000);
  // Six connections allowed per client: a client forging a fresh first entry each time is still one client.
  const sockets = [];
  for (let i = 0; i < 6; i++) {
    const c = await connect("10.4.0.1", [`192.0.2.${i}`]);
    expect(c.ws.readyState, `connection ${i + 1}`).toBe(WebSocket.OPEN);
    sockets.push(c);
  }
  const seventh = await connect("10.4.0.1", ["192.0.2.99", "198.51.100.7"]);
  const refused = await seventh.closed;
  expect(refused.code).toBe(WS_CLOSE.refused);
  expect(refused.reason).toMatch(/too many open connections/);
  // Another client is not affected.
  const other = await connect("10.4.0.2", ["10.4.0.1"]);
  expect(other.ws.readyState).toBe(WebSocket.OPEN);
  for (const c of [...sockets, other]) c.ws.close();

  // IPv6: one subscriber's /64 is one client, whichever of its addresses it uses.
  const v6 = [];
  for (let i = 1; i <= 6; i++) v6.push(await connect(`2001:db8:4:1::${i.toString(16)}`));
  expect(v6.every((c) => c.ws.readyState === WebSocket.OPEN)).toBe(true);
  const seventhV6 = await connect("2001:db8:4:1:ffff:ffff:ffff:ffff");
  expect((await seventhV6.closed).code).toBe(WS_CLOSE.refused);
  const neighbour = await connect("2001:db8:4:2::1");
  expect(neighbour.ws.readyState).toBe(WebSocket.OPEN);
  for (const c of [...v6, neighbour]) c.ws.close();
  await Promise.all([...sockets, other, ...v6, neighbour].map((c) => c.closed));
});

test("4: a TRUST_PROXY that is not a valid setting stops the server with a clear message", async () => {
  test.setTimeout(120_000);
  for (const value of ["true", "10.0.0.300", "1.2.3.4/40", "proxy.example"]) {
    const { child, log, exited } = spawnServer({ TRUST_PROXY: value });
    const started = waitFor("the server to start", () => log().includes("ready on"), 90_000).then(() => "started", () => "still running");
    const code = await Promise.race([exited, started]);
    if (typeof code === "string") {
      child.kill("SIGINT");
      await exited;
    }
    expect(code, `TRUST_PROXY=${value}: ${log().slice(-500)}`).toBe(1);
    expect(log()).toContain(`OSByExample cannot start: TRUST_PROXY`);
    expect(log()).not.toContain("ready on");
  }
});

// ------------------------------------------------------------------------------------------------
// 3. Runs going per client

test("3: one client with 40 long runs over 5 connections and HTTP does not stop another client's run", async () => {
  test.setTimeout(240_000);
  // Each of the attacker's sources is 80 KiB (the queue counts 240 KiB): a few waiting runs would
  // fill its 1 MiB; the bound (4 going: 1 running, 3 waiting) leaves room for others.
  const padding = `/*${"x".repeat(80 * 1024)}*/\n`;
  const sleeper = (i: number) => `${padding}#include <unistd.h>\nint main(void){sleep(30); return ${i % 100};}\n`;
  const attacker: Array<Awaited<ReturnType<typeof connect>>> = [];
  for (let c = 0; c < 5; c++) attacker.push(await connect("10.3.0.1"));
  attacker.forEach(({ ws }, c) => {
    for (let r = 0; r < 8; r++) ws.send(cRun(`a${c}-${r}`, sleeper(c * 8 + r)));
  });
  const ends = () => attacker.flatMap((a) => a.messages.filter((m) => m.type === "error" || m.type === "exit"));
  // The bound (4 going) refuses the rest in words.
  await waitFor("the attacker's refusals", () => ends().filter((m) => m.code === "busy").length >= 36, 120_000);
  const refusals = ends().filter((m) => m.code === "busy");
  expect(refusals.map((m) => m.message)).toEqual(
    Array(36).fill("too many runs at once from your address: at most 4 running or waiting; run again when one of them has ended"),
  );
  // HTTP counts too.
  const api = await fetch(`${server.url}/api/run`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Forwarded-For": "10.3.0.1" },
    body: JSON.stringify({ language: "c", code: sleeper(99) }),
  });
  expect(api.status).toBe(429);
  expect((await api.json()).error).toMatch(/too many runs at once/);

  // Another client's run goes through, behind at most the attacker's run in the sandbox.
  const victim = await connect("10.3.0.2");
  victim.ws.send(cRun("v", '#include <stdio.h>\nint main(void){puts("still served");}\n'));
  const end = await waitFor("the other client's run to end", () => victim.messages.find((m) => m.type === "exit" || m.type === "error"), 120_000);
  expect(end, JSON.stringify(end)).toMatchObject({ type: "exit", exitCode: 0 });
  expect(victim.messages.filter((m) => m.type === "stdout").map((m) => m.data).join("")).toBe("still served\n");
  // Closing the attacker's connections kills its runs; its places are given back.
  for (const a of [...attacker, victim]) a.ws.close();
  await Promise.all([...attacker, victim].map((a) => a.closed));
  await waitFor(
    "the engine idle",
    async () => {
      const health = (await (await fetch(`${server.url}/api/health`)).json()) as { running: number; queued: number };
      return health.running + health.queued === 0;
    },
    60_000,
  );
  const again = await connect("10.3.0.1");
  again.ws.send(cRun("after", '#include <stdio.h>\nint main(void){puts("back");}\n'));
  const last = await waitFor("the attacker's next run", () => again.messages.find((m) => m.type === "exit" || m.type === "error"), 60_000);
  expect(last).toMatchObject({ type: "exit", exitCode: 0 });
  again.ws.close();
});

// ------------------------------------------------------------------------------------------------
// 2 and 6. Memory per client and in all

/** A program writing 8 MiB of \x01 to stdout and to stderr: six-fold once escaped in JSON. */
const FLOOD =
  "#include <stdio.h>\n#include <string.h>\nstatic char b[1 << 16];\n" +
  "int main(void){memset(b, 1, sizeof b); for (int i = 0; i < 128; i++) { fwrite(b, 1, sizeof b, stdout); fwrite(b, 1, sizeof b, stderr); } return 0;}\n";
const FLOOD_LIMITS = { outputBytes: 8 * MiB, wallSeconds: 30 };
/** 2.25 MiB of \x01 to stdout: about 14 MiB as the WebSocket's JSON. */
const WS_FLOOD =
  "#include <stdio.h>\n#include <string.h>\nstatic char b[1 << 16];\n" +
  "int main(void){memset(b, 1, sizeof b); for (int i = 0; i < 36; i++) fwrite(b, 1, sizeof b, stdout); return 0;}\n";

test("2, 6: unread HTTP answers and 16 slow WebSocket readers leave the server's memory bounded; unread answers are dropped", async () => {
  test.setTimeout(300_000);
  const rssBefore = residentBytes(server.pid);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, residentBytes(server.pid))), 100);
  try {
    // Six POST /api/run whose answers are never read: the socket is paused from the start.
    const body = JSON.stringify({ language: "c", code: FLOOD, limits: FLOOD_LIMITS });
    const unread = Array.from({ length: 6 }, (_, i) => {
      const socket = net.connect(server.port, "127.0.0.1");
      socket.on("error", () => {});
      socket.write(
        `POST /api/run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Forwarded-For: 10.2.0.${i + 1}\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      socket.pause();
      return socket;
    });
    // A WebSocket that stops reading at once while its program writes far more than the
    // connection's cap (16 MiB)...
    const slowReader = async (address: string, code: string) => {
      const c = await connect(address);
      c.ws.send(cRun("flood", code, { limits: FLOOD_LIMITS }));
      (c.ws as unknown as { _socket: net.Socket })._socket.pause();
      return c;
    };
    const slow = [await slowReader("10.6.1.1", FLOOD)];
    await waitFor("the connection's own cap", () => server.log().includes('"why":"connection backlog"'), 120_000);
    // ...then sixteen whose programs' output (about 14 MiB once escaped) stays under it, less what
    // the loopback's socket buffers take: together they pass the server-wide cap (32 MiB).
    for (let i = 0; i < 16; i++) slow.push(await slowReader(`10.6.0.${i + 1}`, WS_FLOOD));
    // Every flood ran (or was cut off with its connection): the engine is idle again.
    await waitFor(
      "all floods to end",
      async () => {
        const health = (await (await fetch(`${server.url}/api/health`)).json()) as { running: number; queued: number };
        return health.running + health.queued === 0;
      },
      240_000,
    );
    // Unread answers are dropped after the idle timeout (3 s here): the server's end of each of
    // those connections is closed although the client still holds its socket open.
    await waitFor(
      "the server to drop the unread answers",
      () => unread.every((socket) => serverSideState(socket.localPort!) !== "ESTABLISHED"),
      60_000,
    );
    expect(unread.every((socket) => !socket.destroyed)).toBe(true);
    // Slow readers under their own cap were cut off by the server-wide one.
    expect(server.log()).toContain('"why":"server-wide backlog"');
    const rssAfter = residentBytes(server.pid);
    console.log(
      `server RSS: ${(rssBefore / MiB).toFixed(0)} MiB before, peak ${(rssPeak / MiB).toFixed(0)} MiB (+${((rssPeak - rssBefore) / MiB).toFixed(0)}), ` +
        `${(rssAfter / MiB).toFixed(0)} MiB after 6 unread answers of 96 MiB and 17 slow readers of 14 to 96 MiB each`,
    );
    // Unbounded, this holds 6 × 96 MiB of escaped answers and 16 × 4–14 MiB plus 96 MiB of socket backlog.
    // Bounded, it holds the caps (32 MiB of backlog, 6 × 3 MiB of answers) plus the garbage of
    // escaping 300 MiB of output that V8 has not collected yet: 50 to 220 MiB here; unbounded
    // (before the caps) the same attack took 2 GiB.
    expect(rssPeak - rssBefore).toBeLessThan(512 * MiB);
    for (const c of slow) c.ws.terminate();
    for (const socket of unread) socket.destroy();
  } finally {
    clearInterval(sampler);
  }
});

test("2: an HTTP answer carries at most the answer cap of each stream, and says it was cut", async () => {
  test.setTimeout(120_000);
  const res = await fetch(`${server.url}/api/run`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Forwarded-For": "10.2.1.1" },
    body: JSON.stringify({ language: "c", code: FLOOD, limits: FLOOD_LIMITS }),
  });
  expect(res.status).toBe(200);
  const answer = (await res.json()) as { run: { stdout: string; stderr: string; truncated: { stdout: boolean; stderr: boolean }; message: string } };
  expect(Buffer.byteLength(answer.run.stdout)).toBe(256 * 1024);
  expect(Buffer.byteLength(answer.run.stderr)).toBe(256 * 1024);
  expect(answer.run.truncated).toEqual({ stdout: true, stderr: true });
  expect(answer.run.message).toMatch(/output cut to 256 KiB per stream in this answer/);
});
